package upload_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/mediatype"
)

// fixtures are the genuine files of every whitelisted type, as a client
// would declare them.
var fixtures = []struct{ file, mime string }{
	{"accept/image.jpg", "image/jpeg"},
	{"accept/image.png", "image/png"},
	{"accept/sticker.webp", "image/webp"},
	{"accept/video.mp4", "video/mp4"},
	{"accept/video.3gp", "video/3gpp"},
	{"accept/audio.aac", "audio/aac"},
	{"accept/audio.m4a", "audio/mp4"},
	{"accept/audio.mp3", "audio/mpeg"},
	{"accept/audio.amr", "audio/amr"},
	{"accept/audio.opus.ogg", "audio/ogg"},
	{"accept/document.pdf", "application/pdf"},
	{"accept/document.txt", "text/plain"},
	{"accept/document.docx", mediatype.DOCX},
	{"accept/document.xlsx", mediatype.XLSX},
	{"accept/document.pptx", mediatype.PPTX},
	{"accept/document.xls", mediatype.XLS},
}

func TestReceiveAcceptsEveryFixture(t *testing.T) {
	if len(fixtures) != len(mediatype.Whitelist()) {
		t.Fatalf("%d fixtures for %d whitelisted types", len(fixtures), len(mediatype.Whitelist()))
	}
	// A small memory buffer, so that the larger fixtures go through a file.
	rc, _ := newReceiver(t, 8*1024)
	for _, fx := range fixtures {
		t.Run(fx.mime, func(t *testing.T) {
			data := fixture(t, fx.file)
			name := fx.file[strings.LastIndex(fx.file, "/")+1:]
			req := newRequest("", bytes.NewReader(formBytes(t,
				whatsapp, file(name, fx.mime, data), field("callback_url", "https://example.test/hook"))))
			u, err := receive(t, rc, req)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			sum := sha256.Sum256(data)
			if u.Type.MIME != fx.mime || u.Size != int64(len(data)) || u.SHA256 != hex.EncodeToString(sum[:]) || u.Filename != name {
				t.Errorf("upload = {%s %d %s %q}, want {%s %d %x %q}", u.Type.MIME, u.Size, u.SHA256, u.Filename, fx.mime, len(data), sum, name)
			}
			if want := map[string]string{"callback_url": "https://example.test/hook"}; !maps.Equal(u.Fields, want) {
				t.Errorf("Fields = %v, want %v", u.Fields, want)
			}
			got, err := io.ReadAll(u.Body())
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("Body() gave %d bytes (err %v), want the %d bytes sent", len(got), err, len(data))
			}
		})
	}
}

func TestReceiveDeclaredType(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	tests := []struct {
		name   string
		parts  []part
		want   string           // the accepted type, or
		code   string           // an *upload.Error code, or
		reason mediatype.Reason // a *mediatype.Error reason
		msg    string
	}{
		{name: "file part's Content-Type (curl ;type=)", parts: []part{whatsapp, file("a.jpg", "image/jpeg", jpeg)}, want: "image/jpeg"},
		{name: "type field, part without Content-Type", parts: []part{whatsapp, field("type", "image/jpeg"), file("a.jpg", "", jpeg)}, want: "image/jpeg"},
		{name: "type field after the file", parts: []part{whatsapp, file("a.jpg", "", jpeg), field("type", "image/jpeg")}, want: "image/jpeg"},
		{name: "type field with a generic part", parts: []part{whatsapp, field("type", "image/jpeg"), file("a.jpg", "application/octet-stream", jpeg)}, want: "image/jpeg"},
		{name: "generic type field with a specific part", parts: []part{whatsapp, field("type", "application/octet-stream"), file("a.jpg", "image/jpeg", jpeg)}, want: "image/jpeg"},
		{name: "empty type field", parts: []part{whatsapp, field("type", ""), file("a.jpg", "image/jpeg", jpeg)}, want: "image/jpeg"},
		{name: "message kind in the type field (as some Cloud API clients send)", parts: []part{whatsapp, field("type", "image"), file("a.jpg", "image/jpeg", jpeg)}, want: "image/jpeg"},
		{name: "kind field after the file", parts: []part{whatsapp, file("a.jpg", "image/jpeg", jpeg), field("type", "Image")}, want: "image/jpeg"},
		{name: "kind that does not fit the file", parts: []part{whatsapp, field("type", "video"), file("a.jpg", "image/jpeg", jpeg)},
			code: upload.CodeTypeConflict, msg: "for a video message"},
		{name: "kind with no MIME type anywhere", parts: []part{whatsapp, field("type", "document"), file("a.jpg", "", jpeg)},
			reason: mediatype.ReasonUnsupported},
		{name: "both, spelt differently", parts: []part{whatsapp, field("type", "IMAGE/JPEG"), file("a.jpg", "image/jpeg; name=a.jpg", jpeg)}, want: "image/jpeg"},
		{name: "both, different, type first", parts: []part{whatsapp, field("type", "image/png"), file("a.jpg", "image/jpeg", jpeg)},
			code: upload.CodeTypeConflict, msg: `the type field says "image/png" but the file part's Content-Type says "image/jpeg"`},
		{name: "both, different, type after the file", parts: []part{whatsapp, file("a.jpg", "image/jpeg", jpeg), field("type", "image/png")},
			code: upload.CodeTypeConflict, msg: `"image/png"`},
		{name: "both different, the part's type not whitelisted", parts: []part{whatsapp, field("type", "image/jpeg"), file("a.gif", "image/gif", jpeg)},
			code: upload.CodeTypeConflict},
		{name: "type field not whitelisted", parts: []part{whatsapp, field("type", "image/gif"), file("a.jpg", "", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: `type "image/gif" is not accepted`},
		{name: "part type not whitelisted", parts: []part{whatsapp, file("a.svg", "image/svg+xml", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: `type "image/svg+xml" is not accepted`},
		{name: "legacy Word", parts: []part{whatsapp, file("a.doc", "application/msword", fixture(t, "reject/document.doc"))},
			reason: mediatype.ReasonUnsupported, msg: `"application/msword"`},
		{name: "misspelt type", parts: []part{whatsapp, file("a.jpg", "image/jpg", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: `did you mean "image/jpeg"?`},
		{name: "no type at all", parts: []part{whatsapp, file("a.jpg", "", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: "missing or generic (none)"},
		{name: "generic type only", parts: []part{whatsapp, file("a.jpg", "application/octet-stream", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: "missing or generic (application/octet-stream)"},
		{name: "generic type field and no part type", parts: []part{whatsapp, field("type", "application/octet-stream"), file("a.jpg", "", jpeg)},
			reason: mediatype.ReasonUnsupported, msg: "missing or generic (application/octet-stream)"},
	}
	rc, _ := newReceiver(t, 64*1024)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := receive(t, rc, newRequest("", bytes.NewReader(formBytes(t, tt.parts...))))
			switch {
			case tt.want != "":
				if err != nil {
					t.Fatalf("Receive: %v", err)
				}
				if u.Type.MIME != tt.want {
					t.Fatalf("type = %s, want %s", u.Type.MIME, tt.want)
				}
				if _, ok := u.Fields["type"]; ok {
					t.Error("the type field is repeated in Fields")
				}
				return
			case tt.code != "":
				wantCode(t, err, tt.code, tt.msg)
			default:
				wantReason(t, err, tt.reason, tt.msg)
			}
		})
	}
}

func TestReceiveMessagingProduct(t *testing.T) {
	jpeg := file("a.jpg", "image/jpeg", fixture(t, "accept/image.jpg"))
	tests := []struct {
		name  string
		query string
		parts []part
		msg   string // "" when accepted
	}{
		{"form field", "", []part{whatsapp, jpeg}, ""},
		{"form field after the file", "", []part{jpeg, whatsapp}, ""},
		{"query string", "messaging_product=whatsapp", []part{jpeg}, ""},
		{"missing", "", []part{jpeg}, `messaging_product is required and must be "whatsapp"`},
		{"other product", "", []part{field("messaging_product", "instagram"), jpeg}, `must be "whatsapp", not "instagram"`},
		{"wrong case", "", []part{field("messaging_product", "WhatsApp"), jpeg}, `not "WhatsApp"`},
		{"form field overrides the query", "messaging_product=whatsapp", []part{field("messaging_product", "messenger"), jpeg}, `not "messenger"`},
		{"long value is cut in the message", "", []part{field("messaging_product", strings.Repeat("x", 500)), jpeg}, strings.Repeat("x", 40) + "…"},
	}
	rc, _ := newReceiver(t, 64*1024)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := receive(t, rc, newRequest(tt.query, bytes.NewReader(formBytes(t, tt.parts...))))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Receive: %v", err)
				}
				if _, ok := u.Fields["messaging_product"]; ok {
					t.Error("messaging_product is repeated in Fields")
				}
				return
			}
			wantCode(t, err, upload.CodeMessagingProduct, tt.msg)
		})
	}
}

// TestReceiveContent sends files whose bytes are not what they claim.
func TestReceiveContent(t *testing.T) {
	tests := []struct {
		name     string
		declared string
		data     []byte
		reason   mediatype.Reason
		msg      string
	}{
		{"HTML as JPEG", "image/jpeg", fixture(t, "reject/page.html"), mediatype.ReasonMismatch, "declared as image/jpeg but its content is text/html"},
		{"SVG as PNG", "image/png", fixture(t, "reject/image.svg"), mediatype.ReasonMismatch, "content is image/svg+xml"},
		{"HTML as text", "text/plain", fixture(t, "reject/page.html"), mediatype.ReasonMismatch, "content is text/html"},
		{"SVG as text", "text/plain", fixture(t, "reject/image.svg"), mediatype.ReasonMismatch, "content is image/svg+xml"},
		{"JPEG as PNG", "image/png", fixture(t, "accept/image.jpg"), mediatype.ReasonMismatch, "content is image/jpeg"},
		{"MP4 as JPEG", "image/jpeg", fixture(t, "accept/video.mp4"), mediatype.ReasonMismatch, "content is video/mp4"},
		{"zip as DOCX", mediatype.DOCX, fixture(t, "reject/archive.zip"), mediatype.ReasonMismatch, "a plain zip archive"},
		{"DOC as XLS", mediatype.XLS, fixture(t, "reject/document.doc"), mediatype.ReasonMismatch, "content is application/msword"},
		{"DOCX as XLSX", mediatype.XLSX, fixture(t, "accept/document.docx"), mediatype.ReasonMismatch, "content is " + mediatype.DOCX},
		{"binary as text", "text/plain", fixture(t, "accept/audio.amr"), mediatype.ReasonMismatch, "declared as text/plain"},
		{"GIF as PNG", "image/png", fixture(t, "reject/image.gif"), mediatype.ReasonMismatch, "content is image/gif"},
		{"WebM as MP4", "video/mp4", fixture(t, "reject/video.webm"), mediatype.ReasonMismatch, "content is video/webm"},
		{"Vorbis as Ogg", "audio/ogg", fixture(t, "reject/audio.vorbis.ogg"), mediatype.ReasonCodec, "must use the Opus codec"},
		{"empty file", "application/pdf", nil, mediatype.ReasonEmpty, "the file is empty"},
	}
	rc, dir := newReceiver(t, 4*1024)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest("", bytes.NewReader(formBytes(t, whatsapp, file("upload.bin", tt.declared, tt.data))))
			_, err := receive(t, rc, req)
			wantReason(t, err, tt.reason, tt.msg)
			if n := spooled(t, dir); n != 0 {
				t.Errorf("%d spool files left open after a rejected upload", n)
			}
		})
	}
}

// TestReceiveSizeLimits streams big files through a pipe and counts how
// much of the body the receiver reads.
func TestReceiveSizeLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("streams several 16 MiB uploads")
	}
	pdf, jpeg, webp := fixture(t, "accept/document.pdf"), fixture(t, "accept/image.jpg"), fixture(t, "accept/sticker.webp")
	const slack = 64 * 1024 // read-ahead allowed past a limit
	tests := []struct {
		name     string
		typeLast bool // send the type field after the file
		declared string
		head     []byte
		size     int64
		limit    int64 // 0 when the file is accepted
	}{
		{name: "text at exactly 16 MiB", declared: "text/plain", size: 16777216},
		{name: "text one byte over 16 MiB", declared: "text/plain", size: 16777217, limit: mediatype.MaxUploadSize},
		{name: "PDF at exactly 16 MiB", declared: "application/pdf", head: pdf, size: 16777216},
		{name: "PDF one byte over 16 MiB", declared: "application/pdf", head: pdf, size: 16777217, limit: mediatype.MaxUploadSize},
		{name: "PDF of 40 MiB", declared: "application/pdf", head: pdf, size: 40 << 20, limit: mediatype.MaxUploadSize},
		{name: "JPEG at exactly 5 MiB", declared: "image/jpeg", head: jpeg, size: 5 << 20},
		{name: "JPEG one byte over 5 MiB", declared: "image/jpeg", head: jpeg, size: 5<<20 + 1, limit: 5 << 20},
		{name: "JPEG of 12 MiB", declared: "image/jpeg", head: jpeg, size: 12 << 20, limit: 5 << 20},
		{name: "JPEG of 6 MiB typed after the file", typeLast: true, declared: "image/jpeg", head: jpeg, size: 6 << 20, limit: 5 << 20},
		{name: "WebP at exactly 500 KiB", declared: "image/webp", head: webp, size: 500 << 10},
		{name: "WebP one byte over 500 KiB", declared: "image/webp", head: webp, size: 500<<10 + 1, limit: 500 << 10},
	}
	const memory = 1 << 20
	rc, dir := newReceiver(t, memory)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := []part{whatsapp, field("type", tt.declared), sizedFile("f", "", tt.head, tt.size)}
			if tt.typeLast {
				parts = []part{whatsapp, sizedFile("f", "", tt.head, tt.size), field("type", tt.declared)}
			}
			req, read := streamRequest(t, "", parts...)
			u, err := receive(t, rc, req)
			if tt.limit == 0 {
				if err != nil {
					t.Fatalf("Receive: %v", err)
				}
				h := sha256.New()
				_, _ = io.Copy(h, sizedFile("", "", tt.head, tt.size).body())
				if u.Size != tt.size || u.SHA256 != hex.EncodeToString(h.Sum(nil)) {
					t.Errorf("size %d sha256 %s, want %d %x", u.Size, u.SHA256, tt.size, h.Sum(nil))
				}
				if n, onDisk := spooled(t, dir), tt.size > memory; n != 1 && onDisk || n != 0 && !onDisk {
					t.Errorf("%d spool files open for a %d-byte upload with a %d-byte buffer", n, tt.size, memory)
				}
				return
			}
			e := wantReason(t, err, mediatype.ReasonTooLarge, fmt.Sprintf("allows for %s: the limit is %d bytes", tt.declared, tt.limit))
			if e.Limit != tt.limit {
				t.Errorf("Limit = %d, want %d", e.Limit, tt.limit)
			}
			stop := tt.limit + slack
			if tt.typeLast {
				stop = tt.size + slack // the limit is known only once the type arrives
			}
			if n := read.n.Load(); n > stop {
				t.Errorf("the receiver read %d body bytes, want at most %d", n, stop)
			}
			if n := spooled(t, dir); n != 0 {
				t.Errorf("%d spool files left open after a rejected upload", n)
			}
		})
	}
}

func TestReceiveRequestLimits(t *testing.T) {
	rc, _ := newReceiver(t, 64*1024)
	t.Run("untyped file over the cap", func(t *testing.T) {
		req, read := streamRequest(t, "", whatsapp, sizedFile("f", "", nil, 20<<20))
		_, err := receive(t, rc, req)
		if e := wantReason(t, err, mediatype.ReasonTooLarge, "16777216 bytes (16 MiB)"); e.Limit != mediatype.MaxUploadSize {
			t.Errorf("Limit = %d, want the 16 MiB cap", e.Limit)
		}
		if n := read.n.Load(); n > mediatype.MaxUploadSize+64*1024 {
			t.Errorf("the receiver read %d body bytes", n)
		}
	})
	t.Run("declared length over the limit", func(t *testing.T) {
		req, read := streamRequest(t, "", whatsapp, sizedFile("f", "text/plain", nil, 100))
		req.ContentLength = upload.MaxRequestSize + 1
		_, err := receive(t, rc, req)
		wantCode(t, err, upload.CodeRequestTooLarge, "17825792 bytes")
		if n := read.n.Load(); n != 0 {
			t.Errorf("the receiver read %d body bytes of a request it could refuse up front", n)
		}
	})
	t.Run("preamble over the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pr.Close() })
		go func() {
			_, err := io.Copy(pw, io.LimitReader(text(), upload.MaxRequestSize+1<<20))
			pw.CloseWithError(err)
		}()
		_, err := receive(t, rc, newRequest("", pr))
		wantCode(t, err, upload.CodeRequestTooLarge, "17825792 bytes")
	})
}

// TestReceiveMalformed sends broken and hostile multipart bodies.
func TestReceiveMalformed(t *testing.T) {
	jpeg := fixture(t, "accept/image.jpg")
	big := bytes.Repeat([]byte("0123456789abcdef"), 8*1024) // 128 KiB: spilled to a file
	valid := formBytes(t, whatsapp, file("a.txt", "text/plain", big), field("callback_url", "https://example.test/hook"))
	fileEnd := bytes.Index(valid, []byte("\r\n--"+boundary+"\r\nContent-Disposition: form-data; name=\"callback_url\""))
	closing := bytes.LastIndex(valid, []byte("\r\n--"+boundary+"--"))
	many := []part{whatsapp, file("a.jpg", "image/jpeg", jpeg)}
	for len(many) < 33 {
		many = append(many, field("note", "x"))
	}

	tests := []struct {
		name        string
		contentType string // default: multipart with the test boundary
		body        []byte
		code        string
		msg         string
	}{
		{name: "not multipart", contentType: "application/json", body: []byte(`{"file":"x"}`), code: upload.CodeNotMultipart},
		{name: "no Content-Type", contentType: "-", body: valid, code: upload.CodeNotMultipart},
		{name: "urlencoded form", contentType: "application/x-www-form-urlencoded", body: []byte("messaging_product=whatsapp"), code: upload.CodeNotMultipart},
		{name: "multipart without a boundary", contentType: "multipart/form-data", body: valid, code: upload.CodeNotMultipart},
		{name: "multipart/mixed", contentType: "multipart/mixed; boundary=" + boundary, body: valid, code: upload.CodeNotMultipart},
		{name: "empty body", body: nil, code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "no boundary in the body", body: []byte("just some bytes\r\n"), code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "wrong boundary in the body", contentType: "multipart/form-data; boundary=other", body: valid, code: upload.CodeMalformedMultipart},
		{name: "truncated in the file", body: valid[:fileEnd-1000], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated right after the file", body: valid[:fileEnd+2], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated at the next boundary", body: valid[:fileEnd+4+len(boundary)], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated after the next boundary", body: valid[:fileEnd+6+len(boundary)], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated in a field's header", body: valid[:fileEnd+30+len(boundary)], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated before the closing boundary", body: valid[:closing], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "truncated in the closing boundary", body: valid[:closing+4+len(boundary)], code: upload.CodeMalformedMultipart, msg: "ended early"},
		{name: "too many parts", body: formBytes(t, many...), code: upload.CodeTooManyParts, msg: "more than 32 parts"},
		{name: "second file part", body: formBytes(t, whatsapp, file("a.jpg", "image/jpeg", jpeg), file("b.jpg", "image/jpeg", jpeg)),
			code: upload.CodeDuplicateFile, msg: "one file per request"},
		{name: "second file part after a big one", body: formBytes(t, whatsapp, file("a.txt", "text/plain", big), file("b.txt", "text/plain", big)),
			code: upload.CodeDuplicateFile},
		{name: "file in a part not named file", body: formBytes(t, whatsapp, part{name: "document", filename: "a.jpg", contentType: "image/jpeg", data: jpeg}),
			code: upload.CodeUnexpectedFile, msg: `the part "document"`},
		{name: "file in a second part after the file", body: formBytes(t, whatsapp, file("a.txt", "text/plain", big), part{name: "thumb", filename: "t.jpg", data: jpeg}),
			code: upload.CodeUnexpectedFile, msg: `"thumb"`},
		{name: "no file", body: formBytes(t, whatsapp, field("type", "image/jpeg")), code: upload.CodeMissingFile, msg: `no part named "file"`},
		{name: "field over 4 KiB", body: formBytes(t, whatsapp, field("caption", strings.Repeat("x", 4097)), file("a.jpg", "image/jpeg", jpeg)),
			code: upload.CodeFieldTooLong, msg: `the field "caption" is longer than 4096 bytes`},
		{name: "field over 4 KiB after a big file", body: formBytes(t, whatsapp, file("a.txt", "text/plain", big), field("caption", strings.Repeat("x", 1<<20))),
			code: upload.CodeFieldTooLong},
		{name: "non-UTF-8 field", body: formBytes(t, whatsapp, field("caption", "caf\xe9"), file("a.jpg", "image/jpeg", jpeg)),
			code: upload.CodeMalformedMultipart, msg: `the field "caption" is not valid UTF-8`},
		{name: "non-UTF-8 messaging_product", body: formBytes(t, field("messaging_product", "whats\xffapp"), file("a.jpg", "image/jpeg", jpeg)),
			code: upload.CodeMalformedMultipart, msg: "not valid UTF-8"},
		{name: "long field name is cut in the message", body: formBytes(t, whatsapp, field(strings.Repeat("n", 300), strings.Repeat("x", 5000)), file("a.jpg", "image/jpeg", jpeg)),
			code: upload.CodeFieldTooLong, msg: strings.Repeat("n", 40) + "…"},
	}
	rc, dir := newReceiver(t, 16*1024)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest("", bytes.NewReader(tt.body))
			switch tt.contentType {
			case "":
			case "-":
				req.Header.Del("Content-Type")
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			_, err := receive(t, rc, req)
			wantCode(t, err, tt.code, tt.msg)
			if n := spooled(t, dir); n != 0 {
				t.Errorf("%d spool files left open after a rejected upload", n)
			}
		})
	}

	t.Run("the untruncated body is accepted", func(t *testing.T) {
		u, err := receive(t, rc, newRequest("", bytes.NewReader(valid)))
		if err != nil || u.Size != int64(len(big)) || u.Fields["callback_url"] != "https://example.test/hook" {
			t.Fatalf("Receive = %+v, %v", u, err)
		}
	})
	t.Run("an epilogue after the closing boundary is ignored", func(t *testing.T) {
		body := append(slices.Clone(valid), "\r\nclients may add an epilogue\r\n"...)
		if _, err := receive(t, rc, newRequest("", bytes.NewReader(body))); err != nil {
			t.Fatalf("Receive: %v", err)
		}
	})
	t.Run("bare LF line endings are accepted", func(t *testing.T) {
		lf := bytes.ReplaceAll(formBytes(t, whatsapp, file("a.txt", "text/plain", []byte("one line"))), []byte("\r\n"), []byte("\n"))
		u, err := receive(t, rc, newRequest("", bytes.NewReader(lf)))
		if err != nil || u.Size != int64(len("one line")) {
			t.Fatalf("Receive = %+v, %v", u, err)
		}
	})
	t.Run("32 parts are allowed", func(t *testing.T) {
		if _, err := receive(t, rc, newRequest("", bytes.NewReader(formBytes(t, many[:32]...)))); err != nil {
			t.Fatalf("Receive: %v", err)
		}
	})
	t.Run("a field of exactly 4 KiB is kept", func(t *testing.T) {
		v := strings.Repeat("y", 4096)
		u, err := receive(t, rc, newRequest("", bytes.NewReader(formBytes(t, whatsapp, field("caption", v), file("a.jpg", "image/jpeg", jpeg)))))
		if err != nil || u.Fields["caption"] != v {
			t.Fatalf("Receive = %v; caption kept: %v", err, err == nil && u.Fields["caption"] == v)
		}
	})
	t.Run("a body that fails to read", func(t *testing.T) {
		body := io.MultiReader(bytes.NewReader(valid[:fileEnd-1000]), errReader{})
		_, err := receive(t, rc, newRequest("", body))
		e := wantCode(t, err, upload.CodeMalformedMultipart, "could not be read")
		if !errors.Is(e, errConnReset) {
			t.Errorf("the cause %v is not kept for the logs", e.Err)
		}
	})
}

var errConnReset = errors.New("connection reset by peer")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errConnReset }

// TestReceiveSpool checks where the file is kept and that Close frees it.
func TestReceiveSpool(t *testing.T) {
	rc, dir := newReceiver(t, 64*1024)
	tests := []struct {
		name   string
		size   int
		onDisk bool
	}{
		{"small file stays in memory", 10 * 1024, false},
		{"file the size of the buffer stays in memory", 64 * 1024, false},
		{"one byte more goes to a file", 64*1024 + 1, true},
		{"large file goes to a file", 3 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.Repeat([]byte("spool me\n"), tt.size/9+1)[:tt.size]
			u, err := rc.Receive(httptest.NewRecorder(), newRequest("", bytes.NewReader(formBytes(t, whatsapp, file("s.txt", "text/plain", data)))))
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			want := 0
			if tt.onDisk {
				want = 1
			}
			if n := spooled(t, dir); n != want {
				t.Errorf("%d spool files open, want %d", n, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the spool directory lists %d files: a spool file must be unlinked at once", len(entries))
			}
			for range 2 { // Body starts from the beginning each time
				got, err := io.ReadAll(u.Body())
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Body() gave %d bytes (%v), want the %d bytes sent", len(got), err, len(data))
				}
			}
			if err := u.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if n := spooled(t, dir); n != 0 {
				t.Errorf("%d spool files open after Close", n)
			}
			if err := u.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := u.Body().Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
				t.Errorf("reading after Close: %v, want os.ErrClosed", err)
			}
		})
	}
}

// TestReceiveReusesBuffersCleanly: a pooled buffer must never show one
// upload's bytes in another.
func TestReceiveReusesBuffersCleanly(t *testing.T) {
	rc, _ := newReceiver(t, 64*1024)
	for i, size := range []int{60 * 1024, 5, 200 * 1024, 3000, 64 * 1024, 1} {
		data := bytes.Repeat([]byte{'a' + byte(i)}, size)
		u, err := rc.Receive(httptest.NewRecorder(), newRequest("", bytes.NewReader(formBytes(t, whatsapp, file("r.txt", "text/plain", data)))))
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		got, _ := io.ReadAll(u.Body())
		sum := sha256.Sum256(data)
		if !bytes.Equal(got, data) || u.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("upload %d (%d bytes) read back %d bytes %q…", i, size, len(got), got[:min(len(got), 8)])
		}
		_ = u.Close()
	}
}

func TestReceiveConcurrently(t *testing.T) {
	rc, dir := newReceiver(t, 32*1024)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			data := bytes.Repeat([]byte{'A' + byte(i), '\n'}, (i+1)*20*1024)
			u, err := rc.Receive(httptest.NewRecorder(), newRequest("", bytes.NewReader(formBytes(t, whatsapp, file("c.txt", "text/plain", data)))))
			if err != nil {
				errs <- err
				return
			}
			defer u.Close()
			got, _ := io.ReadAll(u.Body())
			if !bytes.Equal(got, data) {
				errs <- errors.New("an upload read back someone else's bytes")
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := spooled(t, dir); got != 0 {
		t.Errorf("%d spool files open after every upload was closed", got)
	}
}

func TestSafeFilename(t *testing.T) {
	tests := []struct {
		name, mime, want string
	}{
		{"photo.jpg", "image/jpeg", "photo.jpg"},
		{"Grüße aus München.pdf", "application/pdf", "Grüße aus München.pdf"},
		{"你好.txt", "text/plain", "你好.txt"},
		{"../../etc/passwd", "text/plain", "passwd"},
		{"/etc/shadow", "text/plain", "shadow"},
		{`C:\Users\me\Desktop\report.pdf`, "application/pdf", "report.pdf"},
		{`..\..\windows\win.ini`, "text/plain", "win.ini"},
		{"dir/", "image/png", "dir"},
		{"/", "image/png", "file.png"},
		{"..", "image/png", "file.png"},
		{".", "image/png", "file.png"},
		{"", "image/jpeg", "file.jpg"},
		{"", mediatype.DOCX, "file.docx"},
		{"", mediatype.XLS, "file.xls"},
		{"", "audio/ogg", "file.ogg"},
		{".htaccess", "text/plain", "htaccess"},
		{"...hidden.txt", "text/plain", "hidden.txt"},
		{" . .bashrc", "text/plain", "bashrc"},
		{"  spaced out.pdf  ", "application/pdf", "spaced out.pdf"},
		{"line\nbreak\r.txt", "text/plain", "linebreak.txt"},
		{"nul\x00byte.txt", "text/plain", "nulbyte.txt"},
		{"bell\x07\x1b[31mred.txt", "text/plain", "bell[31mred.txt"},
		{"c1\u0085control.txt", "text/plain", "c1control.txt"},
		{"invoice\u202Efdp.exe", "application/pdf", "invoicefdp.exe"},
		{"\u2066isolate\u2069.pdf", "application/pdf", "isolate.pdf"},
		{"mark\u200F.pdf", "application/pdf", "mark.pdf"},
		{"bad\xff\xfeutf8.txt", "text/plain", "badutf8.txt"},
		{"\xff\xfe", "text/plain", "file.txt"},
		{`quote"d.pdf`, "application/pdf", "quoted.pdf"},
		{"\x00\x01\x02", "video/mp4", "file.mp4"},
		{strings.Repeat("a", 300) + ".pdf", "application/pdf", strings.Repeat("a", 200)},
		{strings.Repeat("é", 150), "text/plain", strings.Repeat("é", 100)},
		{strings.Repeat("a", 199) + "é", "text/plain", strings.Repeat("a", 199)},
		{strings.Repeat("a", 199) + " b", "text/plain", strings.Repeat("a", 199)},
	}
	for _, tt := range tests {
		got := upload.SafeFilename(tt.name, tt.mime)
		if got != tt.want {
			t.Errorf("SafeFilename(%q, %s) = %q, want %q", tt.name, tt.mime, got, tt.want)
		}
		if len(got) > 200 || strings.ContainsAny(got, "/\\\"\x00\n") || !utf8.ValidString(got) {
			t.Errorf("SafeFilename(%q) = %q is not safe", tt.name, got)
		}
	}
}

// TestReceiveFilename: the name a client sends reaches the upload only in
// its safe form.
func TestReceiveFilename(t *testing.T) {
	rc, _ := newReceiver(t, 64*1024)
	jpeg := fixture(t, "accept/image.jpg")
	for _, tt := range []struct{ sent, want string }{
		{"../../../etc/cron.d/evil.jpg", "evil.jpg"},
		{"", "file.jpg"},
		{"a\u202Egpj.exe", "agpj.exe"},
	} {
		u, err := receive(t, rc, newRequest("", bytes.NewReader(formBytes(t, whatsapp, file(tt.sent, "image/jpeg", jpeg)))))
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if u.Filename != tt.want {
			t.Errorf("file name %q became %q, want %q", tt.sent, u.Filename, tt.want)
		}
	}
}
