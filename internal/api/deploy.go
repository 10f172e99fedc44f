package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/solution"

	"github.com/aimhub/aim/internal/buildctx"
	"github.com/aimhub/aim/internal/spec"
)

// Multipart field names of a deploy upload.
const (
	FieldManifest   = "manifest"
	FieldContext    = "context." // + component name: a tar build context
	FieldSkipChecks = "skipChecks"
	// FieldThumbnail is the file the manifest's thumbnail names, as it is.
	FieldThumbnail = "thumbnail"
)

// deploy takes a multipart upload: the manifest (aim.yaml as written),
// one tar build context per component that builds, and the thumbnail
// when the manifest names one. It validates
// everything before it answers, then streams the deploy's progress as
// NDJSON; the last line carries the result or the error. The deploy goes
// on if the client disconnects, so nothing is left half-done. The
// solution belongs to whom authorizeDeploy decided.
func (a *API) deploy(w http.ResponseWriter, r *http.Request, g *grant) {
	name := r.PathValue("name")
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "a deploy is a multipart/form-data upload with a 'manifest' part: "+err.Error())
		return
	}
	up, err := a.readUpload(mr)
	defer up.cleanup()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload is larger than the limit of %d bytes", a.cfg.MaxUpload))
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if up.manifest == nil {
		writeError(w, http.StatusBadRequest, "the upload has no 'manifest' part")
		return
	}
	m, err := spec.Parse(spec.FileName, up.manifest)
	if err != nil {
		var me *spec.Error
		if errors.As(err, &me) {
			writeJSON(w, http.StatusUnprocessableEntity, Event{Error: err.Error(), Problems: me.Problems})
			return
		}
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if m.Name != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the URL names solution %q but the manifest names %q", name, m.Name))
		return
	}
	thumbType, err := checkThumbnail(m, up)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if err := a.checkSecrets(r.Context(), m, up.manifest, g.owner); err != nil {
		var me *spec.Error
		if errors.As(err, &me) {
			writeJSON(w, http.StatusUnprocessableEntity, Event{Error: err.Error(), Problems: me.Problems})
			return
		}
		a.fail(w, err)
		return
	}
	req := solution.DeployRequest{Manifest: m, Contexts: map[string]io.Reader{}, SkipChecks: up.skipChecks, Owner: g.owner}
	for comp, f := range up.contexts {
		if _, ok := m.Component(comp); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the upload has a build context for %q, which the manifest does not name", comp))
			return
		}
		req.Contexts[comp] = f
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		e.Time = time.Now().UTC()
		_ = enc.Encode(e)
		_ = rc.Flush()
	}
	// The deploy outlives the request: a client that goes away must not
	// leave a solution half-built.
	ctx := context.WithoutCancel(r.Context())
	info, err := a.ctl.Deploy(ctx, req, func(comp, msg string) { send(Event{Component: comp, Message: msg}) })
	if err != nil {
		send(Event{Error: err.Error()})
		return
	}
	// The thumbnail changes with the generation that serves, not before:
	// a failed update leaves the old one beside the old generation.
	if err := a.keepThumbnail(ctx, name, thumbType, up.thumbnail); err != nil {
		a.log.Error("keeping a thumbnail", "solution", name, "err", err)
		send(Event{Error: "the solution is deployed, but its thumbnail could not be kept (deploy again): " + err.Error()})
		return
	}
	if msg, err := a.manifestWebhook(ctx, info.Owner, m.Provider.Webhook); err != nil {
		a.log.Error("setting the manifest's webhook", "solution", name, "err", err)
		send(Event{Error: "the solution is deployed, but provider.webhook could not be set (deploy again, or use aim provider webhook): " + err.Error()})
		return
	} else if msg != "" {
		send(Event{Message: msg})
	}
	send(Event{Result: view(g.id, info)})
}

// checkThumbnail checks the upload's thumbnail against the manifest:
// there when it names one (and only then), an image of a type aim
// serves, and small. It returns the type.
func checkThumbnail(m *spec.Manifest, up *upload) (string, error) {
	switch {
	case m.Thumbnail == "" && up.thumbnail != nil:
		return "", errors.New("the upload has a thumbnail, but the manifest names none (thumbnail: in aim.yaml)")
	case m.Thumbnail == "":
		return "", nil
	case up.thumbnail == nil:
		return "", fmt.Errorf("the manifest names thumbnail %s, but the upload has none (aim deploy sends the file)", m.Thumbnail)
	case up.thumbnailSize > spec.MaxThumbnail:
		return "", fmt.Errorf("thumbnail %s is %d bytes; at most %d (1 MiB)", m.Thumbnail, up.thumbnailSize, spec.MaxThumbnail)
	}
	return spec.CheckThumbnail(m.Thumbnail, up.thumbnail)
}

// keepThumbnail stores the deployed thumbnail, or forgets the one before
// when the manifest names none any more.
func (a *API) keepThumbnail(ctx context.Context, name, contentType string, data []byte) error {
	if data == nil {
		return a.thumbs.DeleteThumbnail(ctx, name)
	}
	return a.thumbs.PutThumbnail(ctx, name, contentType, data)
}

type upload struct {
	manifest []byte
	// thumbnail is read up to spec.MaxThumbnail bytes; thumbnailSize
	// counts all it had.
	thumbnail     []byte
	thumbnailSize int64
	contexts      map[string]*os.File
	skipChecks    bool
}

func (u *upload) cleanup() {
	for _, f := range u.contexts {
		f.Close()
		os.Remove(f.Name())
	}
}

// readUpload spools build contexts to temporary files, because the
// builds read them one after the other while the upload arrives in one
// stream.
func (a *API) readUpload(mr *multipart.Reader) (*upload, error) {
	up := &upload{contexts: map[string]*os.File{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return up, nil
		}
		if err != nil {
			return up, fmt.Errorf("reading the upload: %w", err)
		}
		field := p.FormName()
		switch {
		case field == FieldManifest:
			up.manifest, err = io.ReadAll(io.LimitReader(p, 1<<20+1))
			if err != nil {
				return up, fmt.Errorf("reading the manifest: %w", err)
			}
		case field == FieldThumbnail:
			up.thumbnail, err = io.ReadAll(io.LimitReader(p, spec.MaxThumbnail))
			if err != nil {
				return up, fmt.Errorf("reading the thumbnail: %w", err)
			}
			// Past the limit, only its size is kept, for the refusal.
			rest, err := io.Copy(io.Discard, p)
			if err != nil {
				return up, fmt.Errorf("reading the thumbnail: %w", err)
			}
			up.thumbnailSize = int64(len(up.thumbnail)) + rest
			if up.thumbnail == nil {
				up.thumbnail = []byte{}
			}
		case field == FieldSkipChecks:
			b, _ := io.ReadAll(io.LimitReader(p, 16))
			up.skipChecks = strings.TrimSpace(string(b)) == "true"
		case strings.HasPrefix(field, FieldContext):
			comp := strings.TrimPrefix(field, FieldContext)
			if err := spec.ValidName(comp); err != nil {
				return up, fmt.Errorf("build context for component %q: name %v", comp, err)
			}
			f, err := os.CreateTemp(a.cfg.TempDir, "aim-context-*.tar")
			if err != nil {
				return up, fmt.Errorf("spooling the build context of %s: %w", comp, err)
			}
			up.contexts[comp] = f
			// Checked as it is spooled: a hostile context is refused
			// before anything unpacks it.
			if err := buildctx.Check(io.TeeReader(p, f), buildctx.Limits{Bytes: a.cfg.MaxUpload}); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return up, err
				}
				return up, fmt.Errorf("build context of component %s: %w", comp, err)
			}
			if _, err := io.Copy(f, p); err != nil {
				return up, fmt.Errorf("reading the build context of %s: %w", comp, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return up, err
			}
		default:
			return up, fmt.Errorf("unexpected upload part %q (want %q, %q, %q or %q<component>)", field, FieldManifest, FieldThumbnail, FieldSkipChecks, FieldContext)
		}
		p.Close()
	}
}
