package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

var _ api.Secrets = (*Solutions)(nil)

// On Kubernetes a solution's secrets are one Secret, v1alpha1.SecretsName,
// a key each, which its pods take by secretKeyRef: the cluster keeps the
// values (encrypted at rest as the cluster is configured to), aim's store
// none. The Secret's annotations say whose it is and when each key was
// set; the Solution's spec.secretVersions carries those times, so that a
// secret set again rolls the pods of the components that use it.
const annotationSecretsSet = "aim.dev/secrets-set"

// readSecrets returns the Secret of name's secrets, when it is owner's;
// nil when there is none or it is another owner's (set for the name
// before someone else claimed it).
func (s *Solutions) readSecrets(ctx context.Context, name, owner string) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	err := s.client.Get(ctx, s.key(v1alpha1.SecretsName(name)), sec)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secrets of %s: %w", name, err)
	}
	if sec.Annotations[v1alpha1.AnnotationOwner] != owner {
		return nil, nil
	}
	return sec, nil
}

func setTimes(sec *corev1.Secret) map[string]string {
	out := map[string]string{}
	if sec != nil {
		_ = json.Unmarshal([]byte(sec.Annotations[annotationSecretsSet]), &out)
	}
	return out
}

// SetSecret implements api.Secrets.
func (s *Solutions) SetSecret(ctx context.Context, name, owner, key string, value []byte, by string) (*solution.SecretChange, error) {
	ch, err := s.setSecret(ctx, name, owner, key, value, by)
	return ch, refused("setting a secret of solution "+name, err)
}

func (s *Solutions) setSecret(ctx context.Context, name, owner, key string, value []byte, by string) (*solution.SecretChange, error) {
	if err := spec.ValidSecretName(key); err != nil {
		return nil, &solution.InputError{Msg: err.Error()}
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	for attempt := 0; ; attempt++ {
		err := s.writeSecret(ctx, name, owner, func(sec *corev1.Secret, times map[string]string) {
			sec.Data[key] = value
			times[key] = at
		})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	s.log.Info("secret set", "solution", name, "secret", key, "by", by)
	return s.bumpVersions(ctx, name, owner, key, at)
}

// writeSecret creates or changes owner's Secret of name with change; one
// left by another owner is replaced whole.
func (s *Solutions) writeSecret(ctx context.Context, name, owner string, change func(sec *corev1.Secret, times map[string]string)) error {
	sec := &corev1.Secret{}
	err := s.client.Get(ctx, s.key(v1alpha1.SecretsName(name)), sec)
	create := apierrors.IsNotFound(err)
	if err != nil && !create {
		return fmt.Errorf("reading the secrets of %s: %w", name, err)
	}
	if create {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.SecretsName(name), Namespace: s.cfg.Namespace,
			Labels: map[string]string{v1alpha1.LabelSolution: name}}, Type: corev1.SecretTypeOpaque}
	}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	times := setTimes(sec)
	if sec.Annotations[v1alpha1.AnnotationOwner] != owner {
		sec.Data, times = nil, map[string]string{}
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	change(sec, times)
	b, _ := json.Marshal(times)
	sec.Annotations[v1alpha1.AnnotationOwner] = owner
	sec.Annotations[annotationSecretsSet] = string(b)
	if create {
		err = s.client.Create(ctx, sec, client.FieldOwner(kube.FieldManager))
	} else {
		err = s.client.Update(ctx, sec, client.FieldOwner(kube.FieldManager))
	}
	if err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("writing the secrets of %s: %w", name, err)
	}
	return err
}

// bumpVersions records in owner's Solution name, when it uses secret key,
// that key was set at at: the operator rolls the pods that use it.
func (s *Solutions) bumpVersions(ctx context.Context, name, owner, key, at string) (*solution.SecretChange, error) {
	for attempt := 0; ; attempt++ {
		cur := &v1alpha1.Solution{}
		err := s.client.Get(ctx, s.key(name), cur)
		if apierrors.IsNotFound(err) {
			return &solution.SecretChange{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading solution %s: %w", name, err)
		}
		users := secretUsers(cur.Spec, key)
		if v1alpha1.OwnerOf(cur) != owner || len(users) == 0 {
			return &solution.SecretChange{}, nil
		}
		if cur.Spec.SecretVersions == nil {
			cur.Spec.SecretVersions = map[string]string{}
		}
		cur.Spec.SecretVersions[key] = at
		setNote(cur, v1alpha1.DeployNote{By: "secret " + key, Generation: cur.Generation + 1})
		err = s.client.Update(ctx, cur, client.FieldOwner(kube.FieldManager))
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the secret is set, but solution %s could not be told to restart with it: %w", name, err)
		}
		return &solution.SecretChange{Restarted: users}, nil
	}
}

func secretUsers(sp v1alpha1.SolutionSpec, key string) []string {
	var out []string
	for _, c := range sp.Components {
		for _, v := range c.SecretEnv {
			if v == key && !slices.Contains(out, c.Name) {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

// ListSecrets implements api.Secrets.
func (s *Solutions) ListSecrets(ctx context.Context, name, owner string) ([]solution.Secret, error) {
	sec, err := s.readSecrets(ctx, name, owner)
	if err != nil || sec == nil {
		return nil, refused("listing the secrets of solution "+name, err)
	}
	var sp v1alpha1.SolutionSpec
	if sol, err := s.fresh(ctx, name); err == nil && v1alpha1.OwnerOf(sol) == owner {
		sp = sol.Spec
	}
	times := setTimes(sec)
	var out []solution.Secret
	for k := range sec.Data {
		at, _ := time.Parse(time.RFC3339Nano, times[k])
		out = append(out, solution.Secret{Name: k, SetAt: at, UsedBy: secretUsers(sp, k)})
	}
	slices.SortFunc(out, func(a, b solution.Secret) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// DeleteSecret implements api.Secrets.
func (s *Solutions) DeleteSecret(ctx context.Context, name, owner, key string) error {
	return refused("removing a secret of solution "+name, s.deleteSecret(ctx, name, owner, key))
}

func (s *Solutions) deleteSecret(ctx context.Context, name, owner, key string) error {
	if sol, err := s.fresh(ctx, name); err == nil && v1alpha1.OwnerOf(sol) == owner {
		if users := secretUsers(sol.Spec, key); len(users) > 0 {
			return &solution.InputError{Msg: fmt.Sprintf("secret %s is used by component %s of %s: deploy a manifest without `{secret: %s}` first, then remove it", key, users[0], name, key)}
		}
	}
	sec, err := s.readSecrets(ctx, name, owner)
	if err != nil {
		return err
	}
	if sec == nil || sec.Data[key] == nil {
		return &solution.InputError{Msg: fmt.Sprintf("solution %s has no secret %s", name, key)}
	}
	for attempt := 0; ; attempt++ {
		err := s.writeSecret(ctx, name, owner, func(sec *corev1.Secret, times map[string]string) {
			delete(sec.Data, key)
			delete(times, key)
		})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		return err
	}
}

// secretVersions are when each secret m uses was set, for the Solution's
// spec at a deploy.
func (s *Solutions) secretVersions(ctx context.Context, m *spec.Manifest, owner string) (map[string]string, error) {
	used := m.Secrets()
	if len(used) == 0 {
		return nil, nil
	}
	sec, err := s.readSecrets(ctx, m.Name, owner)
	if err != nil {
		return nil, err
	}
	times := setTimes(sec)
	out := map[string]string{}
	for _, k := range used {
		if sec == nil || sec.Data[k] == nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("secret %q is not set for solution %s: set it first with `aim secret set %s %s`", k, m.Name, m.Name, k)}
		}
		out[k] = times[k]
	}
	return out, nil
}

// removeSecrets deletes name's Secret, whoever's it is, with the
// solution.
func (s *Solutions) removeSecrets(ctx context.Context, name string) error {
	err := s.client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.SecretsName(name), Namespace: s.cfg.Namespace}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the secrets of %s: %w", name, err)
	}
	return s.removePullSecret(ctx, name)
}
