package testenv

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSCluster runs an n-node NATS cluster with JetStream in this process,
// on loopback, and waits until it has elected a JetStream meta leader. The
// nodes are named n1…nN; each stops when the test ends.
func NATSCluster(tb testing.TB, n int) map[string]*server.Server {
	tb.Helper()
	// A JetStream cluster needs its routes configured up front, so the
	// cluster ports are picked before any node starts.
	ports := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range ports {
		ports[i] = freePort(tb)
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))}
	}
	nodes := map[string]*server.Server{}
	for i, port := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "sigfollow", Host: "127.0.0.1", Port: port},
			Routes:     routes,

			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  1 << 30,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			tb.Fatal(err)
		}
		s.Start()
		tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatalf("%s did not start", opts.ServerName)
		}
		nodes[opts.ServerName] = s
	}
	Eventually(tb, 20*time.Second, func() bool {
		leaders := 0
		for _, s := range nodes {
			if s.NumRoutes() < n-1 || !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	}, "the %d nodes did not form a JetStream cluster", n)
	return nodes
}

// ClusterURL joins the nodes' client URLs, as NATS_URL takes them.
func ClusterURL(nodes map[string]*server.Server) string {
	var urls []string
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		urls = append(urls, nodes[name].ClientURL())
	}
	return strings.Join(urls, ",")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
