package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	dockerregistry "github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/errdefs"

	"github.com/aimhub/aim/internal/registry"
)

// Build builds an image from a tar build context with the engine's
// classic builder and tags it. progress receives the builder's output a
// line at a time; it may be nil.
func (d *Docker) Build(ctx context.Context, buildContext io.Reader, dockerfile, tag string, progress func(string)) error {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	resp, err := d.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  dockerfile,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      map[string]string{LabelManaged: d.prefix},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var last string
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("reading build output of %s: %w", tag, err)
		}
		if msg.Error != "" {
			e := msg.ErrorDetail.Message
			if e == "" {
				e = msg.Error
			}
			if last != "" {
				return fmt.Errorf("building %s failed at %q: %s", tag, last, e)
			}
			return fmt.Errorf("building %s failed: %s", tag, e)
		}
		for _, line := range strings.Split(strings.TrimRight(msg.Stream+msg.Status, "\n"), "\n") {
			if line == "" {
				continue
			}
			if strings.HasPrefix(line, "Step ") {
				last = line
			}
			if progress != nil {
				progress(line)
			}
		}
	}
	if _, err := d.cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("build of %s ended but the image is missing: %w", tag, err)
	}
	return nil
}

// EnsureImage makes sure the engine has an image named ref, pulling it
// anonymously when it doesn't. Only the name counts: an ID or an ID's
// prefix, which the engine would resolve to any image it holds (another
// provider's pulled with its login among them), is not taken.
func (d *Docker) EnsureImage(ctx context.Context, ref string, progress func(string)) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%q is not an image name: %w", ref, err)
	}
	img, err := d.cli.ImageInspect(ctx, ref)
	if err == nil && knownAs(img.RepoTags, img.RepoDigests, named) {
		return nil
	} else if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting image %q: %w", ref, err)
	}
	return d.PullImage(ctx, ref, "", progress)
}

// knownAs tells whether an image's tags or digests hold named (with
// :latest when it has neither tag nor digest), as the engine writes them.
func knownAs(tags, digests []string, named reference.Named) bool {
	if _, ok := named.(reference.Digested); ok {
		want := named.String()
		for _, d := range digests {
			if n, err := reference.ParseNormalizedNamed(d); err == nil && n.String() == want {
				return true
			}
		}
		return false
	}
	want := reference.TagNameOnly(named).String()
	for _, t := range tags {
		if n, err := reference.ParseNormalizedNamed(t); err == nil && n.String() == want {
			return true
		}
	}
	return false
}

// PullImage pulls ref from its registry, whether or not the engine has it,
// with auth (an X-Registry-Auth value, registry.EngineAuth; empty for
// none). A refusal for credentials wraps registry.ErrUnauthorized.
func (d *Docker) PullImage(ctx context.Context, ref, auth string, progress func(string)) error {
	rc, err := d.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return pullError(ref, err.Error(), errdefs.IsUnauthorized(err) || errdefs.IsForbidden(err))
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("pulling %q: %w", ref, err)
		}
		if msg.Error != "" {
			return pullError(ref, msg.Error, false)
		}
		if progress != nil && msg.Status != "" {
			progress(msg.Status)
		}
	}
	if _, err := d.cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("image %q: pulled, but the engine does not have it: %w", ref, err)
	}
	return nil
}

func pullError(ref, msg string, refused bool) error {
	if refused || registry.IsRefusal(msg) {
		return fmt.Errorf("image %q could not be pulled: %s: %w", ref, msg, registry.ErrUnauthorized)
	}
	return fmt.Errorf("image %q is not on the engine and could not be pulled: %s", ref, msg)
}

// RemoveImage deletes an image aim built; a missing one is not an error.
func (d *Docker) RemoveImage(ctx context.Context, ref string) error {
	_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing image %s: %w", ref, err)
	}
	return nil
}

// ImageID returns the engine's ID of an image, its content digest; an
// error when the engine has no such image.
func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspecting image %q: %w", ref, err)
	}
	return img.ID, nil
}

// CheckLogin asks the engine to log in to host with username and
// password, as `docker login` does, so that a mistyped password is told
// when it is given rather than at a deploy. The engine keeps nothing.
func (d *Docker) CheckLogin(ctx context.Context, host, username, password string) error {
	addr := host
	if host == registry.DockerHub {
		addr = "https://index.docker.io/v1/"
	}
	_, err := d.cli.RegistryLogin(ctx, dockerregistry.AuthConfig{Username: username, Password: password, ServerAddress: addr})
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", host, err)
	}
	return nil
}
