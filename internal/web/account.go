package web

import (
	"cmp"
	"context"
	"crypto/hmac"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// The pages of signed-in people who run things: the provider's page
// (/me) and the admin page (/admin), with the actions their forms post.
// Each action is decided by the rules the API applies (auth.Manages for a
// solution, the admin role for providers and tokens) and done through
// the controller and the store directly.

// SolutionReader reads what the account pages show of solutions.
type SolutionReader interface {
	List(ctx context.Context) []*solution.Info
	Get(ctx context.Context, name string) (*solution.Info, error)
	Logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error)
}

// SolutionActions are what the pages' forms do to a solution.
type SolutionActions interface {
	Wake(ctx context.Context, name string) error
	Sleep(ctx context.Context, name string) error
	Remove(ctx context.Context, name string) error
}

// AccountController is the controller as the account pages use it;
// api.Controller is one.
type AccountController interface {
	SolutionReader
	SolutionActions
}

// MarketReader reads a solution's usage and inquiries.
type MarketReader interface {
	Usage(ctx context.Context, solution, since string) ([]store.UsageDay, error)
	ListInquiries(ctx context.Context, f store.InquiryFilter) ([]store.Inquiry, error)
}

// ProviderStore keeps the providers.
type ProviderStore interface {
	ListProviders(ctx context.Context) ([]store.Provider, error)
	GetProvider(ctx context.Context, name string) (*store.Provider, error)
	PutProvider(ctx context.Context, p *store.Provider) error
	DeleteProvider(ctx context.Context, name string) error
}

// TokenStore keeps the API tokens.
type TokenStore interface {
	ListTokens(ctx context.Context, provider string) ([]store.Token, error)
	RevokeToken(ctx context.Context, id string) error
}

// AccountStore is the part of aim's store the account pages use;
// *store.Store is one.
type AccountStore interface {
	MarketReader
	ProviderStore
	TokenStore
}

var _ AccountStore = (*store.Store)(nil)

// AccountConfig configures the account pages.
type AccountConfig struct {
	Controller AccountController
	Store      AccountStore
	// Viewers tells who is signed in, with the CSRF token of their
	// session that every form posts (internal/signin's SignIn). Required.
	Viewers Viewers
	Pages   *Pages
	// ApexURL is the apex's origin ("https://aim.example.com"): a form
	// posted with another Origin header is refused. Empty means only the
	// browser's Sec-Fetch-Site is checked besides the token.
	ApexURL string
	// Logger records the actions taken. Nil means slog's default.
	Logger *slog.Logger
	// Now is the clock of the usage chart's days. Nil means time.Now.
	Now func() time.Time
}

// account serves the provider's and the admin page.
type account struct {
	cfg AccountConfig
	log *slog.Logger
}

//go:embed account.css
var accountCSS []byte

// MountAccount adds the provider's page (GET /me), the admin page (GET
// /admin), the actions their forms post and their stylesheet to mux.
func MountAccount(mux *http.ServeMux, cfg AccountConfig) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &account{cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default())}
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("POST /me/solutions/{name}/{action}", a.solutionAction)
	mux.HandleFunc("GET /admin", a.admin)
	mux.HandleFunc("POST /admin/providers", a.addProvider)
	mux.HandleFunc("POST /admin/providers/{name}/remove", a.removeProvider)
	mux.HandleFunc("POST /admin/tokens/{id}/revoke", a.revokeToken)
	mux.HandleFunc("GET /account.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(accountCSS)
	})
}

// signedIn returns the viewer of r, or answers for them and returns
// false: anonymous people are sent to sign in (and back), or told there
// is no way to when aim has no sign-in.
func (a *account) signedIn(w http.ResponseWriter, r *http.Request) (Viewer, bool) {
	v := a.cfg.Viewers.Viewer(r)
	if !v.Identity.Anonymous() {
		return v, true
	}
	if v.SignIn != "" && r.Method == http.MethodGet {
		http.Redirect(w, r, v.SignIn, http.StatusSeeOther)
		return v, false
	}
	n := Notice{Title: "Sign in first", Paragraphs: []string{"This page is for the people who run solutions here, once they have signed in."},
		Link: v.SignIn, LinkText: "Sign in"}
	if r.Method != http.MethodGet && v.SignIn != "" {
		n.Link = "/me" // which sends them to sign in, and back to a page (not to a form's action)
	}
	if v.SignIn == "" {
		n.Paragraphs = append(n.Paragraphs, "This aim has no sign-in configured: use the command line instead (aim usage, aim inquiries, aim provider ls, aim token ls).")
	}
	a.cfg.Pages.Notice(w, v, http.StatusUnauthorized, n)
	return v, false
}

// formPosted checks that a POST comes from a form of the apex's own
// pages, for the session it carries, and answers 403 when not.
//
// Every solution is same-site with the apex, so the browser sends the
// Lax session cookie with a form a solution's page posts here. The
// Origin (where the browser sends one) must be the apex, Sec-Fetch-Site
// must not say another site or a solution's host, and the form must
// carry the session's CSRF token, which only the apex's pages know
// (internal/signin makes it from the session and a key of the store's).
func (a *account) formPosted(w http.ResponseWriter, r *http.Request, v Viewer) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	why := ""
	switch o := r.Header.Get("Origin"); {
	case o != "" && a.cfg.ApexURL != "" && o != strings.TrimSuffix(a.cfg.ApexURL, "/"):
		why = "it was posted from a page of another site (" + o + ")"
	case r.Header.Get("Sec-Fetch-Site") == "cross-site" || r.Header.Get("Sec-Fetch-Site") == "same-site":
		why = "it was posted from a page of another site"
	case v.CSRF == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(v.CSRF)):
		why = "the form was out of date"
	}
	if why == "" {
		return true
	}
	a.log.Warn("a form was refused", "path", r.URL.Path, "why", why, "email", v.Identity.Email)
	a.cfg.Pages.Notice(w, v, http.StatusForbidden, Notice{Title: "Not done",
		Paragraphs: []string{"Nothing was changed: " + why + ". Reload the page and try again from there."},
		Link:       backPage(r), LinkText: "Back"})
	return false
}

// backPage is where a form returns to: the admin page for its own
// actions, else the form's back field, /me or /admin.
func backPage(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/admin/") || r.PostFormValue("back") == "/admin" {
		return "/admin"
	}
	return "/me"
}

// done sends the browser back to the page the form was on, which then
// says what was done: the message is one of a fixed set (flashes), so a
// link cannot make the page say anything else.
func done(w http.ResponseWriter, r *http.Request, what, name string) {
	http.Redirect(w, r, backPage(r)+"?"+url.Values{"done": {what}, "name": {name}}.Encode(), http.StatusSeeOther)
}

// flashes are the messages done's redirect may show.
var flashes = map[string]string{
	"wake":             "Solution %s is awake.",
	"sleep":            "Solution %s is asleep.",
	"remove":           "Solution %s was removed.",
	"provider-added":   "Provider %s was added. Give it a token with aim token create --provider %[1]s.",
	"provider-removed": "Provider %s was removed, with its tokens.",
	"token-revoked":    "Token %s was revoked.",
}

// actionForms are the forms of one solution's actions, posted with the
// session's CSRF token and coming back to Back.
type actionForms struct {
	Name, CSRF, Back  string
	CanWake, CanSleep bool
	// ConfirmID is the remove form's checkbox's, unique on the page.
	ConfirmID string
}

func actionsFor(in *solution.Info, csrf, back string) actionForms {
	return actionForms{Name: in.Name, CSRF: csrf, Back: back, CanWake: in.State == solution.Sleeping, CanSleep: in.State == solution.Ready,
		ConfirmID: "confirm-remove-" + in.Name}
}

// solutionAction wakes, sleeps or removes a solution the viewer manages.
func (a *account) solutionAction(w http.ResponseWriter, r *http.Request) {
	v, ok := a.signedIn(w, r)
	if !ok || !a.formPosted(w, r, v) {
		return
	}
	name, action := r.PathValue("name"), r.PathValue("action")
	do := map[string]func(context.Context, string) error{
		"wake": a.cfg.Controller.Wake, "sleep": a.cfg.Controller.Sleep, "remove": a.cfg.Controller.Remove,
	}[action]
	if do == nil {
		a.cfg.Pages.Notice(w, v, http.StatusNotFound, Notice{Title: "Not found", Paragraphs: []string{"There is no action " + action + "."}, Link: backPage(r), LinkText: "Back"})
		return
	}
	info, err := a.cfg.Controller.Get(r.Context(), name)
	if err == nil && !v.Identity.Manages(info.Owner) {
		if !mayList(v.Identity, info) {
			err = fmt.Errorf("solution %s: %w", name, solution.ErrNotFound) // as the API: a private one stays unknown
		} else {
			a.cfg.Pages.Notice(w, v, http.StatusForbidden, Notice{Title: "Not yours",
				Paragraphs: []string{"Solution " + name + " belongs to another provider: only its provider and the admins may wake, sleep or remove it."},
				Link:       backPage(r), LinkText: "Back"})
			return
		}
	}
	if err == nil && action == "remove" && r.PostFormValue("confirm") != "yes" {
		a.cfg.Pages.Notice(w, v, http.StatusBadRequest, Notice{Title: "Not removed",
			Paragraphs: []string{"Tick the box beside the Remove button to say that " + name + " is to go, with its containers and kept images."},
			Link:       backPage(r), LinkText: "Back"})
		return
	}
	if err == nil {
		err = do(r.Context(), name)
	}
	if err != nil {
		a.failed(w, r, v, action+" "+name, err)
		return
	}
	a.log.Info("solution "+action+" from the account pages", "solution", name, "by", v.Identity.Email)
	done(w, r, action, name)
}

// mayList is auth.Lists on what the controller knows of a solution; one
// whose manifest could not be read is its managers' alone.
func mayList(id auth.Identity, info *solution.Info) bool {
	if info.Manifest == nil {
		return id.Manages(info.Owner)
	}
	return auth.Lists(id, info.Owner, info.Manifest)
}

// failed answers an action that failed with a notice whose status fits
// the error, as the API's fail does.
func (a *account) failed(w http.ResponseWriter, r *http.Request, v Viewer, doing string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, solution.ErrNotFound), errors.Is(err, runtime.ErrNotFound), errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.As(err, new(*store.InUseError)):
		status = http.StatusConflict
	case errors.As(err, new(*store.InputError)), errors.As(err, new(*solution.InputError)):
		status = http.StatusUnprocessableEntity
	case errors.As(err, new(*solution.WakeError)):
		status = http.StatusGatewayTimeout
	default:
		a.log.Error("an action of the account pages failed", "doing", doing, "err", err)
	}
	a.cfg.Pages.Notice(w, v, status, Notice{Title: "Not done", Paragraphs: []string{capitalize(err.Error()) + "."}, Link: backPage(r), LinkText: "Back"})
}

func capitalize(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stamp is how the pages show a time: to the minute, in UTC; "never" for
// the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
