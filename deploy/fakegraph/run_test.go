package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

// start runs the program with env on a free port and returns its base URL.
// The program is stopped, and must return nil, when the test ends.
func start(t *testing.T, env map[string]string) string {
	t.Helper()
	env["FAKEGRAPH_ADDR"] = "127.0.0.1:0"
	env["LOG_FORMAT"] = "json"
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fakegraph"}, func(k string) string { return env[k] }, io.Discard, logw)
		logw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after cancel, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return after cancel")
		}
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, logs)
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no \"listening\" log line within 15s")
	}
	return ""
}

// uploadForm builds Meta's media upload form for the file at path.
func uploadForm(t *testing.T, path, mimeType string) (body *bytes.Buffer, contentType string, data []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body = &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	if err := mw.WriteField("messaging_product", "whatsapp"); err != nil {
		t.Fatal(err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="image.jpg"`)
	h.Set("Content-Type", mimeType)
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return body, mw.FormDataContentType(), data
}

func TestServeUploads(t *testing.T) {
	base := start(t, map[string]string{"META_ACCESS_TOKEN": "token-under-test"})
	const fixture = "../../shared/mediatype/testdata/accept/image.jpg"

	tests := []struct {
		name       string
		token      string
		wantStatus int
	}{
		{"configured token", "token-under-test", http.StatusOK},
		{"other token", "dev-meta-token", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct, data := uploadForm(t, fixture, "image/jpeg")
			req, err := http.NewRequest(http.MethodPost, base+"/v23.0/1234567890/media", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tt.token)
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct{ ID string }
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			sum := sha256.Sum256(data)
			if m := listed(t, base, got.ID); m.SHA256 != hex.EncodeToString(sum[:]) || m.MIMEType != "image/jpeg" {
				t.Errorf("/_fake/media lists %+v for id %q, want sha256 %x and image/jpeg", m, got.ID, sum)
			}
		})
	}
}

type media struct {
	ID       string `json:"id"`
	SHA256   string `json:"sha256"`
	MIMEType string `json:"mime_type"`
}

// listed returns the upload with id from the fake's /_fake/media.
func listed(t *testing.T, base, id string) media {
	t.Helper()
	resp, err := http.Get(base + "/_fake/media")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all []media
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("media id %q not in /_fake/media (%d uploads)", id, len(all))
	return media{}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string // substring of stdout
		wantErr string // substring of the error; empty means success
	}{
		{"env lists variables", []string{"fakegraph", "env"}, nil, "FAKEGRAPH_ADDR", ""},
		{"env shows defaults", []string{"fakegraph", "env"}, nil, "default 127.0.0.1:8090", ""},
		{"help", []string{"fakegraph", "help"}, nil, "usage:", ""},
		{"unknown command", []string{"fakegraph", "nope"}, nil, "", `unknown command "nope"`},
		{"bad address", []string{"fakegraph"}, map[string]string{"FAKEGRAPH_ADDR": "8090"}, "", "FAKEGRAPH_ADDR"},
		{"negative latency", []string{"fakegraph"}, map[string]string{"FAKEGRAPH_LATENCY": "-1s"}, "", "FAKEGRAPH_LATENCY"},
		{"bad log format", []string{"fakegraph"}, map[string]string{"FAKEGRAPH_ADDR": "127.0.0.1:0", "LOG_FORMAT": "xml"}, "", "xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run error %v, want one mentioning %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out.String(), tt.wantOut)
			}
		})
	}
}
