package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"code.dny.dev/ssrf"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Limits of one delivery.
const (
	// DefaultTimeout bounds one try, from dialling to the response headers.
	DefaultTimeout = 15 * time.Second
	// bodyLimit is how much of a response body is read (and discarded),
	// so the connection can be reused without reading an endless body.
	bodyLimit = 4 << 10
	// maxURLLength caps a callback URL.
	maxURLLength = 2048
)

// Config tunes a Client.
type Config struct {
	// AllowedCIDRs are ranges the guard lets through although they are not
	// public (for local development, e.g. 127.0.0.0/8).
	AllowedCIDRs []netip.Prefix
	// Timeout bounds one try; zero means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent with every try.
	UserAgent string
}

// ParseCIDRs parses a comma-separated list of CIDR ranges.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("webhook: %q is not a CIDR range: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Guard decides which addresses may be connected to.
type Guard struct {
	g *ssrf.Guardian
}

// NewGuard returns a guard refusing every non-public address except those
// in allowed. Any port is allowed.
func NewGuard(allowed []netip.Prefix) *Guard {
	var v4, v6 []netip.Prefix
	for _, p := range allowed {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return &Guard{g: ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))}
}

// ErrRefusedAddress is wrapped by errors for addresses the guard refuses.
var ErrRefusedAddress = errors.New("webhook: the callback address is not public")

// checkAddr reports whether ip may be connected to.
func (g *Guard) checkAddr(ip netip.Addr) error {
	network := "tcp4"
	if ip.Is6() {
		network = "tcp6"
	}
	if err := g.g.Safe(network, netip.AddrPortFrom(ip, 443).String(), nil); err != nil {
		return fmt.Errorf("%w: %s", ErrRefusedAddress, ip)
	}
	return nil
}

// URLError is a callback URL refused at submission.
type URLError struct {
	Reason string
}

func (e *URLError) Error() string { return "invalid callback_url: " + e.Reason }

// ValidateURL refuses callback URLs that are plainly bad: not absolute
// http(s), with user information, too long, naming localhost, or a literal
// IP address the guard refuses. Host names are checked again when they are
// dialled.
func (g *Guard) ValidateURL(raw string) error {
	if len(raw) > maxURLLength {
		return &URLError{Reason: fmt.Sprintf("longer than %d bytes", maxURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{Reason: "not a URL"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return &URLError{Reason: "the scheme must be http or https"}
	case u.User != nil || strings.Contains(u.Host, "@"):
		return &URLError{Reason: "user information (user:password@) is not allowed"}
	case u.Hostname() == "":
		return &URLError{Reason: "the URL has no host"}
	case u.Fragment != "":
		return &URLError{Reason: "a fragment (#…) is not allowed"}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := g.checkAddr(ip.Unmap()); err != nil || ip.Is4In6() && g.checkAddr(ip) != nil {
			return &URLError{Reason: "the address " + ip.String() + " is not public"}
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return &URLError{Reason: "localhost is not public"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &URLError{Reason: "the port is not valid"}
		}
	}
	return nil
}

// Client posts signed webhooks. Only the guard decides where it may
// connect; it follows no redirects, uses no proxy and reads at most a small
// part of each response body.
type Client struct {
	hc        *http.Client
	userAgent string
	Guard     *Guard
}

// NewClient returns a Client.
func NewClient(cfg Config) *Client {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	guard := NewGuard(cfg.AllowedCIDRs)
	dialer := &net.Dialer{Timeout: timeout, Control: guard.g.Safe}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "SigFollow-Webhooks/1"
	}
	return &Client{
		hc: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		userAgent: ua,
		Guard:     guard,
	}
}

// Message is one signed webhook.
type Message struct {
	// ID is the webhook-id: the same on every try of one event.
	ID string
	// Timestamp is the moment of this try, signed with it.
	Timestamp time.Time
	// Body is the JSON event.
	Body []byte
}

// Outcome is the result of one try.
type Outcome struct {
	// Status is the receiver's HTTP status; 0 if none was received.
	Status int
	// RetryAfter is the receiver's Retry-After, if it sent one.
	RetryAfter time.Duration
	// Err says why the try failed; nil for a 2xx.
	Err error
}

// Delivered reports whether the receiver accepted the event.
func (o Outcome) Delivered() bool { return o.Err == nil }

// Sign returns the Standard Webhooks headers for m, signed with secret
// ("whsec_" and base64).
func Sign(secret string, m Message) (http.Header, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, errors.New("webhook: the signing secret is not whsec_ and base64")
	}
	sig, err := wh.Sign(m.ID, m.Timestamp, m.Body)
	if err != nil {
		return nil, fmt.Errorf("webhook: sign: %w", err)
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, m.ID)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(m.Timestamp.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return h, nil
}

// Send signs m with secret and posts it to target. Only a 2xx answer counts
// as delivered; a redirect is a failure and is not followed.
func (c *Client) Send(ctx context.Context, target, secret string, m Message) Outcome {
	h, err := Sign(secret, m)
	if err != nil {
		return Outcome{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(m.Body))
	if err != nil {
		return Outcome{Err: fmt.Errorf("webhook: request: %w", err)}
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedNetwork) {
			return Outcome{Err: fmt.Errorf("%w: %v", ErrRefusedAddress, err)}
		}
		return Outcome{Err: fmt.Errorf("webhook: post: %w", err)}
	}
	_, _ = io.CopyN(io.Discard, resp.Body, bodyLimit)
	resp.Body.Close()
	o := Outcome{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		o.Err = fmt.Errorf("webhook: the receiver answered %d", resp.StatusCode)
	}
	return o
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
