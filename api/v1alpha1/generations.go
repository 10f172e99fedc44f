package v1alpha1

import (
	"fmt"
)

// A Solution's generations are kept by the operator as ControllerRevisions
// it owns, one per distinct spec the solution was given: revision is the
// generation's number (aim history's, not metadata.generation, which
// also counts a failed spec being put back), data the spec as JSON, and
// these annotations what became of it. aim's API reads them for a
// rollback and writes the reason of a deploy that failed.
const (
	// AnnotationOutcome is the generation's outcome: deploying, serving,
	// replaced or failed.
	AnnotationOutcome = "aim.dev/outcome"
	// AnnotationReason says why it failed.
	AnnotationReason = "aim.dev/reason"
	// AnnotationDeployedBy names who deployed it through aim's API.
	AnnotationDeployedBy = "aim.dev/deployed-by"
	// AnnotationRollbackOf is the generation it serves again.
	AnnotationRollbackOf = "aim.dev/rollback-of"
	// AnnotationDigests is a JSON object of each component's image as
	// the nodes ran it.
	AnnotationDigests = "aim.dev/digests"
	// AnnotationSolutionGeneration is the Solution's metadata.generation
	// whose spec the revision is: the latest one that had it.
	AnnotationSolutionGeneration = "aim.dev/solution-generation"
)

// RevisionName is the name of the ControllerRevision of a solution's
// generation n.
func RevisionName(solution string, n int64) string {
	return fmt.Sprintf("%s-gen-%d", solution, n)
}

// SecretsName is the Secret that holds a solution's secrets, one key
// each, which its components' SecretEnv take their values from. The API
// writes it (aim secret set); the operator only refers to it.
func SecretsName(solution string) string { return "aim-secrets-" + solution }

// PullSecretName is the kubernetes.io/dockerconfigjson Secret that holds
// the registry logins a solution's images are pulled with: its owner's,
// for the registries its images name. The API writes it with each
// deploy and names it in spec.imagePullSecrets.
func PullSecretName(solution string) string { return "aim-pull-" + solution }
