package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// binRoot is where Debian's postgresql packages put each major version's
// programs: /usr/lib/postgresql/<version>/bin.
const binRoot = "/usr/lib/postgresql"

const installHint = "install Debian's postgresql package (apt-get install postgresql; `make test` does it through scripts/ensure-test-deps.sh)"

// server is one running PostgreSQL: its data directory and unix socket
// under dir, TCP on 127.0.0.1:port, superuser postgres with trust auth.
type server struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the postmaster exited
	log    *syncBuffer   // initdb's and the server's output
}

// findBinDir returns the bin directory of the newest PostgreSQL under
// root that has both initdb and postgres.
func findBinDir(root string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(root, "*", "bin", "postgres"))
	var dirs []string
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return "", fmt.Errorf("no PostgreSQL server (initdb and postgres) under %s/*/bin: %s", root, installHint)
	}
	version := func(dir string) []int { // "15" or "9.6" -> [15] or [9 6]
		var v []int
		for f := range strings.SplitSeq(filepath.Base(filepath.Dir(dir)), ".") {
			n, _ := strconv.Atoi(f)
			v = append(v, n)
		}
		return v
	}
	return slices.MaxFunc(dirs, func(a, b string) int { return slices.Compare(version(a), version(b)) }), nil
}

// runAs says whom PostgreSQL runs as: as root, the postgres system user
// (postgres refuses to run as root); otherwise the user we are.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: it runs as the postgres user, which is missing (%w): %s", err, installHint)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// launch makes a fresh cluster in dir (which must exist and be empty),
// starts it on a free port and waits until it takes connections.
func launch(dir string) (*server, error) {
	bin, err := findBinDir(binRoot)
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to the postgres user: %w", dir, err)
		}
	}
	s := &server{dir: dir, log: &syncBuffer{}}
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", s.dataDir(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
		"--no-sync") // the cluster is thrown away: no need to survive a crash
	s.prepare(initdb, cred)
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, s.log.String())
	}
	// Another process may take the free port between the probe and the
	// bind: try a few.
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.port = port
		if err = s.start(filepath.Join(bin, "postgres"), cred); err == nil {
			return s, nil
		}
		if !strings.Contains(s.log.String(), "could not bind") {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no free port for PostgreSQL:\n%s", s.log.String())
}

func (s *server) dataDir() string { return filepath.Join(s.dir, "data") }

// prepare runs cmd in s.dir as cred, with its output in s.log.
func (s *server) prepare(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.Dir = s.dir // a working directory the postgres user can read
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
}

// start runs the postmaster and waits for it to answer on s.port.
func (s *server) start(postgres string, cred *syscall.Credential) error {
	cmd := exec.Command(postgres, "-D", s.dataDir(),
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", s.dir,
		// Speed over durability: the data dies with the test.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "timezone=UTC")
	s.prepare(cmd, cred)
	// Should the test binary die without stopping it, the kernel stops
	// the server (SIGQUIT: immediate shutdown, its backends with it).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	exited := make(chan struct{})
	started := make(chan error)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, not the process: keep this thread until the
		// server exits.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("postgres exited before taking connections:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("postgres took no connection within 30s: %w\n%s", err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dsn is the URL of database db, for pgx (or any libpq-style client).
func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// stop shuts the server down (fast shutdown: sessions are ended), killing
// it if it takes more than 15 seconds. The data directory stays.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return errors.New("postgres did not shut down within 15s; killed")
}

// tail is the end of the server's log, for a failed test.
func (s *server) tail() string {
	const max = 4 << 10
	l := s.log.String()
	if len(l) > max {
		l = "…" + l[len(l)-max:]
	}
	return l
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer that two processes' output can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
