package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// The provider's page, /me: each solution the viewer manages with its
// state, its last log lines, its inquiries and its use over 30 days.

const (
	// mePageSize is how many solutions one page of /me shows: each costs
	// a read of its logs, usage and inquiries.
	mePageSize = 10
	// logLines is how many of a solution's last log lines are shown.
	logLines = 6
	// logTimeout bounds reading them: a runtime that is slow to answer
	// must not hold the page.
	logTimeout = 3 * time.Second
	// inquiriesShown is how many of a solution's newest inquiries are
	// shown; aim inquiries NAME lists them all.
	inquiriesShown = 10
	// panelsAtOnce is how many solutions' parts are read at the same time.
	panelsAtOnce = 4
)

// mePage is what me.html shows.
type mePage struct {
	Viewer Viewer
	Flash  string
	// Manager is false for a visitor, whom the page tells what it is for.
	Manager bool
	Who     whoView
	// Provider is whose solutions these are; empty for an admin, who
	// sees all.
	Provider  string
	Solutions []solutionPanel
	Paging    paging
}

// whoView is the viewer as the visitor's page shows them.
type whoView struct {
	Name, Email, Role, Provider string
	EmailVerified               bool
	Groups                      string
}

// solutionPanel is one solution on /me.
type solutionPanel struct {
	Name, Title, URL, State, Reason, Owner, Updated string
	Generation                                      int64
	Actions                                         actionForms
	Logs                                            []string
	// LogsNote says why there are no log lines, when there are none.
	LogsNote      string
	Usage         usageChart
	Inquiries     []inquiryView
	MoreInquiries bool
	// InquiriesNote says why inquiries could not be read.
	InquiriesNote string
}

// inquiryView is one inquiry as its provider reads it.
type inquiryView struct {
	Name, Organisation, Email, Message, Created string
	// Delivery is the store's delivery state (none, pending, delivered,
	// failed); DeliveryText says it in words.
	Delivery, DeliveryText string
}

// paging is the links between the pages of a long list.
type paging struct {
	Page, Pages int
	Prev, Next  string
}

func (a *account) me(w http.ResponseWriter, r *http.Request) {
	v, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	id := v.Identity
	p := mePage{Viewer: v, Flash: flash(r), Manager: id.IsAdmin() || (id.Role == auth.Provider && id.Provider != "")}
	if !p.Manager {
		p.Who = whoView{Name: id.Name, Email: id.Email, EmailVerified: id.EmailVerified, Role: string(id.Role), Groups: strings.Join(id.Groups, ", ")}
		a.cfg.Pages.render(w, http.StatusOK, "me.html", p)
		return
	}
	var mine []*solution.Info
	for _, in := range a.cfg.Controller.List(r.Context()) {
		if id.Manages(in.Owner) {
			mine = append(mine, in)
		}
	}
	if !id.IsAdmin() {
		p.Provider = id.Provider
	}
	var shown []*solution.Info
	shown, p.Paging = pageOf(r, "/me", mine, mePageSize)
	p.Solutions = a.panels(r.Context(), id, v.CSRF, shown)
	a.cfg.Pages.render(w, http.StatusOK, "me.html", p)
}

// flashName is what a flash may name: a solution, provider or token.
var flashName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// flash is the message of the done= and name= of r's query, if any.
func flash(r *http.Request) string {
	q := r.URL.Query()
	msg, ok := flashes[q.Get("done")]
	if !ok || !flashName.MatchString(q.Get("name")) {
		return ""
	}
	return fmt.Sprintf(msg, q.Get("name"))
}

// pageOf is the ?page= of items, size at a time, with links to the
// pages beside it on path.
func pageOf[T any](r *http.Request, path string, items []T, size int) ([]T, paging) {
	pages := max(1, (len(items)+size-1)/size)
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		n = 1
	}
	n = min(n, pages)
	pg := paging{Page: n, Pages: pages}
	link := func(i int) string { return path + "?" + url.Values{"page": {strconv.Itoa(i)}}.Encode() }
	if n > 1 {
		pg.Prev = link(n - 1)
	}
	if n < pages {
		pg.Next = link(n + 1)
	}
	return items[(n-1)*size : min(len(items), n*size)], pg
}

// panels reads each solution's logs, usage and inquiries, a few at once.
func (a *account) panels(ctx context.Context, id auth.Identity, csrf string, sols []*solution.Info) []solutionPanel {
	out := make([]solutionPanel, len(sols))
	sem := make(chan struct{}, panelsAtOnce)
	var wg sync.WaitGroup
	for i, in := range sols {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			out[i] = a.panel(ctx, id, csrf, in)
		})
	}
	wg.Wait()
	return out
}

func (a *account) panel(ctx context.Context, id auth.Identity, csrf string, in *solution.Info) solutionPanel {
	p := solutionPanel{Name: in.Name, Title: in.Title, URL: in.URL, State: string(in.State), Reason: in.Reason,
		Owner: ownerOf(in.Owner), Updated: stamp(in.UpdatedAt), Generation: in.Generation, Actions: actionsFor(in, csrf, "/me")}
	if p.Title == "" {
		p.Title = in.Name
	}
	p.Logs, p.LogsNote = a.lastLogs(ctx, in.Name)

	now := a.cfg.Now()
	days, err := a.cfg.Store.Usage(ctx, in.Name, day(now.AddDate(0, 0, 1-chartDays)))
	if err != nil {
		a.log.Error("reading usage for the provider's page", "solution", in.Name, "err", err)
	}
	p.Usage = newUsageChart(in.Name, now, days, err)

	f := store.InquiryFilter{Solution: in.Name, Limit: inquiriesShown + 1}
	if !id.IsAdmin() {
		f.Owner = id.Provider // as the API: a provider reads its own
	}
	qs, err := a.cfg.Store.ListInquiries(ctx, f)
	if err != nil {
		a.log.Error("reading inquiries for the provider's page", "solution", in.Name, "err", err)
		p.InquiriesNote = "The inquiries could not be read just now; aim inquiries " + in.Name + " lists them."
	}
	if len(qs) > inquiriesShown {
		qs, p.MoreInquiries = qs[:inquiriesShown], true
	}
	for _, q := range qs {
		p.Inquiries = append(p.Inquiries, inquiryView{Name: q.Name, Organisation: q.Organisation, Email: q.Email, Message: q.Message,
			Created: stamp(q.CreatedAt), Delivery: string(q.Delivery), DeliveryText: deliveryText(q)})
	}
	return p
}

func ownerOf(owner string) string {
	if owner == "" {
		return "the admins"
	}
	return owner
}

// deliveryText says where an inquiry's webhook delivery stands.
func deliveryText(q store.Inquiry) string {
	switch q.Delivery {
	case store.DeliveryNone:
		return "not sent: no webhook was set"
	case store.DeliveryDelivered:
		return "delivered to the webhook on " + stamp(q.DeliveredAt)
	case store.DeliveryPending:
		if q.Attempts == 0 {
			return "on its way to the webhook"
		}
		return fmt.Sprintf("retrying: %d attempts so far, the last said %s; next %s", q.Attempts, oneLine(q.LastError), stamp(q.NextAttempt))
	case store.DeliveryFailed:
		return fmt.Sprintf("failed: given up after %d attempts, the last said %s", q.Attempts, oneLine(q.LastError))
	}
	return string(q.Delivery)
}

// lastLogs is the solution's last log lines, cleaned of what a terminal
// would interpret, or why there are none. (The template escapes them.)
func (a *account) lastLogs(ctx context.Context, name string) ([]string, string) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	rc, err := a.cfg.Controller.Logs(ctx, name, "", runtime.LogOptions{Tail: logLines})
	switch {
	case errors.Is(err, runtime.ErrNotFound), errors.Is(err, solution.ErrNotFound):
		return nil, "No containers, so no logs (it may be asleep)."
	case err != nil:
		a.log.Warn("reading logs for the provider's page", "solution", name, "err", err)
		return nil, "The logs could not be read just now; aim logs " + name + " shows them."
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("reading logs for the provider's page", "solution", name, "err", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		if l := cleanLine(sc.Text()); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > logLines {
		lines = lines[len(lines)-logLines:]
	}
	if len(lines) == 0 {
		return nil, "Nothing logged yet."
	}
	return lines, ""
}

// ansi matches terminal escape sequences (colours, cursor moves).
var ansi = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]")

// cleanLine drops escape sequences and control characters from a log
// line and bounds its length.
func cleanLine(s string) string {
	s = ansi.ReplaceAllString(strings.ToValidUTF8(s, "\uFFFD"), "")
	s = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return "nothing"
	}
	if len(s) > 120 {
		s = strings.ToValidUTF8(s[:120], "") + "…"
	}
	return "“" + s + "”"
}
