package buildctx

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Limits bound one uploaded build context. The zero value means the
// defaults.
type Limits struct {
	// Entries is the most entries (files, directories, links) accepted.
	Entries int
	// Bytes is the most file content accepted, counted from the headers:
	// the bound on what the builder would unpack, whatever the upload's
	// own size.
	Bytes int64
}

const (
	// DefaultEntries is larger than any source tree a solution needs
	// (a Node project's node_modules included) and small enough that the
	// names Check keeps stay a few megabytes.
	DefaultEntries = 100_000
	// DefaultBytes matches the API's default upload limit.
	DefaultBytes = 1 << 30
	// maxHops bounds the links followed resolving one path (Linux's
	// limit is 40; a context's own links need no more).
	maxHops = 40
)

// EntryError says what is wrong with one entry of a build context.
type EntryError struct {
	Entry string // as named in the tar, empty for the stream as a whole
	Msg   string
	Err   error // what reading the stream failed with, if that is the fault
}

func (e *EntryError) Error() string {
	msg := e.Msg
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Entry == "" {
		return msg
	}
	return fmt.Sprintf("entry %q: %s", e.Entry, msg)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Check reads an uploaded build context (an uncompressed tar stream) to
// its end and refuses what should never reach the builder: a path that
// is absolute or leaves the context, a symlink or hard link that points
// out of it (followed through the context's other links), a device file,
// FIFO or sparse file, and more entries or content than lim allows. The
// engine scopes a build to its context as well; Check is there so that a
// hostile upload gets a clear refusal from aim before the engine or any
// later code of aim's unpacks it.
func Check(r io.Reader, lim Limits) error {
	if lim.Entries <= 0 {
		lim.Entries = DefaultEntries
	}
	if lim.Bytes <= 0 {
		lim.Bytes = DefaultBytes
	}
	br := bufio.NewReader(r)
	if kind := compression(br); kind != "" {
		return &EntryError{Msg: fmt.Sprintf("the build context is %s-compressed; aim takes an uncompressed tar (aim deploy sends one)", kind)}
	}
	c := checker{links: map[string]string{}, files: map[string]bool{}}
	tr := tar.NewReader(br)
	var size int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &EntryError{Msg: fmt.Sprintf("the build context is not a valid tar stream after %d entries", n), Err: err}
		}
		if n == lim.Entries {
			return &EntryError{Msg: fmt.Sprintf("the build context has more than %d entries", lim.Entries)}
		}
		if err := c.add(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			size += h.Size
			if size > lim.Bytes {
				return &EntryError{Entry: h.Name, Msg: fmt.Sprintf("the build context's files add up to more than %d bytes", lim.Bytes)}
			}
			// The reader skips a short body as if the stream ended
			// cleanly; reading it is what finds a truncated upload.
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return &EntryError{Entry: h.Name, Msg: "the build context is cut short in this file", Err: err}
			}
		}
	}
	return c.resolveAll()
}

// compression names the compression a stream starts with, if any: the
// engine would unpack these, so their expanded size is unbounded by the
// upload's.
func compression(br *bufio.Reader) string {
	head, _ := br.Peek(6)
	for _, m := range []struct {
		name  string
		magic []byte
	}{
		{"gzip", []byte{0x1f, 0x8b}},
		{"bzip2", []byte("BZh")},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	} {
		if bytes.HasPrefix(head, m.magic) {
			return m.name
		}
	}
	return ""
}

type checker struct {
	names []string          // every entry but the root, in order, cleaned
	links map[string]string // symlink -> target, the last entry of a name wins
	files map[string]bool   // regular files so far: what a hard link may name
}

// local cleans an entry's name and says whether it stays in the context.
func local(name string) (string, bool) {
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return p, true
}

func (c *checker) add(h *tar.Header) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata for the entries after it, no entry itself
	}
	name, ok := local(h.Name)
	if !ok {
		return &EntryError{Entry: h.Name, Msg: "the path leaves the build context (it must be relative, without ../ out of it)"}
	}
	switch h.Typeflag {
	case tar.TypeReg:
		c.files[name] = true
	case tar.TypeDir:
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.HasPrefix(h.Linkname, "/") {
			return &EntryError{Entry: h.Name, Msg: fmt.Sprintf("the symlink points at %q; a link in a build context must be relative and stay inside it", h.Linkname)}
		}
		c.links[name] = h.Linkname
	case tar.TypeLink:
		target, ok := local(h.Linkname)
		if !ok || !c.files[target] {
			return &EntryError{Entry: h.Name, Msg: fmt.Sprintf("the hard link names %q, which is not a file earlier in the build context", h.Linkname)}
		}
		c.files[name] = true
	default:
		return &EntryError{Entry: h.Name, Msg: fmt.Sprintf("it is a %s; a build context holds files, directories and links only", kind(h.Typeflag))}
	}
	if name != "." {
		c.names = append(c.names, name)
	}
	return nil
}

func kind(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// resolveAll checks, once every link is known (a later entry may make an
// earlier name a link), that no symlink resolves out of the context and
// that no entry sits below a link that does.
func (c *checker) resolveAll() error {
	if len(c.links) == 0 {
		return nil
	}
	for _, name := range c.names {
		target, isLink := c.links[name]
		dir := path.Dir(name)
		var err error
		if isLink {
			err = c.walk(dir, target)
		} else if dir != "." {
			err = c.walk(".", dir)
		}
		if err != nil {
			return &EntryError{Entry: name, Msg: err.Error()}
		}
	}
	return nil
}

var (
	errEscapes = errors.New("it resolves, through the context's symlinks, to a path outside the build context")
	errLoop    = fmt.Errorf("resolving it follows more than %d symlinks (a loop?)", maxHops)
)

// walk resolves rel from dir (both inside the context) the way the kernel
// would, following the context's own symlinks, and fails if it ever steps
// above the context's root.
func (c *checker) walk(dir, rel string) error {
	var cur []string
	if dir != "." {
		cur = strings.Split(dir, "/")
	}
	hops := 0
	_, err := c.follow(cur, rel, &hops)
	return err
}

func (c *checker) follow(cur []string, rel string, hops *int) ([]string, error) {
	for _, part := range strings.Split(rel, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, errEscapes
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, part)
		target, ok := c.links[strings.Join(cur, "/")]
		if !ok {
			continue
		}
		if *hops++; *hops > maxHops {
			return nil, errLoop
		}
		if strings.HasPrefix(target, "/") {
			return nil, errEscapes
		}
		var err error
		if cur, err = c.follow(cur[:len(cur)-1:len(cur)-1], target, hops); err != nil {
			return nil, err
		}
	}
	return cur, nil
}
