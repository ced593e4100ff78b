package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cloudAPIClientDir holds a small Node program that uploads a file with a
// published WhatsApp Cloud API client library (@kapso/whatsapp-cloud-api),
// pinned in its package.json and package-lock.json.
const cloudAPIClientDir = "testdata/cloudapi-client"

// cloudAPIClient makes sure the client program's dependencies are installed
// and returns the path of node. Without node or npm the test is skipped,
// except in CI, where it fails.
func cloudAPIClient(t *testing.T) string {
	t.Helper()
	node, nodeErr := exec.LookPath("node")
	npm, npmErr := exec.LookPath("npm")
	if err := errors.Join(nodeErr, npmErr); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Cloud API client test needs node and npm: %v", err)
		}
		t.Skipf("node or npm not installed: %v", err)
	}
	if cloudAPIClientInstalled(t) {
		return node
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = cloudAPIClientDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", cloudAPIClientDir, err, out)
	}
	if !cloudAPIClientInstalled(t) {
		t.Fatalf("npm ci in %s did not install the pinned client library", cloudAPIClientDir)
	}
	return node
}

// cloudAPIClientInstalled reports whether node_modules holds every
// dependency at the version package.json pins.
func cloudAPIClientInstalled(t *testing.T) bool {
	t.Helper()
	var pkg struct{ Dependencies map[string]string }
	raw, err := os.ReadFile(filepath.Join(cloudAPIClientDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &pkg); err != nil || len(pkg.Dependencies) == 0 {
		t.Fatalf("%s/package.json pins no dependency (%v)", cloudAPIClientDir, err)
	}
	for name, want := range pkg.Dependencies {
		var installed struct{ Version string }
		raw, err := os.ReadFile(filepath.Join(cloudAPIClientDir, "node_modules", name, "package.json"))
		if err != nil || json.Unmarshal(raw, &installed) != nil || installed.Version != want {
			return false
		}
	}
	return true
}

// cloudAPIResult is what the client program prints: the library's return
// value, or the error it threw.
type cloudAPIResult struct {
	Response map[string]any `json:"response"`
	Error    *struct {
		Name       string         `json:"name"`
		Message    string         `json:"message"`
		HTTPStatus int            `json:"httpStatus"`
		Category   string         `json:"category"`
		Raw        map[string]any `json:"raw"`
	} `json:"error"`
}

// cloudAPIUpload runs the client library's media upload against baseURL
// with Graph API version "v1".
func cloudAPIUpload(t *testing.T, node, baseURL, key, phone, file, mimeType, mode, typeField string) cloudAPIResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	file, err := filepath.Abs(file) // the program runs in its own directory
	if err != nil {
		t.Fatal(err)
	}
	if typeField == "" {
		typeField = mimeType
	}
	cmd := exec.CommandContext(ctx, node, "index.mjs", baseURL, "v1", phone, file, mimeType, mode, typeField)
	cmd.Dir = cloudAPIClientDir
	cmd.Env = append(os.Environ(), "WHATSAPP_TOKEN="+key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 2) {
		t.Fatalf("client program: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var res cloudAPIResult
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		t.Fatalf("client program printed %q (stderr %q): %v", stdout.Bytes(), stderr.Bytes(), jerr)
	}
	if (err == nil) != (res.Error == nil) {
		t.Fatalf("client program exited with %v but printed %s", err, stdout.Bytes())
	}
	return res
}

// TestCloudAPIClientLibraryUploads points a published WhatsApp Cloud API
// client library, unchanged, at ingest (base URL = ingest's address, version
// "v1") and checks that its media upload works exactly as against Meta: the
// returned id is a media id Meta holds with the file's bytes, and a rejected
// upload surfaces as the library's error, not as a success.
func TestCloudAPIClientLibraryUploads(t *testing.T) {
	node := cloudAPIClient(t)
	p := startPipeline(t, pipelineOptions{workers: 1})
	accept := func(name string) string {
		return filepath.Join("..", "shared", "mediatype", "testdata", "accept", name)
	}
	disguised := filepath.Join(t.TempDir(), "photo.jpg")
	html, err := os.ReadFile(filepath.Join("..", "shared", "mediatype", "testdata", "reject", "page.html"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disguised, html, 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		key      string
		file     string
		mime     string
		mode     string // how the file is handed to the library: "blob" or "buffer"
		typ      string // the library's `type` argument; the MIME type if empty
		filename string // the name Meta should receive
		status   int    // 0 for success, else the HTTP status the library's error carries
		category string // the library's error category
	}{
		{name: "image", key: e2eDevKey, file: accept("image.jpg"), mime: "image/jpeg", mode: "blob", filename: "image.jpg"},
		{name: "document pdf", key: e2eDevKey, file: accept("document.pdf"), mime: "application/pdf", mode: "blob", filename: "document.pdf"},
		{name: "document docx", key: e2eDevKey, file: accept("document.docx"),
			mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", mode: "blob", filename: "document.docx"},
		{name: "message kind as the type, as in the library's README", key: e2eDevKey, file: accept("image.jpg"), mime: "image/jpeg", mode: "blob", typ: "image", filename: "image.jpg"},
		{name: "raw bytes as an untyped part", key: e2eDevKey, file: accept("image.png"), mime: "image/png", mode: "buffer", filename: "blob"},
		{name: "HTML disguised as a JPEG", key: e2eDevKey, file: disguised, mime: "image/jpeg", mode: "blob",
			status: 400, category: "parameter"},
		{name: "unknown API key", key: "sflo_live_notarealkey", file: accept("image.jpg"), mime: "image/jpeg", mode: "blob",
			status: 401, category: "authorization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			before := p.Graph.Stats().Uploads
			res := cloudAPIUpload(t, node, p.URL, tc.key, e2ePhone, tc.file, tc.mime, tc.mode, tc.typ)

			if tc.status != 0 {
				if res.Error == nil {
					t.Fatalf("the library reported success %v for an upload SigFollow must reject with %d", res.Response, tc.status)
				}
				e := res.Error
				if e.Name != "GraphApiError" || e.HTTPStatus != tc.status || e.Category != tc.category {
					t.Errorf("the library threw %s (HTTP %d, category %q), want GraphApiError (HTTP %d, category %q)",
						e.Name, e.HTTPStatus, e.Category, tc.status, tc.category)
				}
				if body, _ := e.Raw["error"].(map[string]any); strings.TrimSpace(e.Message) == "" || body["message"] != e.Message {
					t.Errorf("the library's error message %q is not SigFollow's explanation (body %v)", e.Message, e.Raw)
				}
				if n := p.Graph.Stats().Uploads; n != before {
					t.Errorf("Meta received %d upload(s) for a rejected request", n-before)
				}
				return
			}

			if res.Error != nil {
				t.Fatalf("the library's upload failed: %+v", *res.Error)
			}
			id, _ := res.Response["id"].(string)
			if len(res.Response) != 1 || id == "" {
				t.Fatalf("the library returned %v, want exactly {\"id\": ...}", res.Response)
			}
			m, ok := p.Graph.Lookup(id)
			if !ok {
				t.Fatalf("the library returned media id %s, which Meta does not know", id)
			}
			if m.SHA256 != sha256Hex(data) || m.FileSize != int64(len(data)) || m.MIMEType != tc.mime || m.PhoneNumberID != e2ePhone {
				t.Errorf("Meta received %+v; want sha256 %s, %d bytes, %s on %s", m, sha256Hex(data), len(data), tc.mime, e2ePhone)
			}
			if m.Filename != tc.filename {
				t.Errorf("file name at Meta %q, want %q", m.Filename, tc.filename)
			}
		})
	}
}
