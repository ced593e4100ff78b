package testenv

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/fakegraph"
	"github.com/sigfollow/media/shared/localstack"
	"github.com/sigfollow/media/shared/objstore"
)

// NATS starts an embedded NATS server with JetStream for the test and
// returns its client URL.
func NATS(tb testing.TB) string {
	tb.Helper()
	s, err := localstack.StartNATS(localstack.NATSConfig{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// RestartableNATS is an embedded NATS server with JetStream that a test can
// stop and start again, on the same port and with the same store, as an
// outage or a server restart would.
type RestartableNATS struct {
	// URL is the client URL; it stays the same across restarts.
	URL string

	tb  testing.TB
	cfg localstack.NATSConfig
	mu  sync.Mutex
	srv *server.Server
}

// NewRestartableNATS starts a restartable server for the test.
func NewRestartableNATS(tb testing.TB) *RestartableNATS {
	tb.Helper()
	addr, err := localstack.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	n := &RestartableNATS{tb: tb, cfg: localstack.NATSConfig{Port: p, StoreDir: tb.TempDir()}, URL: "nats://" + addr}
	n.Start()
	tb.Cleanup(n.Stop)
	return n
}

// Start starts the server if it is stopped.
func (n *RestartableNATS) Start() {
	n.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	s, err := localstack.StartNATS(n.cfg)
	if err != nil {
		n.tb.Fatal(err)
	}
	n.srv = s
}

// Stop shuts the server down; clients see the connection drop.
func (n *RestartableNATS) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// JetStream connects to url; the connection closes when the test ends.
func JetStream(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// MinIOServer is a running MinIO server.
type MinIOServer struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string

	srv *localstack.MinIO
}

// MinIOBinary returns the MinIO server binary (see localstack.MinIOBinary).
// Without it the test is skipped, except under CI, where it fails: `make
// test` installs it.
func MinIOBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := localstack.MinIOBinary(os.Getenv)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("MinIO server binary missing at %s; `make test` installs it", bin)
		}
		tb.Skipf("MinIO server binary missing at %s; run `make tools` (or `make test`) to install it", bin)
	}
	return bin
}

// MinIO starts a real MinIO server for the test, with its own data
// directory and port (skipping as MinIOBinary does).
func MinIO(tb testing.TB) MinIOServer {
	tb.Helper()
	m, err := localstack.StartMinIO(context.Background(), localstack.MinIOConfig{
		Binary: MinIOBinary(tb), Dir: filepath.Join(tb.TempDir(), "minio"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Stop() })
	return MinIOServer{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, srv: m}
}

// Kill stops the server at once, as a crash would.
func (m MinIOServer) Kill() { m.srv.Kill() }

// Restart starts a killed or stopped server again on the same port, data
// directory and credentials.
func (m MinIOServer) Restart(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.srv.Restart(ctx); err != nil {
		tb.Fatal(err)
	}
}

// Config returns an object-store configuration for bucket on this server.
func (m MinIOServer) Config(bucket string) objstore.Config {
	return objstore.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Region: "us-east-1", Bucket: bucket}
}

// Client returns a client for the server with bucket created.
func (m MinIOServer) Client(tb testing.TB, bucket string) *minio.Client {
	tb.Helper()
	c, err := objstore.New(m.Config(bucket))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := objstore.EnsureBucket(ctx, c, bucket); err != nil {
		tb.Fatal(err)
	}
	return c
}

// FakeGraph serves a fake Graph API for the test and returns it with its
// base URL.
func FakeGraph(tb testing.TB, cfg fakegraph.Config) (*fakegraph.Server, string) {
	tb.Helper()
	s := fakegraph.New(cfg)
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	return s, ts.URL
}

// Eventually polls cond every 10 ms until it holds, failing the test if it
// does not within timeout.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			if len(msgAndArgs) > 0 {
				if f, ok := msgAndArgs[0].(string); ok {
					tb.Fatalf("condition not met within %v: "+f, append([]any{timeout}, msgAndArgs[1:]...)...)
				}
			}
			tb.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
