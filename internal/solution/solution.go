// Package solution holds what both ways of running aim say about a
// solution: its state, how the API shows it, what a deploy asks for, and
// the errors a backend returns. The Docker controller
// (internal/controller) and the Kubernetes backend (internal/kube/backend)
// produce these; the API, the client, the web pages and the metrics read
// them. It depends on the packaging standard (internal/spec) alone, so that
// none of its readers links a runtime.
package solution

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// State is a solution's state as users see it.
type State string

// The states of a solution.
const (
	Deploying State = "deploying" // first deploy in progress
	Starting  State = "starting"  // containers started, not answering yet
	Ready     State = "ready"
	Stopping  State = "stopping" // going to sleep: routed as sleeping, containers still stopping
	Sleeping  State = "sleeping" // scaled to zero; the next request wakes it
	Waking    State = "waking"
	Failed    State = "failed"
)

// States lists every State, in lifecycle order; the metrics export one
// series per state.
var States = []State{Deploying, Starting, Ready, Stopping, Sleeping, Waking, Failed}

// Info is a solution as the API shows it.
type Info struct {
	Name        string        `json:"name"`
	Title       string        `json:"title"`
	Description string        `json:"description,omitempty"`
	Provider    spec.Provider `json:"provider"`
	Tags        []string      `json:"tags,omitempty"`
	URL         string        `json:"url"`
	State       State         `json:"state"`
	Reason      string        `json:"reason,omitempty"`
	Generation  int64         `json:"generation"`
	SkipChecks  bool          `json:"skipChecks,omitempty"`
	// OpenAPI is the URL of the solution's OpenAPI document, when the
	// deploy's checks found one.
	OpenAPI string `json:"openapi,omitempty"`
	// Findings are the rules that warned or failed at the deploy of the
	// generation that serves.
	Findings   []Finding       `json:"findings,omitempty"`
	Components []ComponentInfo `json:"components"`
	Manifest   *spec.Manifest  `json:"manifest"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
	// Owner is the aim provider the solution belongs to; empty means the
	// platform's admins. The API shows it to those who manage the
	// solution only.
	Owner string `json:"owner,omitempty"`
	// Visibility is the manifest's, with the default (public) filled in.
	Visibility spec.Visibility `json:"visibility"`
}

// ComponentInfo is one component's part of Info.
type ComponentInfo struct {
	Name     string   `json:"name"`
	Public   bool     `json:"public"`
	Paths    []string `json:"paths,omitempty"`
	Image    string   `json:"image"`
	Replicas int      `json:"replicas"`
	Running  int      `json:"running"`
	Restarts int      `json:"restarts"`
	// LastExit is the exit code of the last replica that stopped.
	LastExit int `json:"lastExit,omitempty"`
}

// Secret is what the API shows of one of a solution's secrets: never its
// value.
type Secret struct {
	Name  string    `json:"name"`
	SetAt time.Time `json:"setAt"`
	// UsedBy names the components of the serving manifest whose
	// environment takes it.
	UsedBy []string `json:"usedBy,omitempty"`
}

// RegistryLogin is what the API shows of a login to a container
// registry: never its password.
type RegistryLogin struct {
	Host     string    `json:"host"`
	Username string    `json:"username"`
	SetAt    time.Time `json:"setAt"`
}

// SecretChange is what setting or removing a secret did.
type SecretChange struct {
	// Restarted names the components restarted to take the new value
	// (on Kubernetes: whose pods roll).
	Restarted []string `json:"restarted,omitempty"`
}

// DeployRequest is one `aim deploy`.
type DeployRequest struct {
	Manifest *spec.Manifest
	// Contexts holds a tar build context for each component that builds.
	Contexts map[string]io.Reader
	// SkipChecks records that the operator skipped conformance checks.
	SkipChecks bool
	// By says who deploys, for the history: a token's name, a person.
	By string
	// RollbackOf is the generation a rollback serves again; 0 for a
	// deploy.
	RollbackOf int64
	// Owner is the provider the API decided the solution belongs to
	// (empty: the admins). The first deploy of a name stores it; an
	// update keeps the stored owner, and is refused with an *OwnedError
	// when Owner is set and differs from it (another provider claimed
	// the name between the API's decision and the deploy).
	Owner string
}

// Progress receives human-readable steps of a deploy.
type Progress func(component, msg string)

// ErrNotFound is returned for a solution aim doesn't have.
var ErrNotFound = errors.New("not found")

// ForbiddenError is an action that the platform under aim refused to aim
// itself: on Kubernetes, the API server denying the service account that
// aim's API runs as (its Role lacks a permission). It is the
// installation's to fix, not the caller's, whose token was accepted.
type ForbiddenError struct {
	// Action says what aim was doing, e.g. "waking solution x".
	Action string
	Err    error
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("%s: the cluster refused aim's own service account, so this aim installation lacks a permission (the Helm chart's Role for the API grants it; upgrade the release or add the rule): %v", e.Action, e.Err)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// OwnedError refuses a deploy of a name another provider holds. It
// names neither that provider nor anything of theirs.
type OwnedError struct{ Name string }

func (e *OwnedError) Error() string {
	return fmt.Sprintf("solution %s belongs to another provider: deploy under another name", e.Name)
}

// VisibilityOf is m's visibility with the default filled in; a nil
// manifest (one a backend could not read) has none.
func VisibilityOf(m *spec.Manifest) spec.Visibility {
	switch {
	case m == nil:
		return ""
	case m.Visibility == "":
		return spec.Public
	}
	return m.Visibility
}

// InputError is a deploy that failed because of what was sent: a build
// that fails, an image that doesn't exist. The API answers it with 400/422.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// CheckError is a deploy refused by the packaging standard's checks.
type CheckError struct{ Report string }

func (e *CheckError) Error() string {
	return "the solution does not follow the packaging standard (deploy with --skip-checks to override):\n" + e.Report
}

// StartError says why a solution did not start. Gateways answer it with
// 504 and the message.
type StartError struct {
	// Msg says what happened in a line.
	Msg string
	// Report, when set, is the packaging standard's word on why: a line
	// per rule broken, with its evidence and a fix, as aim check writes
	// them.
	Report string
}

func (e *StartError) Error() string {
	if e.Report == "" {
		return e.Msg
	}
	return e.Msg + ":\n" + e.Report
}

// Finding is a rule of the packaging standard that warned or failed when
// the solution was deployed (internal/check's Result).
type Finding struct {
	ID        string `json:"id"`
	Component string `json:"component,omitempty"`
	Rule      string `json:"rule"`
	Status    string `json:"status"`
	Evidence  string `json:"evidence"`
	Fix       string `json:"fix,omitempty"`
}

// WakeError is a wake that failed; the gateway answers it with 504.
type WakeError struct{ Msg string }

func (e *WakeError) Error() string   { return "the solution did not become ready: " + e.Msg }
func (e *WakeError) HTTPStatus() int { return http.StatusGatewayTimeout }

// Volume is a solution's persistent volume (spec.Volume) as the API shows
// it: what the runtime holds, which outlives the solution's containers.
type Volume struct {
	Name string `json:"name"`
	// Ref names it in the runtime: the Docker volume, or the
	// PersistentVolumeClaim.
	Ref  string        `json:"ref"`
	Size spec.ByteSize `json:"size,omitempty"`
	// Used is how many bytes it holds; -1 when the runtime cannot tell
	// (on Kubernetes).
	Used int64 `json:"used"`
	// Owner is the provider the solution belonged to when the volume was
	// made; empty means the admins. It decides who may reach a volume
	// that outlived its solution.
	Owner string `json:"-"`
}

// Removal is what `aim rm` did with a solution's volumes.
type Removal struct {
	// Kept are the volumes left for a later deploy of the same name by
	// the same owner, or for export.
	Kept []Volume `json:"kept,omitempty"`
	// Deleted are those deleted (--delete-data).
	Deleted []Volume `json:"deleted,omitempty"`
}
