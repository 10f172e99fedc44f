package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/solution"
)

// formLifetime is how long a contact form's token stays good: a visitor
// may take their time to write.
const formLifetime = 24 * time.Hour

// maxForm bounds a contact form's body: the fields' limits with room for
// their encoding.
const maxForm = 64 << 10

// contactForm is the contact form on a solution's page: what it holds,
// and what was wrong with it when it came back.
type contactForm struct {
	Action, Token                      string
	Name, Organisation, Email, Message string
	// Errors are the problems by field, shown beside each; Problems the
	// same in the form's order, for the summary above it.
	Errors   map[string]string
	Problems []problem
	// Sent says the inquiry went to the provider.
	Sent bool
	// Max are the fields' limits, for the inputs' maxlength.
	MaxName, MaxOrg, MaxEmail, MaxMessage int
}

type problem struct{ Field, Label, Msg string }

// formField is one field of the contact form, as the template
// contact-field draws it: its label, its value, its problem.
type formField struct {
	Name, Label, Type, Autocomplete, Value, Error string
	Max                                           int
	Required                                      bool
}

func fieldOf(f *contactForm, name, label, typ, autocomplete, value string, max int, required bool) formField {
	return formField{Name: name, Label: label, Type: typ, Autocomplete: autocomplete, Value: value, Error: f.Errors[name], Max: max, Required: required}
}

// fieldLabels are the form's labels, as its problems name them.
var fieldLabels = map[string]string{"name": "Your name", "organisation": "Organisation", "email": "E-mail", "message": "Message"}

// newContactForm is an empty form for v about in, with a signed-in
// visitor's name and address filled in; nil when aim takes no inquiries
// or its token cannot be made.
func (c *Catalog) newContactForm(ctx context.Context, v Viewer, in *solution.Info) *contactForm {
	if c.Store == nil || c.Inquirer == nil {
		return nil
	}
	tok, err := c.formToken(ctx, v, in.Name, c.now())
	if err != nil {
		c.pages.log.Error("making the contact form's token", "err", err)
		return nil
	}
	return &contactForm{Action: solutionPath(in.Name) + "/contact", Token: tok, Name: v.Identity.Name, Email: v.Identity.Email,
		MaxName: inquiry.MaxName, MaxOrg: inquiry.MaxOrg, MaxEmail: inquiry.MaxEmail, MaxMessage: inquiry.MaxMessage}
}

// contact takes the contact form. It comes from aim's own page: the
// Origin (which browsers send with a form's POST) is the apex, and the
// token is one the page made for this viewer and solution. A form with
// problems comes back with them beside its fields; a sent one leads to
// the page saying so (and a reload sends nothing twice).
func (c *Catalog) contact(w http.ResponseWriter, r *http.Request) {
	v := c.viewer(r)
	in := c.find(r.Context(), v.Identity, r.PathValue("name"))
	form := (*contactForm)(nil)
	if in != nil {
		form = c.newContactForm(r.Context(), v, in)
	}
	if form == nil {
		c.notFound(w, r, v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		form.Problems = []problem{{Field: "message", Label: fieldLabels["message"],
			Msg: fmt.Sprintf("the form is larger than %d KiB: the message may have at most %d characters", maxForm>>10, inquiry.MaxMessage)}}
		form.Errors = map[string]string{"message": form.Problems[0].Msg}
		c.renderSolution(w, r, http.StatusRequestEntityTooLarge, v, in, form)
		return
	}
	if !sameOrigin(r) || !c.checkToken(r.Context(), v, in.Name, r.PostForm.Get("csrf"), c.now()) {
		c.pages.log.Warn("contact form refused: not from this page", "solution", in.Name, "origin", r.Header.Get("Origin"))
		c.pages.Notice(w, v, http.StatusForbidden, Notice{
			Title:      "The form was out of date",
			Paragraphs: []string{"Nothing was sent. Open the solution's page again and send the form from there."},
			Link:       solutionPath(in.Name) + "#contact",
			LinkText:   "Back to " + in.Title,
		})
		return
	}
	f := inquiry.Form{Name: r.PostForm.Get("name"), Organisation: r.PostForm.Get("organisation"), Email: r.PostForm.Get("email"), Message: r.PostForm.Get("message")}
	form.Name, form.Organisation, form.Email, form.Message = f.Name, f.Organisation, f.Email, f.Message
	_, err := c.Inquirer.Submit(r.Context(), in, f, api.ClientAddr(r))
	var ie *api.InquiryError
	switch {
	case errors.As(err, &ie) && ie.Limit != "":
		w.Header().Set("Retry-After", strconv.Itoa(int(ie.Retry.Seconds())+1))
		c.pages.Notice(w, v, http.StatusTooManyRequests, Notice{Title: "Too many messages",
			Paragraphs: []string{fmt.Sprintf("Nothing was sent: too many messages came from this %s lately. Try again in %s.", limitSubject(ie.Limit), humanDuration(ie.Retry))},
			Link:       solutionPath(in.Name), LinkText: "Back to " + in.Title})
	case errors.As(err, &ie):
		form.Errors = map[string]string{}
		for _, p := range ie.Problems {
			form.Errors[p.Field] = p.Msg
			form.Problems = append(form.Problems, problem{Field: p.Field, Label: fieldLabels[p.Field], Msg: p.Msg})
		}
		c.renderSolution(w, r, http.StatusUnprocessableEntity, v, in, form)
	case err != nil:
		c.pages.log.Error("taking an inquiry", "solution", in.Name, "err", err)
		c.pages.Notice(w, v, http.StatusInternalServerError, Notice{Title: "The message could not be sent",
			Paragraphs: []string{"Something went wrong on aim's side; nothing was sent. Try again in a while."},
			Link:       solutionPath(in.Name), LinkText: "Back to " + in.Title})
	default:
		http.Redirect(w, r, solutionPath(in.Name)+"?sent=1#contact", http.StatusSeeOther)
	}
}

func limitSubject(limit string) string {
	if limit == "solution" {
		return "solution's visitors"
	}
	return "address"
}

// humanDuration is d in whole minutes (at least one).
func humanDuration(d time.Duration) string {
	m := max(1, int(d.Round(time.Minute)/time.Minute))
	if m == 1 {
		return "a minute"
	}
	return strconv.Itoa(m) + " minutes"
}

// sameOrigin reports whether r comes from the apex's own page, as far
// as the browser says: its Origin, when it has one, is the host r was
// sent to, and its Sec-Fetch-Site names neither another site nor a
// solution's host (same-site). A page of a solution or of another site
// cannot post the form; without either header, the token decides.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" || s == "same-site" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// formToken is the contact form's token for v about solution, good until
// formLifetime from now: its expiry and an HMAC binding it to both, and
// for a signed-in viewer to their session (through the session's own
// CSRF token, which only the apex's pages know).
func (c *Catalog) formToken(ctx context.Context, v Viewer, solution string, now time.Time) (string, error) {
	key, err := c.formKey(ctx)
	if err != nil {
		return "", err
	}
	exp := strconv.FormatInt(now.Add(formLifetime).Unix(), 10)
	return exp + "." + formMAC(key, solution, v.CSRF, exp), nil
}

func (c *Catalog) checkToken(ctx context.Context, v Viewer, solution, tok string, now time.Time) bool {
	exp, sum, ok := strings.Cut(tok, ".")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || now.Unix() >= n {
		return false
	}
	key, err := c.formKey(ctx)
	return err == nil && hmac.Equal([]byte(sum), []byte(formMAC(key, solution, v.CSRF, exp)))
}

func formMAC(key []byte, parts ...string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("contact"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// formKey is the store's key of the pages' forms, the same for every
// aim process on the store, read once.
func (c *Catalog) formKey(ctx context.Context) ([]byte, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if c.key != nil {
		return c.key, nil
	}
	k, err := c.Store.Key(ctx, "web-forms")
	if err != nil {
		return nil, err
	}
	c.key = k
	return k, nil
}
