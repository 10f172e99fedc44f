// Package client is the Go client of aim's REST API. The CLI uses only
// this, so every command works against a remote server too.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aimhub/aim/internal/solution"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/buildctx"
)

// Client talks to one aim server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the server at base (e.g. http://127.0.0.1:8080).
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// Error is an error answered by the API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Status == http.StatusUnauthorized {
		return e.Message + " (set --token or AIM_TOKEN)"
	}
	return e.Message
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the aim server at %s does not answer (is `aim serve` running? set --server or AIM_SERVER): %w", c.base, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			return nil, &Error{Status: resp.StatusCode, Message: eb.Error}
		}
		return nil, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// List returns every solution.
func (c *Client) List(ctx context.Context) ([]solution.Info, error) {
	var out struct {
		Solutions []solution.Info `json:"solutions"`
	}
	err := c.getJSON(ctx, "/api/v1/solutions", &out)
	return out.Solutions, err
}

// Get returns one solution.
func (c *Client) Get(ctx context.Context, name string) (*solution.Info, error) {
	var out solution.Info
	if err := c.getJSON(ctx, "/api/v1/solutions/"+url.PathEscape(name), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Remove deletes a solution.
func (c *Client) Remove(ctx context.Context, name string, deleteData bool) (*solution.Removal, error) {
	p := "/api/v1/solutions/" + url.PathEscape(name)
	if deleteData {
		p += "?deleteData=true"
	}
	resp, err := c.do(ctx, http.MethodDelete, p, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out solution.Removal
	if resp.StatusCode == http.StatusNoContent {
		return &out, nil // an aim from before volumes
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the removal's answer: %w", err)
	}
	return &out, nil
}

// Volumes lists what aim keeps for the solution name.
func (c *Client) Volumes(ctx context.Context, name string) ([]solution.Volume, error) {
	var out struct {
		Volumes []solution.Volume `json:"volumes"`
	}
	err := c.getJSON(ctx, "/api/v1/solutions/"+url.PathEscape(name)+"/volumes", &out)
	return out.Volumes, err
}

// ExportVolume writes a volume's files to w as a tar stream.
func (c *Client) ExportVolume(ctx context.Context, name, vol string, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/solutions/"+url.PathEscape(name)+"/volumes/"+url.PathEscape(vol), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("exporting volume %s: %w", vol, err)
	}
	if msg := resp.Trailer.Get(api.TrailerError); msg != "" {
		return fmt.Errorf("exporting volume %s: the server stopped: %s (the tar stream is incomplete)", vol, msg)
	}
	return nil
}

// ImportVolume adds the files of the tar stream r to a volume.
func (c *Client) ImportVolume(ctx context.Context, name, vol string, r io.Reader) error {
	resp, err := c.do(ctx, http.MethodPut, "/api/v1/solutions/"+url.PathEscape(name)+"/volumes/"+url.PathEscape(vol), r, "application/x-tar")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Post calls one of the solution actions (wake, sleep).
func (c *Client) Post(ctx context.Context, name, action string) (*solution.Info, error) {
	resp, err := c.do(ctx, http.MethodPost, "/api/v1/solutions/"+url.PathEscape(name)+"/"+action, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out solution.Info
	return &out, json.NewDecoder(resp.Body).Decode(&out)
}

// Logs copies a solution's logs to w until they end (or ctx does, when
// following).
func (c *Client) Logs(ctx context.Context, name, component string, follow bool, tail int, w io.Writer) error {
	q := url.Values{}
	if component != "" {
		q.Set("component", component)
	}
	if follow {
		q.Set("follow", "true")
	}
	if tail > 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/solutions/"+url.PathEscape(name)+"/logs?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// DeployRequest is what Deploy uploads.
type DeployRequest struct {
	Name     string
	Manifest []byte
	// Contexts maps components to their build directories.
	Contexts map[string]string
	// Dockerfiles maps components to their Dockerfile's name inside the
	// build directory; missing means "Dockerfile".
	Dockerfiles map[string]string
	SkipChecks  bool
	// Thumbnail is the file the manifest's thumbnail names; empty sends
	// none. The server checks it.
	Thumbnail string
}

// Deploy uploads a solution and follows the deploy; onEvent sees every
// progress line. It returns the deployed solution or the deploy's error.
func (c *Client) Deploy(ctx context.Context, req DeployRequest, onEvent func(api.Event)) (*solution.Info, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeUpload(mw, req))
	}()
	resp, err := c.do(ctx, http.MethodPut, "/api/v1/solutions/"+url.PathEscape(req.Name), pr, mw.FormDataContentType())
	pr.Close()
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e api.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("reading the deploy's progress: %w", err)
		}
		switch {
		case e.Error != "":
			return nil, errors.New(e.Error)
		case e.Result != nil:
			return e.Result, nil
		}
		if onEvent != nil {
			onEvent(e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the deploy's progress: %w", err)
	}
	return nil, errors.New("the server ended the deploy without a result; see `aim status` and the server's log")
}

func writeUpload(mw *multipart.Writer, req DeployRequest) error {
	if err := mw.WriteField(api.FieldManifest, string(req.Manifest)); err != nil {
		return err
	}
	if req.SkipChecks {
		if err := mw.WriteField(api.FieldSkipChecks, "true"); err != nil {
			return err
		}
	}
	if req.Thumbnail != "" {
		if err := writeFile(mw, api.FieldThumbnail, req.Thumbnail); err != nil {
			return fmt.Errorf("sending the thumbnail %s: %w", req.Thumbnail, err)
		}
	}
	for comp, dir := range req.Contexts {
		w, err := mw.CreateFormFile(api.FieldContext+comp, comp+".tar")
		if err != nil {
			return err
		}
		rc, err := buildctx.Tar(dir, req.Dockerfiles[comp])
		if err != nil {
			return fmt.Errorf("packing the build context of %s (%s): %w", comp, dir, err)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("packing the build context of %s (%s): %w", comp, dir, err)
		}
	}
	return mw.Close()
}

// writeFile adds the file at path as the part field.
func writeFile(mw *multipart.Writer, field, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := mw.CreateFormFile(field, filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
