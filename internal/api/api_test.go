package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
)

// failing is a Controller whose every action fails with err; the one
// solution it reports is the admins'.
type failing struct{ err error }

func (f failing) Deploy(context.Context, solution.DeployRequest, solution.Progress) (*solution.Info, error) {
	return nil, f.err
}
func (f failing) Get(_ context.Context, name string) (*solution.Info, error) {
	return &solution.Info{Name: name, Manifest: &spec.Manifest{Name: name}}, nil
}
func (f failing) List(context.Context) []*solution.Info { return nil }
func (f failing) Remove(context.Context, string) error  { return f.err }
func (f failing) Logs(context.Context, string, string, runtime.LogOptions) (io.ReadCloser, error) {
	return nil, f.err
}
func (f failing) Wake(context.Context, string) error  { return f.err }
func (f failing) Sleep(context.Context, string) error { return f.err }

// TestFailStatus pins the status each kind of error is answered with.
// Regression: a permission the cluster denied aim's own service account
// (the chart's API Role lacked deployments/scale) was answered 500.
func TestFailStatus(t *testing.T) {
	forbidden := &solution.ForbiddenError{
		Action: "waking solution x",
		Err:    errors.New(`deployments.apps "x-web" is forbidden: User "system:serviceaccount:aim:aim-api" cannot patch resource "deployments/scale"`),
	}
	cases := []struct {
		name string
		err  error
		want int
		says string
	}{
		{"not found", fmt.Errorf("solution x: %w", solution.ErrNotFound), http.StatusNotFound, "not found"},
		{"input", &solution.InputError{Msg: "bad image"}, http.StatusUnprocessableEntity, "bad image"},
		{"wake timeout", &solution.WakeError{Msg: "no answer"}, http.StatusGatewayTimeout, "no answer"},
		{"refused by the cluster", fmt.Errorf("wrapped: %w", forbidden), http.StatusForbidden, `cannot patch resource "deployments/scale"`},
		{"anything else", errors.New("disk on fire"), http.StatusInternalServerError, "disk on fire"},
	}
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := call(t, newAPI(t, failing{c.err}, w.st), http.MethodPost, "/api/v1/solutions/x/wake", w.secrets["admin"], nil, "")
			if rec.Code != c.want {
				t.Errorf("status %d, want %d", rec.Code, c.want)
			}
			var eb ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if !strings.Contains(eb.Error, c.says) {
				t.Errorf("error %q does not say %q", eb.Error, c.says)
			}
		})
	}
}
