// Package api is aim's REST API under /api/v1/, which the CLI and the
// catalog page use. Reads are open; anything that changes a solution or
// reveals its logs needs a bearer token.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aimhub/aim/internal/solution"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// Controller is what the API drives.
type Controller interface {
	Deploy(ctx context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error)
	Get(ctx context.Context, name string) (*solution.Info, error)
	List(ctx context.Context) []*solution.Info
	Remove(ctx context.Context, name string) error
	Logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error)
	Wake(ctx context.Context, name string) error
	Sleep(ctx context.Context, name string) error
}

// Tokens checks API tokens.
type Tokens interface {
	VerifyToken(ctx context.Context, tok string) (*store.Token, error)
}

// Config configures the API.
type Config struct {
	// MaxUpload bounds a deploy's upload (manifest and build contexts).
	// Zero means 1 GiB.
	MaxUpload int64
	// TempDir holds uploads while they build. Empty means os.TempDir().
	TempDir string
	Logger  *slog.Logger
}

// API serves /api/v1/.
type API struct {
	cfg    Config
	ctl    Controller
	tokens Tokens
	log    *slog.Logger
	mux    *http.ServeMux
}

// New builds the API handler.
func New(cfg Config, ctl Controller, tokens Tokens) *API {
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, ctl: ctl, tokens: tokens, log: cfg.Logger, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /api/v1/solutions", a.list)
	a.mux.HandleFunc("GET /api/v1/solutions/{name}", a.get)
	a.mux.Handle("PUT /api/v1/solutions/{name}", a.auth(a.deploy))
	a.mux.Handle("DELETE /api/v1/solutions/{name}", a.auth(a.remove))
	a.mux.Handle("GET /api/v1/solutions/{name}/logs", a.auth(a.logs))
	a.mux.Handle("POST /api/v1/solutions/{name}/wake", a.auth(a.wake))
	a.mux.Handle("POST /api/v1/solutions/{name}/sleep", a.auth(a.sleep))
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *API) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aim"`)
			writeError(w, http.StatusUnauthorized, "this call needs an API token: pass it as 'Authorization: Bearer <token>' (aim serve wrote one to the client configuration)")
			return
		}
		if _, err := a.tokens.VerifyToken(r.Context(), tok); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aim", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "the API token is not valid")
			return
		}
		// The server's read and write timeouts stop slow clients of the
		// solutions; a provider's upload, a deploy's progress stream or a
		// followed log may rightly take longer, and the caller is known.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		h(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || h[:len(p)] != p {
		return "", false
	}
	return h[len(p):], true
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"solutions": a.ctl.List(r.Context())})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	info, err := a.ctl.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (a *API) remove(w http.ResponseWriter, r *http.Request) {
	if err := a.ctl.Remove(r.Context(), r.PathValue("name")); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) wake(w http.ResponseWriter, r *http.Request) {
	if err := a.ctl.Wake(r.Context(), r.PathValue("name")); err != nil {
		a.fail(w, err)
		return
	}
	a.get(w, r)
}

func (a *API) sleep(w http.ResponseWriter, r *http.Request) {
	if err := a.ctl.Sleep(r.Context(), r.PathValue("name")); err != nil {
		a.fail(w, err)
		return
	}
	a.get(w, r)
}

func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := runtime.LogOptions{Follow: q.Get("follow") == "true"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "tail must be a whole number of lines")
			return
		}
		opts.Tail = n
	}
	rc, err := a.ctl.Logs(r.Context(), r.PathValue("name"), q.Get("component"), opts)
	if err != nil {
		a.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w, rc: http.NewResponseController(w)}
	_, _ = io.Copy(fw, rc)
}

type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	_ = f.rc.Flush()
	return n, err
}

// fail answers an error with the status that fits it. This is the one
// place errors become HTTP statuses.
func (a *API) fail(w http.ResponseWriter, err error) {
	var (
		ie *solution.InputError
		se *solution.StartError
		me *spec.Error
		we *solution.WakeError
	)
	switch {
	case errors.Is(err, solution.ErrNotFound), errors.Is(err, runtime.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &me), errors.As(err, &ie):
		// The request was well-formed HTTP, but what it asked for can't be built.
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &se), errors.As(err, new(*solution.CheckError)):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &we):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	case errors.As(err, new(*solution.ForbiddenError)):
		// The platform refused aim's own identity: nothing the caller can
		// retry, and not its token (that would be 401); the message says
		// which permission the installation lacks.
		a.log.Error("API call refused by the platform", "err", err)
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, context.Canceled):
		w.WriteHeader(499) // the client went away; nobody reads an answer
	default:
		a.log.Error("API error", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is every error the API returns.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// Event is one line of a deploy's NDJSON answer.
type Event struct {
	Time      time.Time         `json:"time"`
	Component string            `json:"component,omitempty"`
	Message   string            `json:"message,omitempty"`
	Error     string            `json:"error,omitempty"`
	Result    *solution.Info    `json:"result,omitempty"`
	Problems  []spec.FieldError `json:"problems,omitempty"`
}
