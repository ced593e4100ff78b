package fakegraph

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigfollow/media/shared/mediatype"
)

// Config configures a Server.
type Config struct {
	// Token is the access token uploads must present as a Bearer token.
	Token string
	// PhoneTokens overrides Token for particular phone number ids.
	PhoneTokens map[string]string
	// Latency is added to every upload, once received, before it is
	// answered.
	Latency time.Duration
	// MaxStoredBytes bounds the uploaded bytes kept in memory for download;
	// the oldest files' bytes are dropped first (their metadata stays).
	// Zero means 256 MiB.
	MaxStoredBytes int64
	// BaseURL is this server's own URL, used in download links. If empty,
	// links are built from each request's Host.
	BaseURL string
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
}

// Media is one uploaded file.
type Media struct {
	ID            string    `json:"id"`
	PhoneNumberID string    `json:"phone_number_id"`
	MIMEType      string    `json:"mime_type"`
	SHA256        string    `json:"sha256"`
	FileSize      int64     `json:"file_size"`
	Filename      string    `json:"filename"`
	UploadedAt    time.Time `json:"uploaded_at"`
	Deleted       bool      `json:"deleted"`
	data          []byte
}

// Fault is a failure to inject into upcoming uploads.
type Fault struct {
	// PhoneNumberID limits the fault to one phone number id; empty matches all.
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	// Status and Code: the HTTP status and Meta error code to answer with.
	// Kind fills them in for the common cases.
	Status  int    `json:"status,omitempty"`
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Kind is a preset: "5xx" (500, code 2), "429" (429, code 80007),
	// "190" (401, code 190), "drop" (close the connection without answering),
	// "latency" (only delay the answer; the upload then succeeds or fails on
	// its merits). A fault with no Kind, Status or Code is a latency fault.
	Kind string `json:"kind,omitempty"`
	// Latency delays the answer, once the upload is received (on top of
	// Config.Latency).
	Latency Duration `json:"latency,omitempty"`
	// Count is how many uploads the fault applies to: 0 means 1, -1 means
	// until the faults are cleared.
	Count int `json:"count,omitempty"`
}

// Duration is a time.Duration that reads and writes as "250ms" in JSON.
type Duration time.Duration

// UnmarshalJSON accepts "250ms" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n int64
	err := json.Unmarshal(b, &n)
	*d = Duration(n)
	return err
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Stats counts what the server has seen.
type Stats struct {
	Uploads        int            `json:"uploads"`         // accepted uploads
	Rejected       int            `json:"rejected"`        // uploads answered with a Meta error (faults included)
	FaultsInjected int            `json:"faults_injected"` // uploads a fault applied to
	InFlight       int            `json:"in_flight"`       // uploads being received or answered now
	MaxInFlight    int            `json:"max_in_flight"`   // highest InFlight seen
	MaxInFlightBy  map[string]int `json:"max_in_flight_by_phone_number_id"`
	BytesReceived  int64          `json:"bytes_received"` // file bytes of accepted uploads
}

// Server is the fake Graph API. It is an http.Handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	linkKey []byte

	mu         sync.Mutex
	media      map[string]*Media
	order      []string
	stored     int64
	faults     []*Fault
	latency    time.Duration
	stats      Stats
	inFlightBy map[string]int
}

// New returns a fake Graph API.
func New(cfg Config) *Server {
	if cfg.MaxStoredBytes == 0 {
		cfg.MaxStoredBytes = 256 * mediatype.MiB
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, mux: http.NewServeMux(), linkKey: randomBytes(32),
		media: map[string]*Media{}, latency: cfg.Latency,
		inFlightBy: map[string]int{}, stats: Stats{MaxInFlightBy: map[string]int{}},
	}
	s.mux.HandleFunc("POST /{version}/{phone}/media", s.upload)
	s.mux.HandleFunc("GET /{version}/{id}", s.retrieve)
	s.mux.HandleFunc("DELETE /{version}/{id}", s.delete)
	s.mux.HandleFunc("GET /_media/{id}", s.download)
	s.mux.HandleFunc("GET /_fake/media", s.listMedia)
	s.mux.HandleFunc("GET /_fake/stats", s.getStats)
	s.mux.HandleFunc("POST /_fake/faults", s.addFaults)
	s.mux.HandleFunc("DELETE /_fake/faults", s.clearFaults)
	s.mux.HandleFunc("PUT /_fake/latency", s.setLatency)
	s.mux.HandleFunc("POST /_fake/reset", s.reset)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.cfg.Logger.Info("fakegraph request", "method", r.Method, "path", r.URL.Path,
		"status", rec.status, "duration", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// InjectFault queues a fault for upcoming uploads.
func (s *Server) InjectFault(f Fault) {
	f = f.withPreset()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency changes the latency added to every upload.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.MaxInFlightBy = make(map[string]int, len(s.stats.MaxInFlightBy))
	for k, v := range s.stats.MaxInFlightBy {
		st.MaxInFlightBy[k] = v
	}
	return st
}

// Media returns every upload's metadata, oldest first.
func (s *Server) Media() []Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Media, 0, len(s.order))
	for _, id := range s.order {
		m := *s.media[id]
		m.data = nil
		out = append(out, m)
	}
	return out
}

// Lookup returns one upload's metadata.
func (s *Server) Lookup(id string) (Media, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok {
		return Media{}, false
	}
	c := *m
	c.data = nil
	return c, true
}

func (f Fault) withPreset() Fault {
	if f.Kind == "" && f.Status == 0 && f.Code == 0 && f.Message == "" {
		f.Kind = "latency"
	}
	if f.Count == 0 {
		f.Count = 1
	}
	switch f.Kind {
	case "latency", "drop":
		return f
	case "5xx":
		f.Status, f.Code = orInt(f.Status, http.StatusInternalServerError), orInt(f.Code, 2)
		f.Message = orStr(f.Message, "(#2) Service temporarily unavailable")
	case "429":
		f.Status, f.Code = orInt(f.Status, http.StatusTooManyRequests), orInt(f.Code, 80007)
		f.Message = orStr(f.Message, "(#80007) Rate limit hit")
	case "190":
		f.Status, f.Code = orInt(f.Status, http.StatusUnauthorized), orInt(f.Code, 190)
		f.Message = orStr(f.Message, "Error validating access token: Session has expired.")
	}
	f.Status = orInt(f.Status, http.StatusInternalServerError)
	f.Message = orStr(f.Message, fmt.Sprintf("(#%d) Injected failure", f.Code))
	return f
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func orStr(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// takeFault returns the first queued fault for phone, consuming one use.
func (s *Server) takeFault(phone string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.PhoneNumberID != "" && f.PhoneNumberID != phone {
			continue
		}
		s.stats.FaultsInjected++
		c := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &c
	}
	return nil
}

func (s *Server) enter(phone string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.InFlight++
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.stats.InFlight)
	s.inFlightBy[phone]++
	s.stats.MaxInFlightBy[phone] = max(s.stats.MaxInFlightBy[phone], s.inFlightBy[phone])
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stats.InFlight--
		s.inFlightBy[phone]--
	}
}

var (
	versionRE = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)
	digitsRE  = regexp.MustCompile(`^[0-9]+$`)
)

// metaTypes are the types Meta's /media accepts: SigFollow's whitelist plus
// the legacy Word and PowerPoint formats Meta also takes.
func metaType(mt string) (mediatype.Type, bool) {
	if t, ok := mediatype.Lookup(mt); ok {
		return t, true
	}
	switch mt {
	case "application/msword", "application/vnd.ms-powerpoint":
		return mediatype.Type{MIME: mt, Kind: mediatype.KindDocument}, true
	}
	return mediatype.Type{}, false
}

func (s *Server) token(phone string) string {
	if t, ok := s.cfg.PhoneTokens[phone]; ok {
		return t
	}
	return s.cfg.Token
}

// authorized checks the request's token: the phone number's own token, or
// without a phone number id, any configured token. An empty token never
// matches.
func (s *Server) authorized(r *http.Request, phone string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		got = r.URL.Query().Get("access_token")
	}
	matches := func(want string) bool { return got != "" && want != "" && hmac.Equal([]byte(got), []byte(want)) }
	if phone != "" {
		return matches(s.token(phone))
	}
	if matches(s.cfg.Token) {
		return true
	}
	for _, t := range s.cfg.PhoneTokens {
		if matches(t) {
			return true
		}
	}
	return false
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	phone := r.PathValue("phone")
	defer s.enter(phone)()
	if !versionRE.MatchString(r.PathValue("version")) {
		s.reject(w, http.StatusBadRequest, metaError{Code: 2500, Type: "OAuthException", Message: "Unknown path components: /" + r.PathValue("version")})
		return
	}
	if !s.authorized(r, phone) {
		s.reject(w, http.StatusUnauthorized, metaError{Code: 190, Type: "OAuthException", Message: "Invalid OAuth access token - Cannot parse access token"})
		return
	}
	fault := s.takeFault(phone)
	up, merr := readUpload(r)
	// With the whole body read, the server notices a client that hangs up
	// during the latency below.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64*1024))
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if fault != nil {
		latency += time.Duration(fault.Latency)
	}
	if latency > 0 {
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case fault == nil || fault.Kind == "latency":
	case fault.Kind == "drop":
		dropConnection(w)
		return
	default:
		s.reject(w, fault.Status, metaError{Code: fault.Code, Type: "OAuthException", Message: fault.Message})
		return
	}
	if merr != nil {
		s.reject(w, http.StatusBadRequest, *merr)
		return
	}
	if !digitsRE.MatchString(phone) {
		s.reject(w, http.StatusBadRequest, metaError{Code: 100, Type: "GraphMethodException", Message: "Unsupported post request. Object with ID '" + phone + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation."})
		return
	}
	m := &Media{
		ID: newMediaID(), PhoneNumberID: phone, MIMEType: up.typ, SHA256: up.sha256,
		FileSize: int64(len(up.data)), Filename: up.filename, UploadedAt: time.Now().UTC(), data: up.data,
	}
	s.store(m)
	writeJSON(w, http.StatusOK, map[string]string{"id": m.ID})
}

func (s *Server) reject(w http.ResponseWriter, status int, e metaError) {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
	writeError(w, status, e)
}

func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (s *Server) store(m *Media) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media[m.ID] = m
	s.order = append(s.order, m.ID)
	s.stored += int64(len(m.data))
	s.stats.Uploads++
	s.stats.BytesReceived += m.FileSize
	for _, id := range s.order {
		if s.stored <= s.cfg.MaxStoredBytes {
			break
		}
		old := s.media[id]
		s.stored -= int64(len(old.data))
		old.data = nil
	}
}

type upload struct {
	typ, filename, sha256 string
	data                  []byte
}

// readUpload parses Meta's upload form as Meta does: messaging_product, file
// and type (the field, or else the file part's Content-Type).
func readUpload(r *http.Request) (*upload, *metaError) {
	product := r.URL.Query().Get("messaging_product")
	var typeField, partType string
	var up upload
	var haveFile bool
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) The parameter file is required."}
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) Invalid multipart body: " + err.Error()}
		}
		switch p.FormName() {
		case "messaging_product":
			product = readField(p)
		case "type":
			typeField = readField(p)
		case "file":
			limit := int64(100*mediatype.MiB) + 1
			data, err := io.ReadAll(io.LimitReader(p, limit))
			if err != nil {
				return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) Could not read file: " + err.Error()}
			}
			if int64(len(data)) == limit {
				return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) Param file must be a file of size at most 104857600 bytes"}
			}
			haveFile, up.data, up.filename, partType = true, data, p.FileName(), p.Header.Get("Content-Type")
		default:
			_, _ = io.Copy(io.Discard, p)
		}
	}
	switch {
	case product == "":
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) The parameter messaging_product is required."}
	case product != "whatsapp":
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: fmt.Sprintf("(#100) Param messaging_product must be one of {WHATSAPP} - got %q.", product)}
	case !haveFile:
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: "(#100) The parameter file is required."}
	}
	declared := typeField
	if declared == "" {
		declared = partType
	}
	mt, _, _ := mime.ParseMediaType(declared)
	t, ok := metaType(mt)
	if !ok {
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: fmt.Sprintf("(#100) Param file must be a file with one of the following types: %s. Received file of type '%s'.", strings.Join(mediatype.Whitelist(), ", "), mt)}
	}
	if int64(len(up.data)) > t.MetaLimit() {
		return nil, &metaError{Code: 100, Type: "OAuthException", Message: fmt.Sprintf("(#100) Param file must be a file of size at most %d bytes for %s", t.MetaLimit(), t.Kind)}
	}
	if _, known := mediatype.Lookup(mt); known {
		c := mediatype.Content{Prefix: up.data[:min(len(up.data), mediatype.SniffLen)], Size: int64(len(up.data)), All: bytesReaderAt(up.data)}
		if err := t.CheckContent(c); err != nil {
			return nil, &metaError{Code: 131053, Type: "OAuthException", Message: "(#131053) Media upload error", Details: err.Error()}
		}
	}
	sum := sha256.Sum256(up.data)
	up.typ, up.sha256 = t.MIME, hex.EncodeToString(sum[:])
	return &up, nil
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func readField(p io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(p, 4096))
	return strings.TrimSpace(string(b))
}

func (s *Server) find(w http.ResponseWriter, r *http.Request) *Media {
	id := r.PathValue("id")
	phone := r.URL.Query().Get("phone_number_id")
	if !s.authorized(r, phone) {
		writeError(w, http.StatusUnauthorized, metaError{Code: 190, Type: "OAuthException", Message: "Invalid OAuth access token - Cannot parse access token"})
		return nil
	}
	s.mu.Lock()
	m, ok := s.media[id]
	ok = ok && !m.Deleted
	s.mu.Unlock()
	if !ok || (phone != "" && m.PhoneNumberID != phone) {
		writeError(w, http.StatusBadRequest, metaError{Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: fmt.Sprintf("Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", id)})
		return nil
	}
	return m
}

func (s *Server) retrieve(w http.ResponseWriter, r *http.Request) {
	m := s.find(w, r)
	if m == nil {
		return
	}
	base := s.cfg.BaseURL
	if base == "" {
		base = "http://" + r.Host
	}
	exp := strconv.FormatInt(time.Now().Add(5*time.Minute).Unix(), 10)
	link := fmt.Sprintf("%s/_media/%s?ext=%s&hash=%s", strings.TrimRight(base, "/"), m.ID, exp, s.linkMAC(m.ID, exp))
	writeJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp", "url": link, "mime_type": m.MIMEType,
		"sha256": m.SHA256, "file_size": m.FileSize, "id": m.ID,
	})
}

func (s *Server) linkMAC(id, exp string) string {
	mac := hmac.New(sha256.New, s.linkKey)
	mac.Write([]byte(id + "." + exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	id, exp := r.PathValue("id"), r.URL.Query().Get("ext")
	if !s.authorized(r, "") {
		writeError(w, http.StatusUnauthorized, metaError{Code: 190, Type: "OAuthException", Message: "Invalid OAuth access token - Cannot parse access token"})
		return
	}
	until, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > until || !hmac.Equal([]byte(s.linkMAC(id, exp)), []byte(r.URL.Query().Get("hash"))) {
		http.Error(w, "URL signature expired", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	m, ok := s.media[id]
	var data []byte
	if ok && !m.Deleted {
		data = m.data
	}
	s.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", m.MIMEType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	m := s.find(w, r)
	if m == nil {
		return
	}
	s.mu.Lock()
	m.Deleted = true
	s.stored -= int64(len(m.data))
	m.data = nil
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (s *Server) listMedia(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Media())
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) addFaults(w http.ResponseWriter, r *http.Request) {
	var faults []Fault
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		if len(body) > 0 && body[0] == '{' {
			var f Fault
			err = json.Unmarshal(body, &f)
			faults = []Fault{f}
		} else {
			err = json.Unmarshal(body, &faults)
		}
	}
	if err != nil {
		http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, f := range faults {
		s.InjectFault(f)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setLatency(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Latency Duration `json:"latency"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		http.Error(w, "latency: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.SetLatency(time.Duration(body.Latency))
	w.WriteHeader(http.StatusNoContent)
}

// Reset forgets every upload, fault and counter.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media, s.order, s.stored, s.faults = map[string]*Media{}, nil, 0, nil
	s.stats = Stats{MaxInFlightBy: map[string]int{}}
	s.inFlightBy = map[string]int{}
}

func (s *Server) reset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// metaError is Meta's error object.
type metaError struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode,omitempty"`
	Details   string `json:"-"`
	FBTraceID string `json:"fbtrace_id"`
}

func writeError(w http.ResponseWriter, status int, e metaError) {
	e.FBTraceID = randomToken(11)
	body := map[string]any{
		"message": e.Message, "type": e.Type, "code": e.Code, "fbtrace_id": e.FBTraceID,
	}
	if e.Subcode != 0 {
		body["error_subcode"] = e.Subcode
	}
	if e.Details != "" {
		body["error_data"] = map[string]string{"messaging_product": "whatsapp", "details": e.Details}
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newMediaID() string {
	// Meta's media ids are 15-17 digit numbers.
	n, _ := rand.Int(rand.Reader, big.NewInt(9e15))
	return strconv.FormatInt(n.Int64()+1e15, 10)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))[:n]
}
