package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestCodes(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		mk := func(apex, sol string, ttl time.Duration) string {
			t.Helper()
			code, err := s.CreateCode(ctx, apex, sol, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		gone, _ := signIn(t, s, "ann", time.Hour)
		late := mk(gone, "one", time.Minute)
		if err := s.DeleteSession(ctx, gone); err != nil {
			t.Fatal(err)
		}
		apex, children := signIn(t, s, "ann", time.Hour, "one")
		parent, _ := s.GetSession(ctx, apex)

		used := mk(apex, "one", time.Minute)
		got, err := s.RedeemCode(ctx, used, "one")
		if err != nil {
			t.Fatal(err)
		}
		if !equalSessions(*got, *parent) {
			t.Errorf("RedeemCode = %+v, want the parent %+v", *got, *parent)
		}
		wrongHost := mk(apex, "one", time.Minute)
		expiring := mk(apex, "one", time.Minute)
		c.advance(time.Minute)
		for _, tc := range []struct {
			name     string
			code     string
			solution string
		}{
			{"used", used, "one"},
			{"unknown", used + "x", "one"},
			{"parent signed out", late, "one"},
			{"expired", expiring, "one"},
			{"wrong solution", wrongHost, "two"},
			{"after the wrong solution", wrongHost, "one"}, // it leaked: used up
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.RedeemCode(ctx, tc.code, tc.solution); !errors.Is(err, ErrCodeInvalid) {
					t.Errorf("RedeemCode = %v, want ErrCodeInvalid", err)
				}
			})
		}

		var input *InputError
		for _, tc := range []struct {
			name     string
			secret   string
			solution string
			ttl      time.Duration
			want     any // a pointer to the error type, or an error for errors.Is
		}{
			{"from a per-solution session", children[0], "two", time.Minute, &input},
			{"no solution", apex, "", time.Minute, &input},
			{"no lifetime", apex, "one", 0, &input},
			{"unknown session", apex + "x", "one", time.Minute, ErrNotFound},
			{"signed-out session", gone, "one", time.Minute, ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreateCode(ctx, tc.secret, tc.solution, tc.ttl)
				if want, ok := tc.want.(error); ok {
					if !errors.Is(err, want) {
						t.Errorf("CreateCode = %v, want %v", err, want)
					}
				} else if !errors.As(err, tc.want) {
					t.Errorf("CreateCode = %v, want a %T", err, tc.want)
				}
			})
		}
	})
}

// A code lives no longer than the session it hands over.
func TestCodeEndsWithItsSession(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		apex, _ := signIn(t, s, "ann", time.Minute)
		code, err := s.CreateCode(ctx, apex, "one", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.advance(time.Minute)
		if _, err := s.RedeemCode(ctx, code, "one"); !errors.Is(err, ErrCodeInvalid) {
			t.Errorf("a code past its session's end = %v, want ErrCodeInvalid", err)
		}
	})
}

// Of many redeems of one code at once, from two aim processes, exactly
// one wins.
func TestRedeemCodeOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
		apex, _ := signIn(t, stores[0], "ann", time.Hour)
		for round := range 5 {
			code, err := stores[0].CreateCode(ctx, apex, "one", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			const n = 16
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				wins  int
				other []error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, err := stores[i%2].RedeemCode(ctx, code, "one")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case !errors.Is(err, ErrCodeInvalid):
						other = append(other, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if wins != 1 || len(other) > 0 {
				t.Errorf("round %d: %d of %d redeems won, want exactly 1; other errors: %v", round, wins, n, other)
			}
		}
	})
}
