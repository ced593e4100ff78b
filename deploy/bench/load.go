package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stampLen is the length of the line that opens every uploaded file and
// makes it unique: "sigfollow bench <run> <upload number>\n". Files are at
// least this long.
const (
	stampLen    = 48
	minFileSize = stampLen
)

// payload is one size's upload form, built once: the form's fields and the
// file part's header, the file's bytes after its stamp, and the closing
// boundary. Each request sends the shared bytes and its own stamp, from
// memory and without copying them.
type payload struct {
	size        int64
	contentType string // multipart/form-data with the boundary
	head        []byte // the messaging_product field and the file part's header
	rest        []byte // the file after its stamp, then the closing boundary
	run         uint64 // this run's id, in every stamp
}

// newPayload builds a text/plain file of size bytes (lines of words, which
// any type check accepts as text) inside Meta's upload form.
func newPayload(size int64, run uint64) *payload {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	_ = mw.WriteField("messaging_product", "whatsapp")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="bench-%d.txt"`, size))
	h.Set("Content-Type", "text/plain")
	_, _ = mw.CreatePart(h)
	headLen := head.Len()
	_ = mw.Close()
	tail := bytes.Clone(head.Bytes()[headLen:])

	rest := make([]byte, 0, size-stampLen+int64(len(tail)))
	rest = appendText(rest, int(size-stampLen))
	rest = append(rest, tail...)
	return &payload{
		size: size, contentType: mw.FormDataContentType(),
		head: head.Bytes()[:headLen], rest: rest, run: run,
	}
}

// vocabulary fills the files.
const vocabulary = "media upload whatsapp gateway stream worker queue object staging meta graph latency throughput sigfollow bench pipeline"

// appendText appends n bytes of lines of words, the same for every run.
func appendText(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	words := strings.Fields(vocabulary)
	rng := rand.New(rand.NewPCG(1, 2))
	end := len(b) + n
	line := 0
	for len(b) < end {
		w := words[rng.IntN(len(words))]
		switch {
		case line+len(w)+1 > 72:
			b = append(b, '\n')
			line = 0
		case line > 0:
			b = append(b, ' ')
			line++
		}
		b = append(b, w...)
		line += len(w)
	}
	b = b[:end]
	b[end-1] = '\n'
	return b
}

// stamp is the line that opens upload number i of this run.
func (p *payload) stamp(i int) []byte {
	s := fmt.Appendf(nil, "sigfollow bench %016x %014d\n", p.run, i)
	if len(s) != stampLen {
		panic("bench: stamp length") // the format fixes it
	}
	return s
}

// body returns upload number i's request body and its length.
func (p *payload) body(i int) (io.Reader, int64) {
	return io.MultiReader(bytes.NewReader(p.head), bytes.NewReader(p.stamp(i)), bytes.NewReader(p.rest)),
		int64(len(p.head) + stampLen + len(p.rest))
}

// runID returns a random id for the stamps of one run.
func runID() uint64 { return rand.Uint64() }

// endpoint is where uploads are posted: the fake Graph API directly, or
// ingest. Upload number i goes to prefix + phone(i) + "/media".
type endpoint struct {
	prefix string
	token  string
}

// url is where upload number i is posted: uploads are spread over
// benchPhones phone number ids, one after the other.
func (e endpoint) url(i int) string {
	return e.prefix + strconv.Itoa(15550001000+i%benchPhones) + "/media"
}

// outcome is what one batch of uploads measured.
type outcome struct {
	latencies []time.Duration // of the successful uploads, sorted
	errors    int
	hits      int      // answers marked as media-id cache hits
	samples   []string // the first few errors
	elapsed   time.Duration
}

// maxSamples is how many error messages an outcome keeps.
const maxSamples = 5

// loader posts uploads.
type loader struct {
	client *http.Client
}

func newLoader(timeout time.Duration) *loader {
	return &loader{client: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}}
}

// run posts n uploads of p to e, c at a time, numbering them from first
// (the numbers make the files unique; same makes every file the one
// numbered first). tick is called with the uploads done and failed so far.
func (l *loader) run(ctx context.Context, e endpoint, p *payload, first, n, c int, same bool, tick func(done, failed int)) outcome {
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var next, done, failed, hits atomic.Int64
	var mu sync.Mutex
	var samples []string

	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				tick(int(done.Load()), int(failed.Load()))
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				num := first + i
				if same {
					num = first
				}
				t0 := time.Now()
				hit, err := l.post(ctx, e, p, num)
				lat[i] = time.Since(t0)
				if hit {
					hits.Add(1)
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(samples) < maxSamples {
						samples = append(samples, err.Error())
					}
					mu.Unlock()
				} else {
					ok[i] = true
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-ticked
	tick(int(done.Load()), int(failed.Load()))

	var good []time.Duration
	for i, d := range lat {
		if ok[i] {
			good = append(good, d)
		}
	}
	slices.Sort(good)
	return outcome{latencies: good, errors: int(failed.Load()) + n - int(done.Load()), hits: int(hits.Load()),
		samples: samples, elapsed: elapsed}
}

// cacheHeader marks ingest's answers from its media-id cache.
const cacheHeader = "Sigfollow-Cache"

// post sends upload number i and checks that a media id comes back. It
// reports whether the answer came from ingest's media-id cache.
func (l *loader) post(ctx context.Context, e endpoint, p *payload, i int) (bool, error) {
	body, length := p.body(i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url(i), body)
	if err != nil {
		return false, err
	}
	req.ContentLength = length
	// A request on a kept-alive connection the server has just closed is
	// retried by the transport when it can rebuild the body.
	req.GetBody = func() (io.ReadCloser, error) {
		b, _ := p.body(i)
		return io.NopCloser(b), nil
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", p.contentType)
	resp, err := l.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	var answer struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &answer) != nil || answer.ID == "" {
		return false, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(raw[:min(len(raw), 300)]))
	}
	return resp.Header.Get(cacheHeader) == "hit", nil
}

// closeIdle drops kept-alive connections, before the servers restart.
func (l *loader) closeIdle() { l.client.CloseIdleConnections() }
