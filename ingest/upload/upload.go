package upload

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/sigfollow/media/shared/mediatype"
)

// Limits on the multipart request around the file.
const (
	// MaxRequestSize caps the whole request body: the largest file plus room
	// for the other fields and the multipart framing.
	MaxRequestSize = mediatype.MaxUploadSize + 1*mediatype.MiB
	// maxParts caps the number of parts in one request.
	maxParts = 32
	// maxFieldSize caps a non-file field's value.
	maxFieldSize = 4 * mediatype.KiB
	// maxFilenameLen caps the file name passed on to Meta, in bytes.
	maxFilenameLen = 200
)

// Error codes for malformed requests; media rule violations are
// *mediatype.Error values instead.
const (
	CodeNotMultipart       = "not_multipart"
	CodeMalformedMultipart = "malformed_multipart"
	CodeRequestTooLarge    = "request_too_large"
	CodeTooManyParts       = "too_many_parts"
	CodeFieldTooLong       = "field_too_long"
	CodeMissingFile        = "missing_file"
	CodeDuplicateFile      = "duplicate_file"
	CodeUnexpectedFile     = "unexpected_file_part"
	CodeMessagingProduct   = "invalid_messaging_product"
	CodeTypeConflict       = "type_conflict"
)

// Error is a request that is not a well-formed upload.
type Error struct {
	Code    string
	Message string
	Err     error // the underlying cause, if any; not shown to clients
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

func fail(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Upload is a received, validated file, spooled and ready to stage.
type Upload struct {
	// Type is the whitelisted type the file was declared as and checked
	// against.
	Type mediatype.Type
	// Filename is the client's file name, reduced to a safe base name.
	Filename string
	// Size is the file's length in bytes.
	Size int64
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string
	// Fields holds the other form fields (and query parameters of the same
	// name are not merged in): for example callback_url.
	Fields map[string]string

	spool *spool
}

// Body returns a reader over the file's bytes, from the start.
func (u *Upload) Body() *io.SectionReader { return io.NewSectionReader(u.spool, 0, u.Size) }

// Close releases the spooled bytes. It is safe to call more than once.
func (u *Upload) Close() error { return u.spool.Close() }

// Receiver reads uploads.
type Receiver struct {
	dir     string
	buffers sync.Pool // *[]byte spool buffers
	copies  sync.Pool // *[]byte copy buffers
	readers sync.Pool // *bufio.Reader over request bodies
}

// bodyBufferSize is the read size on a request body: the multipart
// reader asks for 4 KiB at a time, one system call each without it.
const bodyBufferSize = 64 << 10

// NewReceiver returns a receiver that keeps files of up to memory bytes in a
// pooled buffer and spools larger ones to temporary files in dir (the
// system's temporary directory if empty).
func NewReceiver(dir string, memory int) *Receiver {
	r := &Receiver{dir: dir}
	r.buffers.New = func() any { b := make([]byte, 0, memory); return &b }
	r.copies.New = func() any { b := make([]byte, 32*1024); return &b }
	r.readers.New = func() any { return bufio.NewReaderSize(nil, bodyBufferSize) }
	return r
}

// Receive reads the multipart upload in req and validates it. The caller
// must Close the returned Upload. Errors are *Error or *mediatype.Error for
// the client's mistakes, anything else for ours.
func (rc *Receiver) Receive(w http.ResponseWriter, req *http.Request) (u *Upload, err error) {
	mt, params, perr := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, fail(CodeNotMultipart, "the body must be multipart/form-data with a boundary")
	}
	if req.ContentLength > MaxRequestSize {
		return nil, requestTooLarge()
	}
	body := rc.readers.Get().(*bufio.Reader)
	body.Reset(http.MaxBytesReader(w, req.Body, MaxRequestSize))
	defer func() { body.Reset(nil); rc.readers.Put(body) }()
	end := newEndWatcher(body, params["boundary"])
	mr := multipart.NewReader(end, params["boundary"])

	f := &form{product: req.URL.Query().Get("messaging_product"), fields: map[string]string{}}
	var file *received
	defer func() {
		if err != nil && file != nil {
			file.spool.Close()
		}
	}()
	for parts := 0; ; parts++ {
		p, err := mr.NextRawPart()
		if err == io.EOF && end.seen {
			break
		}
		if err != nil {
			return nil, bodyError(err)
		}
		if parts == maxParts {
			return nil, fail(CodeTooManyParts, "the form has more than %d parts", maxParts)
		}
		name := p.FormName()
		switch {
		case name == "file":
			if file != nil {
				return nil, fail(CodeDuplicateFile, "the form has more than one file part; send one file per request")
			}
			partType := p.Header.Get("Content-Type")
			t, known, err := f.declaredType(partType)
			if err != nil {
				return nil, err
			}
			file = &received{spool: newSpool(&rc.buffers, rc.dir), partType: partType, filename: p.FileName()}
			if err := rc.stream(file, p, t, known); err != nil {
				return nil, err
			}
		case p.FileName() != "":
			return nil, fail(CodeUnexpectedFile, "the form has a file in the part %q; the file must be sent in the part named \"file\"", truncate(name, 40))
		default:
			v, err := readField(p)
			if err != nil {
				return nil, err
			}
			if err := f.set(name, v); err != nil {
				return nil, err
			}
		}
	}
	return f.finish(file)
}

// endWatcher passes the body through and notes whether the multipart close
// delimiter ("--boundary--" at the start of a line) has gone by. The
// multipart reader reports a body cut short at a boundary or in a part's
// header as a normal end (io.EOF), which would let a truncated upload lose
// its trailing fields silently.
type endWatcher struct {
	r     io.Reader
	delim []byte // "\n--boundary--"
	probe []byte // delim's first probeLen bytes, searched for first
	tail  []byte // the last len(delim)-1 bytes read, with room for as many more
	seen  bool
}

// probeLen keeps the searched prefix short enough for bytes.Index's
// vectorised search; a boundary may be up to 70 bytes long, and the
// byte-wise search of longer needles costs a quarter of a receive.
const probeLen = 32

func newEndWatcher(r io.Reader, boundary string) *endWatcher {
	delim := []byte("\n--" + boundary + "--")
	tail := make([]byte, 1, 2*len(delim))
	tail[0] = '\n' // the delimiter may open the body
	return &endWatcher{r: r, delim: delim, probe: delim[:min(len(delim), probeLen)], tail: tail}
}

// contains reports whether b holds the delimiter, finding its prefix
// first.
func (e *endWatcher) contains(b []byte) bool {
	for {
		i := bytes.Index(b, e.probe)
		if i < 0 {
			return false
		}
		if bytes.HasPrefix(b[i:], e.delim) {
			return true
		}
		b = b[i+1:]
	}
}

func (e *endWatcher) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if e.seen || n == 0 {
		return n, err
	}
	k := len(e.delim) - 1
	// A delimiter spanning the previous read and this one, or inside this one.
	span := append(e.tail, p[:min(n, k)]...)
	e.seen = e.contains(span) || e.contains(p[:n])
	if n >= k {
		e.tail = append(e.tail[:0], p[n-k:n]...)
	} else {
		keep := min(len(span), k)
		copy(span, span[len(span)-keep:])
		e.tail = span[:keep]
	}
	return n, err
}

// form collects the non-file fields as they arrive.
type form struct {
	product   string
	typeField string
	hasType   bool
	fields    map[string]string
}

func (f *form) set(name, v string) error {
	switch name {
	case "messaging_product":
		f.product = v
	case "type":
		f.typeField, f.hasType = v, true
		if !mediatype.Specific(v) {
			return nil
		}
		if _, ok := mediatype.Lookup(v); !ok {
			return mediatype.Unsupported(v)
		}
	default:
		f.fields[name] = v
	}
	return nil
}

// declaredType returns, when the file part starts, the type the file is
// declared as so far (the type field if it came first, else the part's
// Content-Type), so that its size limit applies while streaming. It rejects
// at once a declaration that already settles the outcome, before the file is
// read.
func (f *form) declaredType(partType string) (mediatype.Type, bool, error) {
	typeSpecific, partSpecific := f.hasType && mediatype.Specific(f.typeField), mediatype.Specific(partType)
	switch {
	case typeSpecific && partSpecific && mediatype.Normalize(f.typeField) != mediatype.Normalize(partType):
		return mediatype.Type{}, false, typeConflict(f.typeField, partType)
	case typeSpecific:
		t, _ := mediatype.Lookup(f.typeField) // set has already rejected unknown types
		return t, true, nil
	case partSpecific:
		// Not whitelisted: a later type field could only conflict or agree.
		t, ok := mediatype.Lookup(partType)
		if !ok {
			return t, false, mediatype.Unsupported(partType)
		}
		return t, true, nil
	}
	return mediatype.Type{}, false, nil
}

func typeConflict(field, part string) *Error {
	return fail(CodeTypeConflict, "the type field says %q but the file part's Content-Type says %q; send one type, or the same in both",
		mediatype.Normalize(field), mediatype.Normalize(part))
}

// received is the file part as streamed.
type received struct {
	spool    *spool
	partType string
	filename string
	prefix   []byte
	sum      []byte
}

// stream copies the file part into the spool, hashing it and keeping its
// first bytes for sniffing, and stops one byte past the size limit: the
// declared type's if known, else the upload cap.
func (rc *Receiver) stream(file *received, p io.Reader, t mediatype.Type, known bool) error {
	limit := mediatype.MaxUploadSize
	if known {
		limit = t.MaxSize()
	}
	s := &sink{spool: file.spool, hash: sha256.New(), prefix: make([]byte, 0, mediatype.SniffLen)}
	buf := rc.copies.Get().(*[]byte)
	defer rc.copies.Put(buf)
	if _, err := io.CopyBuffer(s, io.LimitReader(p, limit+1), *buf); err != nil {
		if s.spoolErr != nil {
			return fmt.Errorf("upload: spooling file: %w", s.spoolErr)
		}
		return bodyError(err)
	}
	if file.spool.size > limit {
		if known {
			return t.TooLarge(file.spool.size)
		}
		return mediatype.TooLargeForUpload()
	}
	file.prefix, file.sum = s.prefix, s.hash.Sum(nil)
	return nil
}

// sink is the single pass over the file's bytes.
type sink struct {
	spool    *spool
	hash     hash.Hash
	prefix   []byte
	spoolErr error
}

func (s *sink) Write(p []byte) (int, error) {
	if room := cap(s.prefix) - len(s.prefix); room > 0 {
		s.prefix = append(s.prefix, p[:min(room, len(p))]...)
	}
	s.hash.Write(p)
	n, err := s.spool.Write(p)
	if err != nil {
		s.spoolErr = err
	}
	return n, err
}

// finish applies the rules that need the whole form.
func (f *form) finish(file *received) (*Upload, error) {
	switch {
	case f.product == "":
		return nil, fail(CodeMessagingProduct, "messaging_product is required and must be \"whatsapp\"")
	case f.product != "whatsapp":
		return nil, fail(CodeMessagingProduct, "messaging_product must be \"whatsapp\", not %q", truncate(f.product, 40))
	case file == nil:
		return nil, fail(CodeMissingFile, "the form has no part named \"file\"")
	}
	declared := f.typeField
	if !mediatype.Specific(declared) {
		if mediatype.Specific(file.partType) || mediatype.Normalize(declared) == "" {
			declared = file.partType
		}
	} else if mediatype.Specific(file.partType) && mediatype.Normalize(declared) != mediatype.Normalize(file.partType) {
		return nil, typeConflict(f.typeField, file.partType)
	}
	t, ok := mediatype.Lookup(declared)
	if !ok {
		return nil, mediatype.Unsupported(declared)
	}
	if k, isKind := mediatype.KindOf(f.typeField); isKind && !t.FitsKind(k) {
		return nil, fail(CodeTypeConflict, "the type field says the file is for a %s message but the file part's Content-Type is %s (a %s type)", k, t.MIME, t.Kind)
	}
	c := mediatype.Content{Prefix: file.prefix, Size: file.spool.size, All: file.spool}
	if err := t.Check(c); err != nil {
		return nil, err
	}
	return &Upload{
		Type: t, Filename: SafeFilename(file.filename, t.MIME), Size: file.spool.size,
		SHA256: hex.EncodeToString(file.sum), Fields: f.fields, spool: file.spool,
	}, nil
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldSize+1))
	if err != nil {
		return "", bodyError(err)
	}
	if len(b) > maxFieldSize {
		return "", fail(CodeFieldTooLong, "the field %q is longer than %d bytes", truncate(p.FormName(), 40), maxFieldSize)
	}
	if !utf8.Valid(b) {
		return "", fail(CodeMalformedMultipart, "the field %q is not valid UTF-8", truncate(p.FormName(), 40))
	}
	return strings.TrimSpace(string(b)), nil
}

func requestTooLarge() *Error {
	return fail(CodeRequestTooLarge, "the request body is larger than %d bytes (a 16 MiB file plus the form around it)", MaxRequestSize)
}

// bodyError classifies a failure reading the request body.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return requestTooLarge()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &Error{Code: CodeMalformedMultipart, Message: "the multipart body ended early (truncated upload?)", Err: err}
	}
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		return &Error{Code: CodeMalformedMultipart, Message: "the upload was too slow: the body was not received in time", Err: err}
	}
	return &Error{Code: CodeMalformedMultipart, Message: "the multipart body could not be read: " + err.Error(), Err: err}
}

// truncate shortens s to at most n bytes (on a character boundary) for
// quoting in a message, marking the cut.
func truncate(s string, n int) string {
	if c := cut(s, n); c != s {
		return c + "…"
	}
	return s
}

// cut shortens s to at most n bytes, on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// extensions gives a default file name per type, for clients that send none.
var extensions = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4",
	"video/3gpp": ".3gp", "audio/aac": ".aac", "audio/mp4": ".m4a", "audio/mpeg": ".mp3",
	"audio/amr": ".amr", "audio/ogg": ".ogg", "application/pdf": ".pdf", "text/plain": ".txt",
	mediatype.DOCX: ".docx", mediatype.XLSX: ".xlsx", mediatype.PPTX: ".pptx", mediatype.XLS: ".xls",
}

// SafeFilename reduces a client's file name to a base name Meta and
// WhatsApp clients can show: no directories (either slash), no control,
// bidirectional-override or invalid UTF-8 characters (an override can make
// "invoice\u202Efdp.exe" display as "invoiceexe.pdf"), no leading dots or
// surrounding spaces, at most 200 bytes. An empty result becomes "file"
// with the type's extension.
func SafeFilename(name, mimeType string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '"' || r == '/' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeftFunc(name, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	name = strings.TrimRightFunc(cut(name, maxFilenameLen), unicode.IsSpace)
	if name == "" {
		return "file" + extensions[mimeType]
	}
	return name
}
