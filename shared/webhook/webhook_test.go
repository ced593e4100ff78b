package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/webhook"
)

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := apikey.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// receiver records what arrives and answers with status.
type receiver struct {
	srv    *httptest.Server
	hits   atomic.Int32
	header atomic.Value // http.Header
	body   atomic.Value // []byte
}

func newReceiver(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		rc.header.Store(r.Header.Clone())
		rc.body.Store(b)
		handler(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func TestSignatureVerifiesWithStandardWebhooksLibrary(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	c := webhook.NewClient(webhook.Config{AllowedCIDRs: loopback})
	msg := webhook.Message{ID: "msg_1", Timestamp: time.Now(), Body: []byte(`{"type":"media.upload.succeeded","data":{"id":"1"}}`)}

	out := c.Send(context.Background(), rc.srv.URL, secret, msg)
	if !out.Delivered() || out.Status != http.StatusNoContent {
		t.Fatalf("outcome %+v, want delivered with 204", out)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := rc.header.Load().(http.Header)
	body := rc.body.Load().([]byte)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the official library rejects our signature: %v", err)
	}
	if h.Get("webhook-id") != "msg_1" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	// A different secret, or a changed body, must not verify.
	other, _ := standardwebhooks.NewWebhook(newSecret(t))
	if other.Verify(body, h) == nil {
		t.Error("another secret verifies the signature")
	}
	if wh.Verify(append(body, ' '), h) == nil {
		t.Error("a changed body verifies")
	}
}

func TestOnlyTwoHundredsCount(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		delivered  bool
		wantAfter  time.Duration
	}{
		{"200", 200, "", true, 0},
		{"299", 299, "", true, 0},
		{"302 is not followed and fails", 302, "", false, 0},
		{"404", 404, "", false, 0},
		{"429 with Retry-After", 429, "120", false, 120 * time.Second},
		{"503", 503, "", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			out := webhook.NewClient(webhook.Config{AllowedCIDRs: loopback}).
				Send(context.Background(), rc.srv.URL, newSecret(t), webhook.Message{ID: "msg_x", Timestamp: time.Now(), Body: []byte(`{}`)})
			if out.Delivered() != tc.delivered || out.Status != tc.status || out.RetryAfter != tc.wantAfter {
				t.Errorf("outcome %+v, want delivered=%v status %d retry-after %v", out, tc.delivered, tc.status, tc.wantAfter)
			}
			if n := rc.hits.Load(); n != 1 {
				t.Errorf("receiver hit %d times, want 1 (redirects are not followed)", n)
			}
		})
	}
}

func TestRedirectToPrivateAddressIsNotFollowed(t *testing.T) {
	var private atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { private.Add(1) }))
	t.Cleanup(target.Close)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	})
	rc2 := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	c := webhook.NewClient(webhook.Config{AllowedCIDRs: loopback})
	for _, u := range []string{rc.srv.URL, rc2.srv.URL} {
		out := c.Send(context.Background(), u, newSecret(t), webhook.Message{ID: "msg_r", Timestamp: time.Now(), Body: []byte(`{}`)})
		if out.Delivered() {
			t.Errorf("%s: a redirect counted as delivered", u)
		}
	}
	if n := private.Load(); n != 0 {
		t.Errorf("the redirect target was reached %d times", n)
	}
}

func TestGuardRefusesNonPublicAddressesAtDialTime(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	u, _ := url.Parse(rc.srv.URL)
	cases := []struct {
		name, url string
	}{
		{"127.0.0.1", rc.srv.URL},
		{"a host name resolving to loopback", "http://localhost:" + u.Port() + "/hook"},
		{"[::1]", "http://[::1]:" + u.Port() + "/hook"},
		{"10/8", "http://10.1.2.3:" + u.Port() + "/hook"},
		{"169.254.169.254", "http://169.254.169.254/latest/meta-data/"},
	}
	c := webhook.NewClient(webhook.Config{Timeout: 2 * time.Second}) // nothing allowed
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := c.Send(context.Background(), tc.url, newSecret(t), webhook.Message{ID: "msg_s", Timestamp: time.Now(), Body: []byte(`{}`)})
			if out.Delivered() || !errors.Is(out.Err, webhook.ErrRefusedAddress) {
				t.Errorf("outcome %+v, want refused as not public", out)
			}
		})
	}
	if n := rc.hits.Load(); n != 0 {
		t.Errorf("the loopback receiver was reached %d times", n)
	}
}

func TestValidateURL(t *testing.T) {
	strict := webhook.NewGuard(nil)
	dev := webhook.NewGuard(loopback)
	cases := []struct {
		url      string
		strictOK bool
		devOK    bool
	}{
		{"https://hooks.example.com/sigfollow", true, true},
		{"http://hooks.example.com:8443/x?y=1", true, true},
		{"ftp://hooks.example.com/", false, false},
		{"javascript:alert(1)", false, false},
		{"/relative", false, false},
		{"https://user:pass@hooks.example.com/", false, false},
		{"https://hooks.example.com@10.0.0.1/", false, false},
		{"http://127.0.0.1:9000/hook", false, true},
		{"http://10.0.0.1/hook", false, false},
		{"http://192.168.1.1/hook", false, false},
		{"http://169.254.169.254/latest/meta-data/", false, false},
		{"http://[::1]/hook", false, false},
		{"http://[fd00::1]/hook", false, false},
		{"http://[::ffff:127.0.0.1]/hook", false, false},
		{"http://0.0.0.0/hook", false, false},
		{"http://224.0.0.1/hook", false, false},
		{"http://localhost/hook", false, false},
		{"http://api.localhost/hook", false, false},
		{"https://8.8.8.8/hook", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			err := strict.ValidateURL(tc.url)
			var ue *webhook.URLError
			if (err == nil) != tc.strictOK || err != nil && !errors.As(err, &ue) {
				t.Errorf("strict: %v, want ok=%v", err, tc.strictOK)
			}
			if err := dev.ValidateURL(tc.url); (err == nil) != tc.devOK {
				t.Errorf("with 127.0.0.0/8 allowed: %v, want ok=%v", err, tc.devOK)
			}
		})
	}
}
