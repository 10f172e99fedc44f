package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// Labels of a solution's volumes, beside LabelManaged and LabelSolution.
const (
	LabelVolume = "dev.aim.volume"
	// LabelOwner is the provider the solution belonged to when the
	// volume was made ("" for the admins): a volume that outlives its
	// solution is reused by a deploy for the same owner only.
	LabelOwner = "dev.aim.owner"
	LabelSize  = "dev.aim.size"
)

// VolumeName is the engine's name of a solution's volume. The underscore
// cannot occur in a solution's or a volume's name (both DNS labels), so
// solution a-b's volume c and solution a's volume b-c never meet.
func (d *Docker) VolumeName(sol, vol string) string { return volumeName(d.prefix, sol, vol) }

func volumeName(prefix, sol, vol string) string { return prefix + "-" + sol + "_" + vol }

// volumeMounts are comp's volumes as the engine mounts them. NoCopy: a
// new volume starts empty rather than with what the image has at the
// path, so that what a component finds does not depend on which image
// mounted the volume first.
func volumeMounts(prefix, sol string, comp spec.Component) []mount.Mount {
	var out []mount.Mount
	for _, v := range comp.Volumes {
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: volumeName(prefix, sol, v.Name), Target: v.Path,
			ReadOnly: v.ReadOnly, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	return out
}

// ScratchTmpfs are comp's volumes as empty tmpfs directories, for a run
// that must not touch the data: `aim check`, and a deploy's trial replica,
// which must not write what its siblings keep nor hold the lock a program
// like Prometheus takes on it. The engine gives a tmpfs over a directory
// of the image that directory's owner and mode, whatever mode= says, so a
// numeric user is made its owner.
func ScratchTmpfs(comp spec.Component, user string) map[string]string {
	out := map[string]string{}
	for _, v := range comp.Volumes {
		opts := "rw,nosuid,nodev,size=64m,mode=1777"
		if v.ReadOnly {
			opts = "ro,nosuid,nodev,size=64m"
		}
		if uid, gid, ok := numericUser(user); ok {
			opts += fmt.Sprintf(",uid=%d,gid=%d", uid, gid)
		}
		out[v.Path] = opts
	}
	return out
}

// ensureVolumes makes the volumes of s that do not exist yet, each owned
// by the user its writer runs as, and refuses ones kept from a solution
// of the same name that belonged to someone else.
func (d *Docker) ensureVolumes(ctx context.Context, s runtime.Spec) error {
	for _, sv := range s.Manifest.Volumes() {
		name := d.VolumeName(s.Manifest.Name, sv.Name)
		v, err := d.cli.VolumeInspect(ctx, name)
		if err == nil {
			if v.Labels[LabelManaged] != d.prefix || v.Labels[LabelSolution] != s.Manifest.Name || v.Labels[LabelOwner] != s.Owner {
				return fmt.Errorf("volume %s: the engine's volume %s was kept from an earlier solution %s that belonged to someone else, "+
					"so it is not mounted: an admin exports or deletes it (docs/operations.md), or deploy under another name", sv.Name, name, s.Manifest.Name)
			}
			continue
		}
		if !errdefs.IsNotFound(err) {
			return fmt.Errorf("inspecting volume %s: %w", name, err)
		}
		if _, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local", Labels: map[string]string{
			LabelManaged: d.prefix, LabelSolution: s.Manifest.Name, LabelVolume: sv.Name, LabelOwner: s.Owner, LabelSize: sv.Size.String(),
		}}); err != nil {
			return fmt.Errorf("creating volume %s: %w", name, err)
		}
		if err := d.chownVolume(ctx, s, sv); err != nil {
			// Without its owner the component could not write it; a
			// later deploy makes it again.
			_ = d.cli.VolumeRemove(context.WithoutCancel(ctx), name, false)
			return err
		}
	}
	return nil
}

// chownVolume gives a new volume's top directory to the user its writer
// (or its first reader) runs as. The engine does it: a tar holding just
// that directory, with its owner, copied into a container that mounts the
// volume and never starts. A numeric user goes in the tar's header; a
// user named in the image's /etc/passwd is resolved by the engine
// (CopyUIDGID), which needs the component's own image.
func (d *Docker) chownVolume(ctx context.Context, s runtime.Spec, sv spec.SolutionVolume) error {
	compName := sv.Writer
	if compName == "" {
		compName = firstMounting(s.Manifest, sv.Name)
	}
	comp, _ := s.Manifest.Component(compName)
	inspected, err := d.cli.ImageInspect(ctx, s.Images[comp.Name])
	if err != nil {
		return fmt.Errorf("component %s: image %q: %w", comp.Name, s.Images[comp.Name], err)
	}
	user := ImageOf(inspected).User
	if !comp.RunAsRoot && isRoot(user) {
		user = nobody
	}
	uid, gid, numeric := numericUser(user)
	if isRoot(user) {
		return nil // the engine made it root's
	}
	img := ""
	if !numeric {
		img = s.Images[comp.Name]
	}
	return d.withHelper(ctx, s.Manifest.Name, sv.Name, img, user, func(id string) error {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "volume/", Mode: 0o755, Uid: uid, Gid: gid, ModTime: time.Now()})
		_ = tw.Close()
		if err := d.cli.CopyToContainer(ctx, id, "/", &b, container.CopyToContainerOptions{CopyUIDGID: !numeric}); err != nil {
			return fmt.Errorf("giving volume %s to user %s: %w", sv.Name, user, err)
		}
		return nil
	})
}

func firstMounting(m *spec.Manifest, vol string) string {
	for _, c := range m.Components {
		for _, v := range c.Volumes {
			if v.Name == vol {
				return c.Name
			}
		}
	}
	return ""
}

// numericUser reads "uid" or "uid:gid" (gid 0), the one parser of USER
// in numbers; ok is false for a name, which only the engine resolves
// exactly, from the image (knownUser spells the names aim may assume).
func numericUser(u string) (uid, gid int, ok bool) {
	us, gs, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.Atoi(us)
	if err != nil {
		return 0, 0, false
	}
	if hasGroup {
		if gid, err = strconv.Atoi(gs); err != nil {
			return 0, 0, false
		}
	}
	return uid, gid, true
}

// helperImage is an image with no files at all, made by the engine from an
// empty tar: the helper containers that reach a volume are created from
// it and never started, so they need nothing, and a volume stays
// reachable after its solution's images are gone.
func (d *Docker) helperImage(ctx context.Context) (string, error) {
	ref := d.prefix + "-volume-helper:1"
	if _, err := d.cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	var b bytes.Buffer
	_ = tar.NewWriter(&b).Close()
	rc, err := d.cli.ImageImport(ctx, image.ImportSource{Source: &b, SourceName: "-"}, ref, image.ImportOptions{})
	if err != nil {
		return "", fmt.Errorf("making the volume helper image: %w", err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return ref, err
}

// withHelper runs do with a container, created but never started, that
// mounts the solution's volume read-write at /volume. img empty means the
// helper image.
func (d *Docker) withHelper(ctx context.Context, sol, vol, img, user string, do func(id string) error) error {
	var err error
	if img == "" {
		if img, err = d.helperImage(ctx); err != nil {
			return err
		}
	}
	name := d.VolumeName(sol, vol) + "-helper"
	cfg := &container.Config{Image: img, User: user, Cmd: []string{"/never-started"}, Labels: map[string]string{"dev.aim.volume-helper": d.prefix}}
	host := &container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: d.VolumeName(sol, vol), Target: "/volume",
		VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}}
	id, err := d.createNamed(ctx, sol, vol, name, cfg, host, nil)
	if err != nil {
		return err
	}
	defer func() {
		_ = d.cli.ContainerRemove(context.WithoutCancel(ctx), id, container.RemoveOptions{Force: true})
	}()
	return do(id)
}

// Volumes lists the volumes the engine keeps for a solution, with what
// each holds (the engine's own count, which walks every volume it has:
// only listings pay for it, lookups go through listVolumes).
func (d *Docker) Volumes(ctx context.Context, sol string) ([]solution.Volume, error) {
	out, err := d.listVolumes(ctx, sol)
	if err != nil || len(out) == 0 {
		return out, err
	}
	if du, err := d.cli.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.VolumeObject}}); err == nil {
		used := map[string]int64{}
		for _, v := range du.Volumes {
			if v.UsageData != nil {
				used[v.Name] = v.UsageData.Size
			}
		}
		for i, v := range out {
			if u, ok := used[v.Ref]; ok {
				out[i].Used = u
			}
		}
	}
	return out, nil
}

// listVolumes lists a solution's volumes from their labels, Used -1.
func (d *Docker) listVolumes(ctx context.Context, sol string) ([]solution.Volume, error) {
	list, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.solutionFilter(sol)})
	if err != nil {
		return nil, fmt.Errorf("listing volumes of %s: %w", sol, err)
	}
	var out []solution.Volume
	for _, v := range list.Volumes {
		size, _ := spec.ParseByteSize(v.Labels[LabelSize])
		out = append(out, solution.Volume{Name: v.Labels[LabelVolume], Ref: v.Name, Size: size, Used: -1, Owner: v.Labels[LabelOwner]})
	}
	return out, nil
}

// DeleteVolume deletes a solution's volume; its containers must be gone
// (Remove).
func (d *Docker) DeleteVolume(ctx context.Context, sol, vol string) error {
	v, err := d.volume(ctx, sol, vol)
	if errors.Is(err, solution.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// A helper a crash left behind would hold it.
	_ = d.cli.ContainerRemove(ctx, v.Ref+"-helper", container.RemoveOptions{Force: true})
	if err := d.cli.VolumeRemove(ctx, v.Ref, false); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting volume %s: %w", v.Ref, err)
	}
	return nil
}

// volume returns the solution's volume named vol, or solution.ErrNotFound.
func (d *Docker) volume(ctx context.Context, sol, vol string) (solution.Volume, error) {
	vs, err := d.listVolumes(ctx, sol)
	if err != nil {
		return solution.Volume{}, err
	}
	for _, v := range vs {
		if v.Name == vol {
			return v, nil
		}
	}
	return solution.Volume{}, fmt.Errorf("solution %s has no volume %q: %w", sol, vol, solution.ErrNotFound)
}

// ExportVolume writes the volume's files to w as a tar stream, with paths
// relative to the volume's top.
func (d *Docker) ExportVolume(ctx context.Context, sol, vol string, w io.Writer) error {
	if _, err := d.volume(ctx, sol, vol); err != nil {
		return err
	}
	return d.withHelper(ctx, sol, vol, "", "", func(id string) error {
		rc, _, err := d.cli.CopyFromContainer(ctx, id, "/volume")
		if err != nil {
			return fmt.Errorf("reading volume %s: %w", vol, err)
		}
		defer rc.Close()
		tr, tw := tar.NewReader(rc), tar.NewWriter(w)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return tw.Close()
			}
			if err != nil {
				return fmt.Errorf("reading volume %s: %w", vol, err)
			}
			rel, ok := strings.CutPrefix(h.Name, "volume/")
			if !ok || rel == "" {
				continue // the top directory itself
			}
			h.Name = rel
			if h.Typeflag == tar.TypeLink {
				h.Linkname = strings.TrimPrefix(h.Linkname, "volume/")
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	})
}

// ImportVolume adds the files of the tar stream r to the volume (files of
// the same name are replaced; others are kept). Every file is given to the
// volume's owner, without set-id bits, and only files, directories and
// links are taken: an import carries data, not devices or privileges.
func (d *Docker) ImportVolume(ctx context.Context, sol, vol string, r io.Reader) error {
	if _, err := d.volume(ctx, sol, vol); err != nil {
		return err
	}
	return d.withHelper(ctx, sol, vol, "", "", func(id string) error {
		top, _, err := d.cli.CopyFromContainer(ctx, id, "/volume")
		if err != nil {
			return fmt.Errorf("reading volume %s: %w", vol, err)
		}
		h, err := tar.NewReader(top).Next()
		top.Close()
		if err != nil {
			return fmt.Errorf("reading volume %s: %w", vol, err)
		}
		uid, gid := h.Uid, h.Gid
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := rewriteImport(r, pw, uid, gid)
			pw.CloseWithError(err)
			done <- err
		}()
		err = d.cli.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{})
		pr.CloseWithError(errors.New("the engine stopped reading"))
		var ie *ImportError
		if rerr := <-done; errors.As(rerr, &ie) {
			return &solution.InputError{Msg: fmt.Sprintf("importing into volume %s: %v (nothing after that entry was imported)", vol, rerr)}
		}
		if err != nil {
			return fmt.Errorf("writing volume %s: %w", vol, err)
		}
		return nil
	})
}

// ImportError is a tar stream an import refused, with the entry that
// made it.
type ImportError struct{ Entry, Msg string }

func (e *ImportError) Error() string {
	return fmt.Sprintf("the tar stream's entry %q %s", e.Entry, e.Msg)
}

// rewriteImport copies the tar stream r to w under volume/, owned by
// uid:gid, refusing entries that are not files, directories or links, or
// that leave the volume.
func rewriteImport(r io.Reader, w io.Writer, uid, gid int) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	// Directories a stream implies but does not hold are made here, the
	// owner's: the engine would make them root's.
	dirs := map[string]bool{}
	parents := func(name string) error {
		var missing []string
		for d := path.Dir(name); d != "/" && !dirs[d]; d = path.Dir(d) {
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			dirs[missing[i]] = true
			h := &tar.Header{Typeflag: tar.TypeDir, Name: "volume" + missing[i] + "/", Mode: 0o755, Uid: uid, Gid: gid, ModTime: time.Now()}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return &ImportError{Msg: "could not be read: " + err.Error()}
		}
		if slices.Contains(strings.Split(h.Name, "/"), "..") {
			return &ImportError{Entry: h.Name, Msg: "has a .. in its path; paths stay inside the volume"}
		}
		name := path.Clean("/" + h.Name)
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			h.Linkname = "volume" + path.Clean("/"+h.Linkname)
		default:
			return &ImportError{Entry: h.Name, Msg: "is not a file, a directory or a link; only those are imported"}
		}
		if name == "/" {
			continue
		}
		if err := parents(name); err != nil {
			return err
		}
		h.Name = "volume" + name
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
			dirs[name] = true
		}
		h.Uid, h.Gid, h.Uname, h.Gname = uid, gid, "", ""
		h.Mode &^= 0o6000
		h.PAXRecords = nil
		h.Xattrs = nil //nolint:staticcheck // set by old tar writers; dropped with the PAX records
		h.Format = tar.FormatUnknown
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
