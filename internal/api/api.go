// Package api is aim's REST API under /api/v1/, which the CLI and the
// catalog page use. Every request is authenticated (a bearer token, or
// none: an anonymous visitor) and every route is registered with the rule
// that guards it (policy.go), so that no handler can forget a check.
// docs/roles.md tells who may call what.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
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

// Tokens keeps the API tokens: it checks every request's, and the admins
// and providers manage them through the API.
type Tokens interface {
	VerifyToken(ctx context.Context, secret string) (*store.Token, error)
	CreateToken(ctx context.Context, t store.Token) (string, *store.Token, error)
	ListTokens(ctx context.Context, provider string) ([]store.Token, error)
	RevokeToken(ctx context.Context, id string) error
}

// Providers keeps the providers, whom the admins manage.
type Providers interface {
	PutProvider(ctx context.Context, p *store.Provider) error
	GetProvider(ctx context.Context, name string) (*store.Provider, error)
	ListProviders(ctx context.Context) ([]store.Provider, error)
	DeleteProvider(ctx context.Context, name string) error
}

// Thumbnails keeps the solutions' pictures, checked at their deploys.
type Thumbnails interface {
	PutThumbnail(ctx context.Context, solution, contentType string, data []byte) error
	DeleteThumbnail(ctx context.Context, solution string) error
}

// Store is the part of aim's store the API uses; *store.Store is one.
type Store interface {
	Tokens
	Providers
	Market
	Thumbnails
}

var _ Store = (*store.Store)(nil)

// Config configures the API.
type Config struct {
	// MaxUpload bounds a deploy's upload (manifest and build contexts).
	// Zero means 1 GiB.
	MaxUpload int64
	// TempDir holds uploads while they build. Empty means os.TempDir().
	TempDir string
	Logger  *slog.Logger
	// Inquirer takes inquiries; nil makes one on the store allowing 5 an
	// hour per client and 50 per solution. The pages share it.
	Inquirer *Inquirer
}

// API serves /api/v1/.
type API struct {
	cfg       Config
	ctl       Controller
	tokens    Tokens
	providers Providers
	market    Market
	thumbs    Thumbnails
	inquirer  *Inquirer
	log       *slog.Logger
	mux       *http.ServeMux
	// routes are the endpoints, each with its rule; tests walk them.
	routes []route
}

// New builds the API handler.
func New(cfg Config, ctl Controller, st Store) *API {
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, ctl: ctl, tokens: st, providers: st, market: st, thumbs: st, log: cfg.Logger, mux: http.NewServeMux()}
	a.inquirer = cfg.Inquirer
	if a.inquirer == nil {
		a.inquirer = &Inquirer{Store: st, Providers: st, Limits: inquiry.NewLimiter(5, 50, time.Hour)}
	}
	a.routes = a.table()
	for _, rt := range a.routes {
		a.mux.Handle(rt.pattern, a.guard(rt))
	}
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// table is every endpoint of the API with the rule that guards it and
// what it does, as the refusals say it.
func (a *API) table() []route {
	return []route{
		{"GET /api/v1/solutions", anyone, "listing solutions", a.list},
		{"GET /api/v1/solutions/{name}", admitted, "reading solution {name}", a.get},
		{"PUT /api/v1/solutions/{name}", deployer, "deploying solution {name}", a.deploy},
		{"DELETE /api/v1/solutions/{name}", keeper, "removing solution {name}", a.remove},
		{"GET /api/v1/solutions/{name}/logs", manager, "reading the logs of solution {name}", a.logs},
		{"POST /api/v1/solutions/{name}/wake", manager, "waking solution {name}", a.wake},
		{"POST /api/v1/solutions/{name}/sleep", manager, "putting solution {name} to sleep", a.sleep},
		{"GET /api/v1/providers", admin, "listing providers", a.listProviders},
		{"GET /api/v1/providers/{name}", admin, "reading provider {name}", a.getProvider},
		{"PUT /api/v1/providers/{name}", admin, "saving provider {name}", a.putProvider},
		{"DELETE /api/v1/providers/{name}", admin, "deleting provider {name}", a.deleteProvider},
		{"GET /api/v1/tokens", tokenHolder, "listing tokens", a.listTokens},
		{"POST /api/v1/tokens", tokenHolder, "creating a token", a.createToken},
		{"DELETE /api/v1/tokens/{id}", tokenManager, "revoking token {id}", a.revokeToken},
		{"GET /api/v1/me", anyone, "asking who you are", a.me},
		{"GET /api/v1/solutions/{name}/history", manager, "reading the history of solution {name}", a.history},
		{"POST /api/v1/solutions/{name}/rollback", manager, "rolling solution {name} back", a.rollback},
		{"GET /api/v1/solutions/{name}/usage", manager, "reading the usage of solution {name}", a.usage},
		{"POST /api/v1/solutions/{name}/inquiries", admitted, "asking about solution {name}", a.addInquiry},
		{"GET /api/v1/inquiries", tokenHolder, "reading inquiries", a.listInquiries},
		{"PUT /api/v1/providers/{name}/webhook", providerSelf, "setting the webhook of provider {name}", a.putWebhook},
		// A secret may be set before the first deploy of its name, by
		// whoever may deploy it (deployer), and is that owner's only.
		{"GET /api/v1/solutions/{name}/secrets", deployer, "listing the secrets of solution {name}", a.listSecrets},
		{"PUT /api/v1/solutions/{name}/secrets/{key}", deployer, "setting a secret of solution {name}", a.putSecret},
		{"DELETE /api/v1/solutions/{name}/secrets/{key}", deployer, "removing a secret of solution {name}", a.deleteSecret},
		// A registry login is its giver's own (a provider's, or the
		// admins'), used for the images of that owner's solutions only.
		{"GET /api/v1/registries", tokenHolder, "listing your registry logins", a.listRegistryLogins},
		{"PUT /api/v1/registries/{host}", tokenHolder, "logging in to a registry", a.putRegistryLogin},
		{"DELETE /api/v1/registries/{host}", tokenHolder, "logging out of a registry", a.deleteRegistryLogin},
		{"GET /api/v1/solutions/{name}/volumes", keeper, "listing the volumes of solution {name}", a.volumes},
		{"GET /api/v1/solutions/{name}/volumes/{volume}", keeper, "exporting a volume of solution {name}", a.exportVolume},
		{"PUT /api/v1/solutions/{name}/volumes/{volume}", keeper, "importing into a volume of solution {name}", a.importVolume},
	}
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// guard authenticates and authorizes a request for rt before its handler
// runs.
func (a *API) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.authenticate(r)
		if err != nil {
			a.fail(w, err)
			return
		}
		g, err := a.authorize(r, c, rt)
		if err != nil {
			a.fail(w, err)
			return
		}
		if !c.id.Anonymous() {
			// The server's read and write timeouts stop slow clients of
			// the solutions; a provider's upload, a deploy's progress
			// stream or a followed log may rightly take longer, and the
			// caller is known.
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		rt.handle(w, r, g)
	})
}

// statusError is an answer the API itself chose: a refusal of the
// caller's credential or role, or input it cannot take.
type statusError struct {
	status int
	msg    string
	// challenge, for a 401 or 403, is the WWW-Authenticate header.
	challenge string
}

func (e *statusError) Error() string { return e.msg }

// fail answers an error with the status that fits it. This is the one
// place errors become HTTP statuses.
func (a *API) fail(w http.ResponseWriter, err error) {
	var (
		ste *statusError
		ie  *solution.InputError
		se  *solution.StartError
		me  *spec.Error
		we  *solution.WakeError
	)
	switch {
	case errors.As(err, &ste):
		if ste.challenge != "" {
			w.Header().Set("WWW-Authenticate", ste.challenge)
		}
		writeError(w, ste.status, ste.msg)
	case errors.Is(err, solution.ErrNotFound), errors.Is(err, runtime.ErrNotFound), errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, new(*solution.OwnedError)):
		// Another provider's first deploy claimed the name after this
		// one was authorized: refused as the authorization would have.
		writeError(w, http.StatusForbidden, err.Error())
	case errors.As(err, new(*store.InUseError)):
		// The provider still owns solutions: the conflict is with state
		// the caller can change, by removing them.
		writeError(w, http.StatusConflict, err.Error())
	case errors.As(err, new(*store.InputError)), errors.As(err, new(*store.UnknownProviderError)):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
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

// readJSON decodes a request's JSON body into v strictly: an unknown
// field is an error, as in aim.yaml. An empty body leaves v as it is.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return &statusError{status: http.StatusBadRequest, msg: "the request body is not the JSON this call takes: " + err.Error()}
	}
	return nil
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
