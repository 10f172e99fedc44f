package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/solution"
)

var _ api.Registries = (*Solutions)(nil)

// On Kubernetes an owner's registry logins are one Secret in the
// solutions' namespace, loginsName(owner), annotated with the owner,
// holding them as JSON under loginsKey: the cluster keeps them (encrypted
// at rest as it is configured to), aim's store none. A deploy copies the
// logins for the registries its images name into the solution's own
// kubernetes.io/dockerconfigjson Secret, v1alpha1.PullSecretName, which
// spec.imagePullSecrets names: a pod never gets another owner's logins.
// registryHostsName keeps every host anyone has had a login to, which
// stays after a logout: their images are pulled for every pod
// (components[].pullAlways), so that a node's cache never serves a
// private image to a solution whose Secret would not pull it.
const (
	loginsKey         = "logins.json"
	registryHostsName = "aim-registry-hosts"
	hostsKey          = "hosts.json"
)

// LoginChecker tries a registry login; *logincheck.Checker is one.
type LoginChecker interface {
	Check(ctx context.Context, l registry.Login) error
}

// keptLogin is one login in an owner's Secret.
type keptLogin struct {
	Username string    `json:"username"`
	Password string    `json:"password"`
	SetAt    time.Time `json:"setAt"`
}

// loginsName is the Secret of owner's logins: a hash, since an owner's
// name need not be a DNS label and the admins' is empty.
func loginsName(owner string) string {
	sum := sha256.Sum256([]byte("registry logins\x00" + owner))
	return "aim-registry-logins-" + hex.EncodeToString(sum[:8])
}

// readJSONSecret reads key of Secret name as JSON into v; a missing
// Secret leaves v as it is and returns nil.
func (s *Solutions) readJSONSecret(ctx context.Context, name, key string, v any) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	err := s.client.Get(ctx, s.key(name), sec)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	if b := sec.Data[key]; len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("Secret %s: %s is not aim's JSON: %w", name, key, err)
		}
	}
	return sec, nil
}

// writeJSONSecret writes v as key of Secret name, made with labels and
// annotations when it is missing; cur is what readJSONSecret returned.
func (s *Solutions) writeJSONSecret(ctx context.Context, cur *corev1.Secret, name, key string, annotations map[string]string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if cur == nil {
		cur = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.cfg.Namespace, Annotations: annotations,
			Labels: map[string]string{"app.kubernetes.io/managed-by": kube.FieldManager}}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{key: b}}
		return s.client.Create(ctx, cur, client.FieldOwner(kube.FieldManager))
	}
	if cur.Data == nil {
		cur.Data = map[string][]byte{}
	}
	cur.Data[key] = b
	return s.client.Update(ctx, cur, client.FieldOwner(kube.FieldManager))
}

// readLogins returns owner's logins by host.
func (s *Solutions) readLogins(ctx context.Context, owner string) (map[string]keptLogin, *corev1.Secret, error) {
	out := map[string]keptLogin{}
	sec, err := s.readJSONSecret(ctx, loginsName(owner), loginsKey, &out)
	if err != nil {
		return nil, nil, err
	}
	if sec != nil && sec.Annotations[v1alpha1.AnnotationOwner] != owner {
		return nil, nil, fmt.Errorf("Secret %s holds the logins of another owner than %q", sec.Name, owner)
	}
	return out, sec, nil
}

// changeLogins applies change to owner's logins and writes them, again
// on a conflict.
func (s *Solutions) changeLogins(ctx context.Context, owner string, change func(map[string]keptLogin) error) error {
	for attempt := 0; ; attempt++ {
		logins, sec, err := s.readLogins(ctx, owner)
		if err != nil {
			return err
		}
		if err := change(logins); err != nil {
			return err
		}
		err = s.writeJSONSecret(ctx, sec, loginsName(owner), loginsKey, map[string]string{v1alpha1.AnnotationOwner: owner}, logins)
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing the registry logins: %w", err)
		}
		return nil
	}
}

// privateHosts returns every host anyone has had a login to.
func (s *Solutions) privateHosts(ctx context.Context) (map[string]bool, *corev1.Secret, error) {
	var hosts []string
	sec, err := s.readJSONSecret(ctx, registryHostsName, hostsKey, &hosts)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]bool{}
	for _, h := range hosts {
		out[h] = true
	}
	return out, sec, nil
}

func (s *Solutions) addPrivateHost(ctx context.Context, host string) error {
	for attempt := 0; ; attempt++ {
		hosts, sec, err := s.privateHosts(ctx)
		if err != nil {
			return err
		}
		if hosts[host] {
			return nil
		}
		list := []string{host}
		for h := range hosts {
			list = append(list, h)
		}
		slices.Sort(list)
		err = s.writeJSONSecret(ctx, sec, registryHostsName, hostsKey, nil, list)
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("noting registry %s as private: %w", host, err)
		}
		return nil
	}
}

// LoginRegistry implements api.Registries.
func (s *Solutions) LoginRegistry(ctx context.Context, owner, host, username string, password []byte, by string) (*solution.RegistryLogin, error) {
	h, err := registry.ParseHost(host)
	if err != nil {
		return nil, &solution.InputError{Msg: err.Error()}
	}
	if s.cfg.Logins != nil {
		// From this pod, as `docker login` does from the engine on one
		// host: a mistyped password is told now, not at a deploy.
		if err := s.cfg.Logins.Check(ctx, registry.Login{Host: h, Username: username, Password: string(password)}); err != nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("%v\nfix: check the user and the password (or token) for %s; nothing was kept", err, h)}
		}
	}
	// The host is private before the login exists: never a moment when
	// a pod pulls its images from a node's cache.
	if err := s.addPrivateHost(ctx, h); err != nil {
		return nil, refused("logging in to registry "+h, err)
	}
	at := time.Now().UTC()
	err = s.changeLogins(ctx, owner, func(m map[string]keptLogin) error {
		m[h] = keptLogin{Username: username, Password: string(password), SetAt: at}
		return nil
	})
	if err != nil {
		return nil, refused("logging in to registry "+h, err)
	}
	s.log.Info("registry login kept", "registry", h, "owner", owner, "by", by)
	return &solution.RegistryLogin{Host: h, Username: username, SetAt: at}, nil
}

// RegistryLogins implements api.Registries.
func (s *Solutions) RegistryLogins(ctx context.Context, owner string) ([]solution.RegistryLogin, error) {
	logins, _, err := s.readLogins(ctx, owner)
	if err != nil {
		return nil, refused("listing registry logins", err)
	}
	out := make([]solution.RegistryLogin, 0, len(logins))
	for h, l := range logins {
		out = append(out, solution.RegistryLogin{Host: h, Username: l.Username, SetAt: l.SetAt})
	}
	slices.SortFunc(out, func(a, b solution.RegistryLogin) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// LogoutRegistry implements api.Registries. Solutions deployed with the
// login keep it in their pull Secrets until their next deploy.
func (s *Solutions) LogoutRegistry(ctx context.Context, owner, host string) error {
	h, err := registry.ParseHost(host)
	if err != nil {
		return &solution.InputError{Msg: err.Error()}
	}
	err = s.changeLogins(ctx, owner, func(m map[string]keptLogin) error {
		if _, ok := m[h]; !ok {
			return fmt.Errorf("login to %s: %w", h, solution.ErrNotFound)
		}
		delete(m, h)
		return nil
	})
	return refused("logging out of registry "+h, err)
}

// pullSecret fills want's imagePullSecrets and pullAlways for solution
// name of owner, writing its pull Secret with owner's logins for the
// registries its images name (or removing it when there are none).
func (s *Solutions) pullSecret(ctx context.Context, name, owner string, want *v1alpha1.SolutionSpec) error {
	hosts, _, err := s.privateHosts(ctx)
	if err != nil {
		return err
	}
	logins, _, err := s.readLogins(ctx, owner)
	if err != nil {
		return err
	}
	var use []registry.Login
	for i, c := range want.Components {
		h, err := registry.HostOf(c.Image)
		if err != nil {
			return &solution.InputError{Msg: fmt.Sprintf("component %s: %v", c.Name, err)}
		}
		if !hosts[h] {
			continue
		}
		want.Components[i].PullAlways = true
		if l, ok := logins[h]; ok && !slices.ContainsFunc(use, func(u registry.Login) bool { return u.Host == h }) {
			use = append(use, registry.Login{Host: h, Username: l.Username, Password: l.Password})
		}
	}
	want.ImagePullSecrets = nil
	if len(use) == 0 {
		return s.removePullSecret(ctx, name)
	}
	data, err := registry.DockerConfigJSON(use)
	if err != nil {
		return err
	}
	want.ImagePullSecrets = []string{v1alpha1.PullSecretName(name)}
	return s.writePullSecret(ctx, name, owner, data)
}

func (s *Solutions) writePullSecret(ctx context.Context, name, owner string, data []byte) error {
	for attempt := 0; ; attempt++ {
		sec := &corev1.Secret{}
		err := s.client.Get(ctx, s.key(v1alpha1.PullSecretName(name)), sec)
		if apierrors.IsNotFound(err) {
			sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.PullSecretName(name), Namespace: s.cfg.Namespace,
				Labels: map[string]string{v1alpha1.LabelSolution: name}}, Type: corev1.SecretTypeDockerConfigJson}
			err = nil
		}
		if err != nil {
			return fmt.Errorf("reading the pull Secret of %s: %w", name, err)
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Annotations[v1alpha1.AnnotationOwner] = owner
		sec.Data = map[string][]byte{corev1.DockerConfigJsonKey: data}
		if sec.ResourceVersion == "" {
			err = s.client.Create(ctx, sec, client.FieldOwner(kube.FieldManager))
		} else {
			err = s.client.Update(ctx, sec, client.FieldOwner(kube.FieldManager))
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing the pull Secret of %s: %w", name, err)
		}
		return nil
	}
}

func (s *Solutions) removePullSecret(ctx context.Context, name string) error {
	err := s.client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.PullSecretName(name), Namespace: s.cfg.Namespace}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the pull Secret of %s: %w", name, err)
	}
	return nil
}

// pullHint is the fix for a pod whose image pull a registry refused for
// credentials, naming the registry of comp's image.
func pullHint(why, image string) string {
	if !registry.IsRefusal(why) {
		return ""
	}
	h, err := registry.HostOf(image)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("\nfix: registry %s refused to give %s without a login: run `aim registry login %s --username USER --password-stdin` as the solution's owner, then deploy again", h, image, h)
}
