package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultTimeout bounds one upload when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// maxResponseSize caps how much of Meta's answer is read.
const maxResponseSize = 1 << 20

var versionRE = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)

// Config configures a Client.
type Config struct {
	// BaseURL is the Graph API's root URL, without the version.
	BaseURL string
	// Version is the Graph API version used in every path, like "v23.0".
	Version string
	// Timeout bounds one upload, from dialling to the end of Meta's answer.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Transport carries the requests. Nil means NewTransport().
	Transport http.RoundTripper
}

// Client uploads media to the Graph API. It is safe for concurrent use and
// keeps connections alive between uploads.
type Client struct {
	base    string
	version string
	http    *http.Client
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("graph: base URL %q must be an http(s) URL", cfg.BaseURL)
	}
	if !versionRE.MatchString(cfg.Version) {
		return nil, fmt.Errorf("graph: version %q must look like v23.0", cfg.Version)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport()
	}
	return &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		version: cfg.Version,
		http: &http.Client{
			Transport: cfg.Transport,
			Timeout:   cfg.Timeout,
			// Meta does not redirect uploads; following one would resend
			// the token somewhere unexpected and the body cannot be replayed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// NewTransport returns the keep-alive transport a Client uses by default:
// bounded dial, TLS and response-header waits, and enough idle connections
// per host for a worker's concurrent uploads.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// UploadRequest is one file to upload.
type UploadRequest struct {
	// PhoneNumberID is the business phone number the media is uploaded for.
	PhoneNumberID string
	// Token is the access token, sent as a Bearer token.
	Token string
	// Type is the file's MIME type, sent as the type field and as the file
	// part's Content-Type.
	Type string
	// Filename is the file part's file name; empty means "file".
	Filename string
	// Size is the exact number of bytes Body yields.
	Size int64
	// Body yields the file. Upload reads exactly Size bytes from it.
	Body io.Reader
}

// Upload sends the file to Meta and returns the media id Meta assigned.
//
// A failure is an *Error carrying its Kind, except when ctx ends first, in
// which case the error wraps ctx.Err().
func (c *Client) Upload(ctx context.Context, r UploadRequest) (string, error) {
	if r.Size <= 0 || r.Body == nil {
		return "", fmt.Errorf("graph: upload needs a body and a positive size (got %d)", r.Size)
	}
	body, contentType, length := multipartBody(r)
	endpoint := c.base + "/" + c.version + "/" + url.PathEscape(r.PhoneNumberID) + "/media"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return "", fmt.Errorf("graph: build request: %w", err)
	}
	req.ContentLength = length
	req.Header.Set("Authorization", "Bearer "+r.Token)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("graph: upload: %w", ctx.Err())
		}
		return "", &Error{Kind: KindTransient, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("graph: upload: %w", ctx.Err())
		}
		return "", &Error{Kind: KindTransient, HTTPStatus: resp.StatusCode, Message: "reading the response failed", Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", parseError(resp, raw)
	}
	var ok struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil || ok.ID == "" {
		return "", &Error{Kind: KindTransient, HTTPStatus: resp.StatusCode,
			Message: "success response without a media id: " + snippet(raw)}
	}
	return ok.ID, nil
}

// multipartBody frames the upload form around the file: the fields and the
// file part's header are built in memory, the file streams from r.Body, and
// the length is exact, so the request needs no chunked encoding.
func multipartBody(r UploadRequest) (body io.Reader, contentType string, length int64) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	// Writes to a bytes.Buffer cannot fail.
	_ = mw.WriteField("messaging_product", "whatsapp")
	_ = mw.WriteField("type", r.Type)
	filename := r.Filename
	if filename == "" {
		filename = "file"
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", filename))
	h.Set("Content-Type", r.Type)
	_, _ = mw.CreatePart(h)
	headLen := head.Len()
	_ = mw.Close()
	tail := bytes.Clone(head.Bytes()[headLen:])
	head.Truncate(headLen)

	body = io.MultiReader(&head, &exactReader{r: r.Body, left: r.Size}, bytes.NewReader(tail))
	return body, mw.FormDataContentType(), int64(headLen) + r.Size + int64(len(tail))
}

// exactReader yields exactly left bytes of r and fails if r ends sooner, so a
// short file never goes out as a well-formed but truncated upload.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case errors.Is(err, io.EOF) && e.left > 0:
		return n, fmt.Errorf("file ended %d bytes short of its size: %w", e.left, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return n, nil
	}
	return n, err
}

func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
