// Package scaler decides when a solution sleeps: after its idle timeout
// without requests, unless a long-lived connection is still open (up to a
// cap, so that a forgotten tab doesn't keep it up forever).
package scaler

import (
	"context"
	"log/slog"
	"time"
)

// Awake is a solution that is serving now.
type Awake struct {
	Name string
	// Idle is the solution's idle timeout.
	Idle time.Duration
	// Min replicas; above 0 the solution never sleeps.
	Min int
}

// Solutions lists awake solutions and puts them to sleep.
type Solutions interface {
	Awake() []Awake
	Sleep(ctx context.Context, name string) error
}

// Activity tells when a solution last had a request and how many are
// open now.
type Activity interface {
	Activity(name string) (last time.Time, inflight int64, ok bool)
}

// Config configures a Scaler.
type Config struct {
	// MaxIdleWithConnections is how long a solution with open connections
	// but no new request stays awake. Zero means 4h.
	MaxIdleWithConnections time.Duration
	// Every is how often idleness is judged. Zero means 1s.
	Every  time.Duration
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Scaler puts idle solutions to sleep.
type Scaler struct {
	cfg  Config
	sols Solutions
	act  Activity
}

// New builds a scaler.
func New(cfg Config, sols Solutions, act Activity) *Scaler {
	if cfg.MaxIdleWithConnections == 0 {
		cfg.MaxIdleWithConnections = 4 * time.Hour
	}
	if cfg.Every == 0 {
		cfg.Every = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scaler{cfg: cfg, sols: sols, act: act}
}

// Run judges idleness every cfg.Every until ctx ends.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, name := range s.Idle() {
				s.cfg.Logger.Info("sleeping idle solution", "solution", name)
				if err := s.sols.Sleep(ctx, name); err != nil {
					s.cfg.Logger.Error("sleeping", "solution", name, "err", err)
				}
			}
		}
	}
}

// Idle returns the awake solutions that should sleep now.
func (s *Scaler) Idle() []string {
	now := s.cfg.Now()
	var out []string
	for _, a := range s.sols.Awake() {
		if a.Min > 0 || a.Idle <= 0 {
			continue
		}
		last, inflight, ok := s.act.Activity(a.Name)
		if !ok {
			continue
		}
		idle := now.Sub(last)
		limit := a.Idle
		if inflight > 0 {
			limit = max(a.Idle, s.cfg.MaxIdleWithConnections)
		}
		if idle >= limit {
			out = append(out, a.Name)
		}
	}
	return out
}
