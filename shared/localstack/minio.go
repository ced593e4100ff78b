package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// MinIOVersion is the pinned MinIO server the Makefile installs with
// `go install github.com/minio/minio@MinIOVersion`.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIOBinary returns the MinIO server binary to run: $SIGFOLLOW_MINIO_BIN
// if set, else the cached build of MinIOVersion under the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache, then sigfollow/minio/VERSION/minio).
func MinIOBinary(getenv func(string) string) (string, error) {
	if p := getenv("SIGFOLLOW_MINIO_BIN"); p != "" {
		return p, nil
	}
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("localstack: neither SIGFOLLOW_MINIO_BIN, XDG_CACHE_HOME nor HOME is set")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "sigfollow", "minio", MinIOVersion, "minio"), nil
}

// MinIOConfig places a MinIO server.
type MinIOConfig struct {
	// Binary is the server executable (see MinIOBinary).
	Binary string
	// Dir holds the server's data.
	Dir string
	// Addr is host:port to listen on; empty picks a free loopback port.
	Addr string
	// AccessKey and SecretKey are the root credentials; empty generates them.
	AccessKey, SecretKey string
	// Output receives the server's own output; nil discards it.
	Output io.Writer
}

// MinIO is a running MinIO server process.
type MinIO struct {
	Endpoint  string // http://host:port
	AccessKey string
	SecretKey string

	cfg     MinIOConfig
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the process's exit status, once exited
}

// StartMinIO starts a MinIO server and waits until it is ready.
func StartMinIO(ctx context.Context, cfg MinIOConfig) (*MinIO, error) {
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("localstack: MinIO server binary not found at %s (run `make tools` to install it): %w", cfg.Binary, err)
	}
	if cfg.Addr == "" {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		cfg.Addr = addr
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey = "sigfollow" + randomHex(4)
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = randomHex(20)
	}
	m := &MinIO{Endpoint: "http://" + cfg.Addr, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, cfg: cfg}
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Restart starts the server again after Stop or Kill, on the same address,
// data directory and credentials; it waits until the server is ready.
func (m *MinIO) Restart(ctx context.Context) error {
	select {
	case <-m.exited:
	default:
		return errors.New("localstack: minio is still running")
	}
	return m.start(ctx)
}

func (m *MinIO) start(ctx context.Context) error {
	cfg := m.cfg
	// The console would take a second port; it is of no use here.
	cmd := exec.Command(cfg.Binary, "server", "--quiet", "--address", cfg.Addr, "--console-address", "127.0.0.1:0", cfg.Dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+cfg.AccessKey,
		"MINIO_ROOT_PASSWORD="+cfg.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C in the terminal reaches the parent,
	// which stops MinIO last, after everything that uses it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localstack: start minio: %w", err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited = cmd, exited
	go func() { m.waitErr = cmd.Wait(); close(exited) }()
	if err := m.waitReady(ctx, 60*time.Second); err != nil {
		_ = m.Stop()
		return err
	}
	return nil
}

func (m *MinIO) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/minio/health/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("localstack: minio exited before it was ready: %v", m.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("localstack: minio at %s not ready: %w", m.Endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (m *MinIO) Stop() error {
	select {
	case <-m.exited:
		return nil
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.Kill()
	}
	return nil
}

// Kill stops the server at once, as a crash would, and waits for it.
func (m *MinIO) Kill() {
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("localstack: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ChildEnv is the environment a pipeline process started by a harness
// begins with: PATH, HOME and TMPDIR from getenv, and nothing else, so that
// only the settings the harness adds reach it.
func ChildEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
