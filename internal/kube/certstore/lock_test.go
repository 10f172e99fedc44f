package certstore

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Lock waits out an API server that fails for a moment, and gives up at
// once on one that refuses (RBAC); the locking itself is tested against
// a real API server in cluster_test.go.
func TestLockAPIErrors(t *testing.T) {
	leases := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	tests := []struct {
		name    string
		fail    error
		wantErr bool
	}{
		{"the API server restarting", apierrors.NewServiceUnavailable("restarting"), false},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), false},
		{"a timeout", apierrors.NewTimeoutError("took too long", 1), false},
		{"forbidden", apierrors.NewForbidden(leases, "x", errors.New("no RBAC for leases")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := fake.NewClientset()
			var calls atomic.Int32
			kc.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
				if calls.Add(1) <= 2 {
					return true, nil, tt.fail
				}
				return false, nil, nil
			})
			s, err := New(kc, Config{Namespace: "aim-system", LockPoll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err = s.Lock(ctx, "issue_cert_demo.aim.test")
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), "no RBAC for leases")):
				t.Errorf("Lock: %v; want the refusal", err)
			case tt.wantErr && calls.Load() != 1:
				t.Errorf("Lock tried %d times; want once", calls.Load())
			case !tt.wantErr && err != nil:
				t.Errorf("Lock: %v; want it to try again until the API server answers", err)
			case !tt.wantErr:
				if calls.Load() != 3 {
					t.Errorf("Lock created the Lease at try %d, want 3", calls.Load())
				}
				if err := s.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
					t.Errorf("Unlock: %v", err)
				}
			}
		})
	}
}
