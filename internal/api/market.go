package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// The marketplace's routes: a solution's generations and rollback, its
// usage, and inquiries, with providers' webhooks.

// Generations is what a backend that keeps generations offers; the
// Docker controller does. A backend without it answers 501.
type Generations interface {
	History(ctx context.Context, name string, limit int) ([]store.Generation, error)
	Rollback(ctx context.Context, name string, to int64, by string, progress solution.Progress) (*solution.Info, error)
}

// Market is the part of the store the marketplace's routes use.
type Market interface {
	Usage(ctx context.Context, solution, since string) ([]store.UsageDay, error)
	AddInquiry(ctx context.Context, q *store.Inquiry, deliver bool) error
	ListInquiries(ctx context.Context, f store.InquiryFilter) ([]store.Inquiry, error)
	WebhookSecret(ctx context.Context, provider string, rotate bool) (string, error)
}

// GenerationView is a generation as the API shows it.
type GenerationView struct {
	Generation int64             `json:"generation"`
	CreatedAt  time.Time         `json:"createdAt"`
	DeployedBy string            `json:"deployedBy,omitempty"`
	Images     map[string]string `json:"images"`
	Digests    map[string]string `json:"digests,omitempty"`
	Outcome    store.Outcome     `json:"outcome"`
	Reason     string            `json:"reason,omitempty"`
	RollbackOf int64             `json:"rollbackOf,omitempty"`
}

func (a *API) generations() (Generations, error) {
	g, ok := a.ctl.(Generations)
	if !ok {
		return nil, &statusError{status: http.StatusNotImplemented,
			msg: "this aim keeps no generations: history and rollback work with aim serve on Docker, not yet on Kubernetes"}
	}
	return g, nil
}

func (a *API) history(w http.ResponseWriter, r *http.Request, g *grant) {
	gens, err := a.generations()
	if err != nil {
		a.fail(w, err)
		return
	}
	list, err := gens.History(r.Context(), g.sol.Name, 50)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]GenerationView, 0, len(list))
	for _, x := range list {
		out = append(out, GenerationView{Generation: x.Generation, CreatedAt: x.CreatedAt, DeployedBy: x.DeployedBy, Images: x.Images,
			Digests: x.Digests, Outcome: x.Outcome, Reason: x.Reason, RollbackOf: x.RollbackOf})
	}
	writeJSON(w, http.StatusOK, map[string]any{"generations": out})
}

// RollbackResult is what a rollback answers.
type RollbackResult struct {
	Result *solution.Info `json:"result"`
	// Seconds the rollback took, from the request to the new generation
	// serving.
	Seconds float64 `json:"seconds"`
	// ServedAgain is the generation whose images now serve again.
	ServedAgain int64 `json:"servedAgain"`
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request, g *grant) {
	gens, err := a.generations()
	if err != nil {
		a.fail(w, err)
		return
	}
	var to int64
	if s := r.URL.Query().Get("to"); s != "" {
		if to, err = strconv.ParseInt(s, 10, 64); err != nil || to <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("to: %q is not a generation number (aim history %s lists them)", s, g.sol.Name))
			return
		}
	}
	start := time.Now()
	info, err := gens.Rollback(context.WithoutCancel(r.Context()), g.sol.Name, to, who(g.caller), nil)
	if err != nil {
		a.fail(w, err)
		return
	}
	res := RollbackResult{Result: info, Seconds: time.Since(start).Seconds(), ServedAgain: to}
	if latest, err := gens.History(r.Context(), g.sol.Name, 1); err == nil && len(latest) == 1 {
		res.ServedAgain = latest[0].RollbackOf
	}
	writeJSON(w, http.StatusOK, res)
}

// who names a caller in a solution's history.
func who(c caller) string {
	switch {
	case c.token != nil && c.token.Name != "":
		return fmt.Sprintf("%s token %q", c.id.Role, c.token.Name)
	case c.id.Email != "":
		return c.id.Email
	}
	return string(c.id.Role)
}

func (a *API) usage(w http.ResponseWriter, r *http.Request, g *grant) {
	since := 30 * 24 * time.Hour
	if s := r.URL.Query().Get("since"); s != "" {
		d, err := ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not a duration like 30d or 12h", s))
			return
		}
		since = d
	}
	days, err := a.market.Usage(r.Context(), g.sol.Name, time.Now().Add(-since).UTC().Format("2006-01-02"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"solution": g.sol.Name, "days": days})
}

// InquiryView is an inquiry as the provider reads it.
type InquiryView struct {
	ID           int64          `json:"id,string"`
	Solution     string         `json:"solution"`
	Name         string         `json:"name"`
	Organisation string         `json:"organisation,omitempty"`
	Email        string         `json:"email"`
	Message      string         `json:"message"`
	CreatedAt    time.Time      `json:"createdAt"`
	Delivery     store.Delivery `json:"delivery"`
	Attempts     int            `json:"attempts,omitempty"`
	LastError    string         `json:"lastError,omitempty"`
}

// listInquiries: an admin reads all (or one solution's), a provider its
// own solutions'.
func (a *API) listInquiries(w http.ResponseWriter, r *http.Request, g *grant) {
	f := store.InquiryFilter{Solution: r.URL.Query().Get("solution")}
	if g.id.Role == auth.Provider {
		f.Owner = g.id.Provider
	}
	qs, err := a.market.ListInquiries(r.Context(), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]InquiryView, 0, len(qs))
	for _, q := range qs {
		out = append(out, InquiryView{ID: q.ID, Solution: q.Solution, Name: q.Name, Organisation: q.Organisation, Email: q.Email,
			Message: q.Message, CreatedAt: q.CreatedAt, Delivery: q.Delivery, Attempts: q.Attempts, LastError: q.LastError})
	}
	writeJSON(w, http.StatusOK, map[string]any{"inquiries": out})
}

// Inquirer takes visitors' inquiries, for the API and the solution pages
// alike: validated, limited, stored, and queued for the provider's
// webhook when it has one.
type Inquirer struct {
	Store     Market
	Providers Providers
	Limits    *inquiry.Limiter
}

// InquiryError is an inquiry refused for what it says (problems) or for
// coming too often (Retry).
type InquiryError struct {
	Problems []inquiry.FieldError
	Limit    string // "client" or "solution" when rate-limited
	Retry    time.Duration
}

func (e *InquiryError) Error() string {
	if e.Limit != "" {
		return fmt.Sprintf("too many inquiries from this %s; try again in %s", e.Limit, e.Retry.Round(time.Minute))
	}
	msg := "the inquiry is not complete:"
	for _, p := range e.Problems {
		msg += " " + p.Error() + ";"
	}
	return msg[:len(msg)-1]
}

// Submit takes f about sol from client.
func (in *Inquirer) Submit(ctx context.Context, sol *solution.Info, f inquiry.Form, client netip.Addr) (*store.Inquiry, error) {
	if probs := inquiry.Validate(&f); len(probs) > 0 {
		return nil, &InquiryError{Problems: probs}
	}
	if ok, which, retry := in.Limits.Allow(client.String(), sol.Name); !ok {
		return nil, &InquiryError{Limit: which, Retry: retry}
	}
	deliver := false
	if sol.Owner != "" {
		if p, err := in.Providers.GetProvider(ctx, sol.Owner); err == nil && p.Webhook != "" {
			deliver = true
		}
	}
	q := &store.Inquiry{Solution: sol.Name, Owner: sol.Owner, Name: f.Name, Organisation: f.Organisation, Email: f.Email, Message: f.Message}
	if err := in.Store.AddInquiry(ctx, q, deliver); err != nil {
		return nil, err
	}
	return q, nil
}

func (a *API) addInquiry(w http.ResponseWriter, r *http.Request, g *grant) {
	var f inquiry.Form
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := readJSON(r, &f); err != nil {
		writeError(w, http.StatusBadRequest, "the inquiry must be JSON with name, organisation, email and message (at most 64 KiB): "+err.Error())
		return
	}
	q, err := a.inquirer.Submit(r.Context(), g.sol, f, ClientAddr(r))
	var ie *InquiryError
	switch {
	case errors.As(err, &ie) && ie.Limit != "":
		w.Header().Set("Retry-After", strconv.Itoa(int(ie.Retry.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.As(err, &ie):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case err != nil:
		a.fail(w, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"id": strconv.FormatInt(q.ID, 10), "delivery": q.Delivery})
	}
}

// ClientAddr is the request's peer, whom the inquiries' limit counts per,
// on the API's route and the solution pages' form alike. (Behind a proxy
// that is the proxy; in a cluster, the gateway.)
func ClientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// WebhookAnswer is what setting a webhook answers: the secret deliveries
// are signed with, shown to the provider here and on a rotation only.
type WebhookAnswer struct {
	Webhook string `json:"webhook"`
	Secret  string `json:"secret,omitempty"`
}

// putWebhook sets a provider's webhook (an admin, or the provider
// itself): checked to be http(s) and never a loopback or link-local
// address; the answer carries the signing secret.
func (a *API) putWebhook(w http.ResponseWriter, r *http.Request, g *grant) {
	name := r.PathValue("name")
	var body struct {
		Webhook string `json:"webhook"`
		Rotate  bool   `json:"rotateSecret"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Webhook != "" {
		if err := spec.CheckWebhookURL(body.Webhook); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "webhook: "+err.Error())
			return
		}
	}
	p, err := a.providers.GetProvider(r.Context(), name)
	if err != nil {
		a.fail(w, err)
		return
	}
	p.Webhook = body.Webhook
	if err := a.providers.PutProvider(r.Context(), p); err != nil {
		a.fail(w, err)
		return
	}
	ans := WebhookAnswer{Webhook: p.Webhook}
	if p.Webhook != "" {
		if ans.Secret, err = a.market.WebhookSecret(r.Context(), name, body.Rotate); err != nil {
			a.fail(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// manifestWebhook sets the webhook aim.yaml's provider.webhook names for
// the provider the deployed solution belongs to, whether that provider
// or an admin deploys (an admin may set any provider's webhook with aim provider
// webhook too), and makes its signing secret when it has none. An empty
// URL, or a solution with no provider, leaves everything as it is. The
// secret is not put in the deploy's output, which ends up in CI logs;
// the message says how to see it. The URL was checked by spec.Parse.
func (a *API) manifestWebhook(ctx context.Context, owner, url string) (string, error) {
	if url == "" || owner == "" {
		return "", nil
	}
	p, err := a.providers.GetProvider(ctx, owner)
	if err != nil {
		return "", err
	}
	if p.Webhook != url {
		p.Webhook = url
		if err := a.providers.PutProvider(ctx, p); err != nil {
			return "", err
		}
	}
	if _, err := a.market.WebhookSecret(ctx, owner, false); err != nil {
		return "", err
	}
	return fmt.Sprintf("inquiries about %s's solutions go to %s (provider.webhook); `aim provider webhook %s %s` shows the signing secret", owner, url, owner, url), nil
}
