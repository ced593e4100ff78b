package profiling

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("off without an address", func(t *testing.T) {
		addr, stop, err := Serve("", log)
		if err != nil || addr != "" {
			t.Fatalf("Serve(\"\") = %q, %v; want nothing served", addr, err)
		}
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("serves profiles", func(t *testing.T) {
		addr, stop, err := Serve("127.0.0.1:0", log)
		if err != nil {
			t.Fatal(err)
		}
		defer stop(context.Background())
		for path, want := range map[string]string{
			"/debug/pprof/":                  "goroutine",
			"/debug/pprof/heap?debug=1":      "heap profile",
			"/debug/pprof/goroutine?debug=1": "goroutine profile",
		} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
			}
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on the profiling listener: %s, want 404", resp.Status)
		}
	})
	t.Run("a bad address is an error", func(t *testing.T) {
		if _, _, err := Serve("127.0.0.1:notaport", log); err == nil {
			t.Error("no error for a bad address")
		}
	})
}
