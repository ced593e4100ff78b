package health_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sigfollow/media/shared/health"
)

func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")

	tests := []struct {
		name   string
		addr   string
		status int
		ok     bool
	}{
		{"healthy", addr, http.StatusOK, true},
		{"wildcard host probes loopback", "0.0.0.0:" + port, http.StatusOK, true},
		{"empty host probes loopback", ":" + port, http.StatusOK, true},
		{"unhealthy", addr, http.StatusServiceUnavailable, false},
		{"nothing listening", "127.0.0.1:1", http.StatusOK, false},
		{"no address", "", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status = tt.status
			err := health.Probe(context.Background(), tt.addr)
			if (err == nil) != tt.ok {
				t.Fatalf("Probe(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}
