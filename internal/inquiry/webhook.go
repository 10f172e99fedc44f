package inquiry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// SignatureHeader carries an inquiry delivery's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the
// provider's webhook secret>". The time in the signed text lets a
// receiver refuse a replayed delivery (VerifySignature's tolerance).
const SignatureHeader = "Aim-Signature"

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a delivery as a receiver should: the signature
// matches body under secret, and was made within tolerance of now.
func VerifySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("the signature header has no t= and v1=")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("the signature is %s old, more than %s", d.Round(time.Second), tolerance)
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("the signature does not match")
	}
	return nil
}

// safeDialer refuses, at connect time, the addresses spec.CheckWebhookURL
// refuses by name: what a name resolved to is what is dialled.
func safeDialer(allow func(netip.Addr) bool) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		if spec.ForbiddenWebhookAddr(ap.Addr()) && (allow == nil || !allow(ap.Addr())) {
			return fmt.Errorf("refusing to send a webhook to %s, a %s address", ap.Addr(), spec.AddrKind(ap.Addr()))
		}
		return nil
	}}
}

// Payload is the JSON a webhook receives.
type Payload struct {
	Event        string    `json:"event"` // "inquiry"
	ID           int64     `json:"id"`
	Solution     string    `json:"solution"`
	Name         string    `json:"name"`
	Organisation string    `json:"organisation,omitempty"`
	Email        string    `json:"email"`
	Message      string    `json:"message"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Store is what the Deliverer needs of the store.
type Store interface {
	DueDeliveries(ctx context.Context, limit int) ([]store.Inquiry, error)
	RecordDelivery(ctx context.Context, id int64, attemptErr error, next time.Time) error
	GetProvider(ctx context.Context, name string) (*store.Provider, error)
	WebhookSecret(ctx context.Context, provider string, rotate bool) (string, error)
}

// Backoff is the wait before each retry; after the last, a delivery is
// given up (failed, its last error kept).
var Backoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 12 * time.Hour}

// Deliverer sends pending inquiries to their providers' webhooks.
type Deliverer struct {
	Store Store
	// Every is how often it looks for due deliveries. Zero means 1s.
	Every time.Duration
	// Backoff overrides the package's Backoff (tests).
	Backoff []time.Duration
	// AllowAddr lets a test receiver on a forbidden address (loopback)
	// through; nil allows none.
	AllowAddr func(netip.Addr) bool
	Logger    *slog.Logger
	client    *http.Client
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Backoff == nil {
		d.Backoff = Backoff
	}
	d.client = &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DialContext: safeDialer(d.AllowAddr).DialContext, Proxy: nil, MaxIdleConns: 10, IdleConnTimeout: time.Minute},
		// A redirect could lead anywhere, past the dialer's check of
		// the name it was given: deliveries follow none.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	every := d.Every
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		d.Once(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once makes the attempts that are due now.
func (d *Deliverer) Once(ctx context.Context) {
	due, err := d.Store.DueDeliveries(ctx, 50)
	if err != nil {
		d.Logger.Error("listing inquiries to deliver", "err", err)
		return
	}
	for _, q := range due {
		err := d.deliver(ctx, q)
		var next time.Time
		if err != nil && q.Attempts < len(d.Backoff) {
			next = time.Now().Add(d.Backoff[q.Attempts])
		}
		if err != nil {
			d.Logger.Warn("webhook delivery failed", "inquiry", q.ID, "solution", q.Solution, "attempt", q.Attempts+1, "retry", !next.IsZero(), "err", err)
		}
		if rerr := d.Store.RecordDelivery(context.WithoutCancel(ctx), q.ID, err, next); rerr != nil {
			d.Logger.Error("recording a webhook delivery", "inquiry", q.ID, "err", rerr)
		}
	}
}

func (d *Deliverer) deliver(ctx context.Context, q store.Inquiry) error {
	if q.Owner == "" {
		return errors.New("the solution has no provider to deliver to")
	}
	p, err := d.Store.GetProvider(ctx, q.Owner)
	if err != nil {
		return fmt.Errorf("provider %s: %w", q.Owner, err)
	}
	if p.Webhook == "" {
		return errors.New("the provider has no webhook any more")
	}
	if err := d.checkURL(p.Webhook); err != nil {
		return err
	}
	secret, err := d.Store.WebhookSecret(ctx, p.Name, false)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(Payload{Event: "inquiry", ID: q.ID, Solution: q.Solution, Name: q.Name, Organisation: q.Organisation,
		Email: q.Email, Message: q.Message, CreatedAt: q.CreatedAt})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aim-webhook/1")
	req.Header.Set("Aim-Delivery", strconv.FormatInt(q.ID, 10))
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the webhook answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// checkURL is spec.CheckWebhookURL, but for an address literal AllowAddr lets
// through (a test's receiver on loopback).
func (d *Deliverer) checkURL(raw string) error {
	if u, err := url.Parse(raw); err == nil && d.AllowAddr != nil {
		if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && d.AllowAddr(a) {
			return nil
		}
	}
	return spec.CheckWebhookURL(raw)
}
