package mediatype_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/sigfollow/media/shared/mediatype"
)

// accepted maps every fixture in testdata/accept to the declared types it
// must pass as. Every other whitelisted type must reject it.
var accepted = map[string][]string{
	"audio.aac":      {"audio/aac"},
	"audio.amr":      {"audio/amr"},
	"audio.m4a":      {"audio/mp4"}, // detects as audio/x-m4a
	"audio.mp3":      {"audio/mpeg"},
	"audio.opus.ogg": {"audio/ogg"},
	"document.docx":  {mediatype.DOCX},
	"document.pdf":   {"application/pdf"},
	"document.pptx":  {mediatype.PPTX},
	"document.txt":   {"text/plain"},
	"document.xls":   {mediatype.XLS}, // OLE2 directory at byte 5120: detects as application/x-ole-storage
	"document.xlsx":  {mediatype.XLSX},
	"image.jpg":      {"image/jpeg"},
	"image.png":      {"image/png"},
	"sticker.webp":   {"image/webp"},
	// 3GP detects under video/mp4; an MP4 is also a valid 3GPP container,
	// and an MP4 with the generic brand cannot be told from audio-only MP4
	// by its first bytes.
	"video.3gp": {"video/3gpp", "video/mp4"},
	"video.mp4": {"video/mp4", "video/3gpp", "audio/mp4"},
}

func TestCheckAcceptFixtures(t *testing.T) {
	files, err := os.ReadDir(filepath.Join("testdata", "accept"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(accepted) {
		t.Errorf("testdata/accept has %d files, the table %d: add the new fixture to the table", len(files), len(accepted))
	}
	for _, f := range files {
		name := f.Name()
		want, ok := accepted[name]
		if !ok {
			t.Errorf("testdata/accept/%s is not in the table", name)
			continue
		}
		b := fixture(t, "accept/"+name)
		for _, mime := range mediatype.Whitelist() {
			t.Run(name+" as "+mime, func(t *testing.T) {
				err := lookup(t, mime).Check(contentOf(b))
				if slices.Contains(want, mime) {
					if err != nil {
						t.Fatalf("a genuine %s declared as %s was rejected: %v", name, mime, err)
					}
					return
				}
				e := wantReason(t, err, mediatype.ReasonMismatch, "declared as "+mime)
				if e.Declared != mime {
					t.Errorf("Declared = %q, want %q", e.Declared, mime)
				}
			})
		}
	}
}

func TestCheckRejectFixtures(t *testing.T) {
	tests := []struct {
		file     string
		own      string // the file's real type: not whitelisted
		declared string // the whitelisted type it pretends to be
		reason   mediatype.Reason
		detected string // Error.Detected
		msg      string // part of the message
	}{
		{"archive.zip", "application/zip", mediatype.DOCX, mediatype.ReasonMismatch, "application/zip", "a plain zip archive, not an Office Open XML document"},
		{"archive.zip", "application/zip", mediatype.XLSX, mediatype.ReasonMismatch, "application/zip", "plain zip"},
		{"archive.zip", "application/zip", mediatype.PPTX, mediatype.ReasonMismatch, "application/zip", "plain zip"},
		{"audio.vorbis.ogg", "audio/vorbis", "audio/ogg", mediatype.ReasonCodec, "audio/ogg (Vorbis)", "must use the Opus codec"},
		{"audio.wav", "audio/wav", "audio/mpeg", mediatype.ReasonMismatch, "audio/wav", "content is audio/wav"},
		{"audio.wav", "audio/x-wav", "audio/aac", mediatype.ReasonMismatch, "audio/wav", "content is audio/wav"},
		{"document.doc", "application/msword", mediatype.XLS, mediatype.ReasonMismatch, "application/msword (a Word 97-2003 document)", "declared as application/vnd.ms-excel"},
		{"document.doc", "application/msword", mediatype.DOCX, mediatype.ReasonMismatch, "application/x-ole-storage", ""},
		{"document.ppt", "application/vnd.ms-powerpoint", mediatype.XLS, mediatype.ReasonMismatch, "application/vnd.ms-powerpoint (a PowerPoint 97-2003 presentation)", ""},
		{"document.ppt", "application/vnd.ms-powerpoint", mediatype.PPTX, mediatype.ReasonMismatch, "application/x-ole-storage", ""},
		{"image.gif", "image/gif", "image/png", mediatype.ReasonMismatch, "image/gif", "content is image/gif"},
		{"image.gif", "image/gif", "image/jpeg", mediatype.ReasonMismatch, "image/gif", ""},
		{"image.svg", "image/svg+xml", "image/png", mediatype.ReasonMismatch, "image/svg+xml", ""},
		{"image.svg", "image/svg+xml", "text/plain", mediatype.ReasonMismatch, "image/svg+xml", ""},
		{"page.html", "text/html", "text/plain", mediatype.ReasonMismatch, "text/html", "content is text/html"},
		{"page.html", "text/html", "image/jpeg", mediatype.ReasonMismatch, "text/html", ""},
		{"page.html", "text/html", "application/pdf", mediatype.ReasonMismatch, "text/html", ""},
		{"video.webm", "video/webm", "video/mp4", mediatype.ReasonMismatch, "video/webm", ""},
		{"video.webm", "video/webm", "audio/ogg", mediatype.ReasonMismatch, "video/webm", ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file+" as "+tt.declared, func(t *testing.T) {
			if _, ok := mediatype.Lookup(tt.own); ok {
				t.Fatalf("the file's own type %s is whitelisted", tt.own)
			}
			if e := mediatype.Unsupported(tt.own); e.Reason != mediatype.ReasonUnsupported {
				t.Fatalf("Unsupported(%q).Reason = %q", tt.own, e.Reason)
			}
			err := lookup(t, tt.declared).Check(contentOf(fixture(t, "reject/"+tt.file)))
			if e := wantReason(t, err, tt.reason, tt.msg); e.Detected != tt.detected {
				t.Errorf("Detected = %q, want %q", e.Detected, tt.detected)
			}
		})
	}
	files, err := os.ReadDir(filepath.Join("testdata", "reject"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[f.Name()] {
			t.Errorf("testdata/reject/%s is not in the table", f.Name())
		}
	}
}

// TestCheckDisguises builds the usual forgeries from the fixtures and from
// hand-written bytes.
func TestCheckDisguises(t *testing.T) {
	html := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
	svg := fixture(t, "reject/image.svg")
	jpeg := fixture(t, "accept/image.jpg")
	mp4 := fixture(t, "accept/video.mp4")
	docx := fixture(t, "accept/document.docx")
	xlsx := fixture(t, "accept/document.xlsx")
	pptx := fixture(t, "accept/document.pptx")
	xls := fixture(t, "accept/document.xls")
	opus := fixture(t, "accept/audio.opus.ogg")
	text := fixture(t, "accept/document.txt")

	tests := []struct {
		name     string
		declared string
		data     []byte
		reason   mediatype.Reason
		msg      string
	}{
		{"HTML as JPEG", "image/jpeg", html, mediatype.ReasonMismatch, "declared as image/jpeg but its content is text/html"},
		{"HTML with leading blank lines as PNG", "image/png", append([]byte("\r\n\n  "), html...), mediatype.ReasonMismatch, "content is text/html"},
		{"SVG as PNG", "image/png", svg, mediatype.ReasonMismatch, "content is image/svg+xml"},
		{"JPEG as PNG", "image/png", jpeg, mediatype.ReasonMismatch, "content is image/jpeg"},
		{"JPEG as WebP", "image/webp", jpeg, mediatype.ReasonMismatch, "content is image/jpeg"},
		{"MP4 as JPEG", "image/jpeg", mp4, mediatype.ReasonMismatch, "content is video/mp4"},
		{"MP4 as PDF", "application/pdf", mp4, mediatype.ReasonMismatch, "content is video/mp4"},
		{"DOCX as XLSX", mediatype.XLSX, docx, mediatype.ReasonMismatch, "content is " + mediatype.DOCX},
		{"XLSX as PPTX", mediatype.PPTX, xlsx, mediatype.ReasonMismatch, "content is " + mediatype.XLSX},
		{"PPTX as DOCX", mediatype.DOCX, pptx, mediatype.ReasonMismatch, "content is " + mediatype.PPTX},
		// When the first bytes show only a zip, the archive's entries decide.
		{"late DOCX as XLSX", mediatype.XLSX, ooxmlLate(t, "word/document.xml"), mediatype.ReasonMismatch, "content is a Word document"},
		{"late XLSX as PPTX", mediatype.PPTX, ooxmlLate(t, "xl/workbook.xml"), mediatype.ReasonMismatch, "content is an Excel workbook"},
		{"late PPTX as DOCX", mediatype.DOCX, ooxmlLate(t, "ppt/presentation.xml"), mediatype.ReasonMismatch, "content is a PowerPoint presentation"},
		{"DOCX as XLS", mediatype.XLS, docx, mediatype.ReasonMismatch, "declared as application/vnd.ms-excel"},
		{"XLS as DOCX", mediatype.DOCX, xls, mediatype.ReasonMismatch, "content is application/x-ole-storage"},
		{"truncated DOCX", mediatype.DOCX, docx[:len(docx)-200], mediatype.ReasonMismatch, "not a readable zip archive"},
		{"truncated XLS", mediatype.XLS, xls[:3*mediatype.KiB], mediatype.ReasonMismatch, "its OLE2 structure could not be read"},
		{"OLE2 header alone as XLS", mediatype.XLS, xls[:512], mediatype.ReasonMismatch, "OLE2 structure could not be read"},
		{"zip with OOXML content types but no Word part", mediatype.DOCX, zipOf(t, "[Content_Types].xml", "docProps/app.xml"), mediatype.ReasonMismatch, "plain zip"},
		{"zip with a word/ folder but no content types", mediatype.DOCX, zipOf(t, "word/document.xml"), mediatype.ReasonMismatch, "plain zip"},
		{"HTML as text", "text/plain", html, mediatype.ReasonMismatch, "content is text/html"},
		{"SVG as text", "text/plain", svg, mediatype.ReasonMismatch, "content is image/svg+xml"},
		{"XML as text", "text/plain", []byte(`<?xml version="1.0"?><note>hi</note>`), mediatype.ReasonMismatch, "content is text/xml"},
		{"PHP as text", "text/plain", []byte("<?php echo 'hi'; ?>\n"), mediatype.ReasonMismatch, "content is text/x-php"},
		{"RTF as text", "text/plain", []byte(`{\rtf1\ansi hello}`), mediatype.ReasonMismatch, "text/rtf"},
		{"JPEG as text", "text/plain", jpeg, mediatype.ReasonMismatch, "content is image/jpeg"},
		{"binary as text", "text/plain", []byte{0x00, 0x01, 0x02, 0x03, 0xFF, 0xFE, 0x00, 0x10}, mediatype.ReasonMismatch, "declared as text/plain"},
		{"text with a NUL past the sniffed prefix", "text/plain", textThen(text, 10*mediatype.KiB, 0x00), mediatype.ReasonMismatch, "byte 0x00 at offset 10240 is not text"},
		{"text with a control byte past the first read", "text/plain", textThen(text, 40*mediatype.KiB, 0x01), mediatype.ReasonMismatch, "byte 0x01 at offset 40960"},
		{"Ogg FLAC", "audio/ogg", oggWith(opus, "\x7fFLAC\x01\x00"), mediatype.ReasonCodec, "this file's codec is FLAC"},
		{"Ogg Speex", "audio/ogg", oggWith(opus, "Speex   1.2"), mediatype.ReasonCodec, "this file's codec is Speex"},
		{"Opus cut inside its first page", "audio/ogg", opus[:30], mediatype.ReasonMismatch, "content is application/ogg"},
		{"Ogg page without a known codec", "audio/ogg", oggWith(opus, "garbage!"), mediatype.ReasonMismatch, "content is application/ogg"},
		{"JPEG behind a UTF-16 byte order mark", "text/plain", append(append([]byte{0xFF, 0xFE}, jpeg...), 0), mediatype.ReasonMismatch, "starts with a UTF-16LE byte order mark, but a surrogate is unpaired at offset 2"},
		{"zip behind a UTF-16BE byte order mark", "text/plain", append([]byte{0xFE, 0xFF}, fixture(t, "reject/archive.zip")...), mediatype.ReasonMismatch, "UTF-16BE byte order mark, but U+0000 is not text at offset 8"},
		{"JPEG behind a UTF-32 byte order mark", "text/plain", append([]byte{0x00, 0x00, 0xFE, 0xFF}, jpeg...), mediatype.ReasonMismatch, "UTF-32BE byte order mark"},
		{"UTF-16 HTML as text", "text/plain", utf16LE("<html><script>alert(1)</script></html>"), mediatype.ReasonMismatch, "content is text/html (UTF-16LE)"},
		{"UTF-16 text cut in a code unit", "text/plain", utf16LE("hello")[:7], mediatype.ReasonMismatch, "a code unit is cut short at offset 6"},
		{"UTF-16 text with a lone low surrogate", "text/plain", append(utf16LE("hi"), 0x00, 0xDC), mediatype.ReasonMismatch, "a surrogate is unpaired at offset 6"},
		{"UTF-16 text ending in a high surrogate", "text/plain", append(utf16LE("hi"), 0x3D, 0xD8), mediatype.ReasonMismatch, "a surrogate is unpaired at offset 6"},
		{"UTF-16 text with a NUL far in", "text/plain", append(utf16LE(strings.Repeat("line of text\n", 4000)), 0, 0), mediatype.ReasonMismatch, "U+0000 is not text at offset 104002"},
		// Compound files that are not Excel workbooks.
		{"Word document as XLS", mediatype.XLS, buildOLE2(oleEntry{name: "WordDocument", data: make([]byte, 8192)}), mediatype.ReasonMismatch, "content is application/msword"},
		{"large Word document as XLS", mediatype.XLS, buildOLE2(oleEntry{name: "WordDocument", data: make([]byte, 8*mediatype.MiB)}), mediatype.ReasonMismatch, "content is application/msword"},
		{"PowerPoint presentation as XLS", mediatype.XLS, buildOLE2(oleEntry{name: "PowerPoint Document", data: make([]byte, 8192)}), mediatype.ReasonMismatch, "content is application/vnd.ms-powerpoint"},
		{"OLE2 file without a workbook as XLS", mediatype.XLS, buildOLE2(oleEntry{name: "Contents", data: make([]byte, 8192)}), mediatype.ReasonMismatch, "an OLE2 file without an Excel workbook stream"},
		{"workbook only inside an embedded object", mediatype.XLS, buildOLE2(
			oleEntry{name: "WordDocument", data: make([]byte, 8192)},
			oleEntry{name: "ObjectPool", children: []oleEntry{{name: "Workbook", data: biffWorkbook(8192)}}},
		), mediatype.ReasonMismatch, "content is application/msword"},
		{"PDF header only, as JPEG", "image/jpeg", []byte("%PDF-1.7\n"), mediatype.ReasonMismatch, "content is application/pdf"},
		{"octet soup as MP4", "video/mp4", bytes.Repeat([]byte{0xA5, 0x00}, 4096), mediatype.ReasonMismatch, "content is application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := lookup(t, tt.declared).Check(contentOf(tt.data))
			wantReason(t, err, tt.reason, tt.msg)
		})
	}
}

// TestCheckGenuineVariants covers genuine files that the first bytes alone
// would misjudge.
func TestCheckGenuineVariants(t *testing.T) {
	text := fixture(t, "accept/document.txt")
	xls := fixture(t, "accept/document.xls")
	tests := []struct {
		name     string
		declared string
		data     []byte
	}{
		{"UTF-8 text with a BOM", "text/plain", append([]byte{0xEF, 0xBB, 0xBF}, text...)},
		{"UTF-16LE text with a BOM", "text/plain", utf16LE("Hello, world.\r\nZweite Zeile.\r\n")},
		{"UTF-16LE text with emoji (surrogate pairs)", "text/plain", utf16LE("Grüße 👋🏽 aus München, ₹499.\n")},
		{"UTF-16BE text longer than one read", "text/plain", utf16BE(strings.Repeat("Zweite Zeile, 你好.\n", 3000))},
		{"UTF-16 byte order mark alone", "text/plain", []byte{0xFF, 0xFE}},
		{"UTF-32LE text", "text/plain", utf32With(binary.LittleEndian, "Grüße 👋 aus München.\n")},
		{"UTF-32BE text", "text/plain", utf32With(binary.BigEndian, "Grüße 👋 aus München.\n")},
		{"Latin-1 text", "text/plain", []byte("Caf\xe9 cr\xe8me br\xfbl\xe9e, M\xfcsli.\n")},
		{"text with tabs, form feeds and CRLF", "text/plain", []byte("a\tb\r\nc\fd\n")},
		{"long text", "text/plain", bytes.Repeat(text, 2000)},
		{"text declared with a charset", "text/plain; charset=utf-8", text},
		{"XLS declared in upper case", "APPLICATION/VND.MS-EXCEL", xls},
		{"DOCX whose tell-tale entry is past the sniffed prefix", mediatype.DOCX, ooxmlLate(t, "word/document.xml")},
		{"XLSX whose tell-tale entry is past the sniffed prefix", mediatype.XLSX, ooxmlLate(t, "xl/workbook.xml")},
		{"PPTX whose tell-tale entry is past the sniffed prefix", mediatype.PPTX, ooxmlLate(t, "ppt/presentation.xml")},
		{"XLS with its directory in the sniffed prefix", mediatype.XLS, buildOLE2(oleEntry{name: "Workbook", data: biffWorkbook(4096)})},
		{"BIFF5 XLS (Book stream)", mediatype.XLS, buildOLE2(oleEntry{name: "Book", data: biffWorkbook(8192)})},
		{"XLS of 10 MiB (FAT past the header's DIFAT, directory at the end)", mediatype.XLS, buildOLE2(
			oleEntry{name: "Workbook", data: biffWorkbook(10 * mediatype.MiB)},
			oleEntry{name: "\x05SummaryInformation", data: make([]byte, 4096)},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := lookup(t, tt.declared)
			if err := typ.Check(contentOf(tt.data)); err != nil {
				t.Fatalf("a genuine file was rejected: %v", err)
			}
		})
	}
}

func TestCheckEmpty(t *testing.T) {
	for _, mime := range mediatype.Whitelist() {
		t.Run(mime, func(t *testing.T) {
			err := lookup(t, mime).Check(mediatype.Content{All: bytes.NewReader(nil)})
			e := wantReason(t, err, mediatype.ReasonEmpty, "the file is empty")
			if e.Declared != mime {
				t.Errorf("got %q declared %q", e.Error(), e.Declared)
			}
		})
	}
}

// TestCheckSizeBoundaries checks each limit at its exact value and one byte
// past it. Only the first bytes are real; the rest is text, produced on
// demand.
func TestCheckSizeBoundaries(t *testing.T) {
	tests := []struct {
		declared string
		fixture  string
		limit    int64
		rule     string
	}{
		{"image/jpeg", "accept/image.jpg", 5 * mediatype.MiB, "Meta's image limit"},
		{"image/png", "accept/image.png", 5 * mediatype.MiB, "Meta's image limit"},
		{"image/webp", "accept/sticker.webp", 500 * mediatype.KiB, "Meta's sticker limit"},
		{"video/mp4", "accept/video.mp4", 16 * mediatype.MiB, "SigFollow's upload cap"},
		{"audio/mpeg", "accept/audio.mp3", 16 * mediatype.MiB, "SigFollow's upload cap"},
		{"application/pdf", "accept/document.pdf", 16 * mediatype.MiB, "SigFollow's upload cap"},
		{"text/plain", "accept/document.txt", 16 * mediatype.MiB, "SigFollow's upload cap"},
	}
	for _, tt := range tests {
		t.Run(tt.declared, func(t *testing.T) {
			typ := lookup(t, tt.declared)
			head := fixture(t, tt.fixture)
			if err := typ.Check(sized(head, tt.limit)); err != nil {
				t.Fatalf("a file of exactly %d bytes was rejected: %v", tt.limit, err)
			}
			err := typ.Check(sized(head, tt.limit+1))
			e := wantReason(t, err, mediatype.ReasonTooLarge, tt.rule)
			if e.Size != tt.limit+1 || e.Limit != tt.limit {
				t.Errorf("Size, Limit = %d, %d; want %d, %d", e.Size, e.Limit, tt.limit+1, tt.limit)
			}
			if !strings.Contains(e.Error(), tt.rule) || !strings.Contains(e.Error(), tt.declared) {
				t.Errorf("message %q does not name %q and %s", e.Error(), tt.rule, tt.declared)
			}
		})
	}
}

// TestCheckContent: everything Check does but the size limit.
func TestCheckContent(t *testing.T) {
	pdf := lookup(t, "application/pdf")
	head := fixture(t, "accept/document.pdf")
	if err := pdf.CheckContent(sized(head, 40*mediatype.MiB)); err != nil {
		t.Errorf("a 40 MiB PDF: %v", err)
	}
	wantReason(t, pdf.CheckContent(sized(fixture(t, "reject/page.html"), 40*mediatype.MiB)), mediatype.ReasonMismatch, "text/html")
	wantReason(t, pdf.CheckContent(contentOf(nil)), mediatype.ReasonEmpty, "empty")
	wantReason(t, lookup(t, "audio/ogg").CheckContent(contentOf(fixture(t, "reject/audio.vorbis.ogg"))), mediatype.ReasonCodec, "Vorbis")
}

func TestDetect(t *testing.T) {
	tests := []struct {
		file    string
		want    string
		lineage []string
	}{
		{"accept/audio.m4a", "audio/x-m4a", []string{"audio/x-m4a", "video/mp4", "application/octet-stream"}},
		{"accept/video.3gp", "video/3gpp", []string{"video/3gpp", "video/mp4", "application/octet-stream"}},
		{"accept/document.txt", "text/plain", []string{"text/plain", "application/octet-stream"}},
		// LibreOffice's .xls has its OLE2 directory at byte 5120, past the
		// sniffed prefix: only the compound file's streams can tell.
		{"accept/document.xls", "application/x-ole-storage", []string{"application/x-ole-storage", "application/octet-stream"}},
		{"reject/document.doc", "application/x-ole-storage", []string{"application/x-ole-storage", "application/octet-stream"}},
		{"reject/page.html", "text/html", []string{"text/html", "text/plain", "application/octet-stream"}},
	}
	for _, tt := range tests {
		b := fixture(t, tt.file)
		got, lineage := mediatype.Detect(b[:min(len(b), mediatype.SniffLen)])
		if got != tt.want || !slices.Equal(lineage, tt.lineage) {
			t.Errorf("Detect(%s) = %q %q, want %q %q", tt.file, got, lineage, tt.want, tt.lineage)
		}
	}
	if got, _ := mediatype.Detect(nil); got != "text/plain" && got != "application/octet-stream" {
		t.Errorf("Detect(nil) = %q", got)
	}
}

// TestCheckReadError: a failing reader is our problem, not the client's: the
// error is not a *mediatype.Error.
func TestCheckReadError(t *testing.T) {
	text := fixture(t, "accept/document.txt")
	c := mediatype.Content{Prefix: text, Size: 1 << 20, All: failingReaderAt{}}
	err := lookup(t, "text/plain").Check(c)
	var me *mediatype.Error
	if err == nil || errors.As(err, &me) || !errors.Is(err, errDisk) {
		t.Fatalf("Check with a failing reader = %v, want a wrapped read error", err)
	}
}

var errDisk = errors.New("disk on fire")

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

// fixture returns a file under testdata.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// contentOf describes b as a receiver would: its first SniffLen bytes, its
// size, and random access to all of it.
func contentOf(b []byte) mediatype.Content {
	return mediatype.Content{Prefix: b[:min(len(b), mediatype.SniffLen)], Size: int64(len(b)), All: bytes.NewReader(b)}
}

// sized describes a file of size bytes that starts with head and goes on
// with lines of text.
func sized(head []byte, size int64) mediatype.Content {
	r := &textAfter{head: head, size: size}
	prefix := make([]byte, min(size, mediatype.SniffLen))
	_, _ = r.ReadAt(prefix, 0)
	return mediatype.Content{Prefix: prefix, Size: size, All: r}
}

type textAfter struct {
	head []byte
	size int64
}

func (r *textAfter) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	for i := range n {
		if o := off + int64(i); o < int64(len(r.head)) {
			p[i] = r.head[o]
		} else {
			p[i] = "All work and no play.\n"[o%22]
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// wantReason asserts that err is a *mediatype.Error for reason whose
// message contains msg, and returns it.
func wantReason(tb testing.TB, err error, reason mediatype.Reason, msg string) *mediatype.Error {
	tb.Helper()
	var e *mediatype.Error
	if !errors.As(err, &e) {
		tb.Fatalf("got error %v (%T), want a *mediatype.Error with reason %q", err, err, reason)
	}
	if e.Reason != reason || e.Error() == "" || !strings.Contains(e.Error(), msg) {
		tb.Fatalf("got %q: %q, want %q with a message containing %q", e.Reason, e.Error(), reason, msg)
	}
	return e
}

// textThen returns text repeated to size bytes, then the byte b and a few
// more letters: b sits at offset size.
func textThen(text []byte, size int, b byte) []byte {
	out := bytes.Repeat(text, size/len(text)+1)[:size]
	return append(out, b, 'x', 'y', 'z')
}

// oggWith replaces the codec header in the first page of an Ogg file.
func oggWith(ogg []byte, header string) []byte {
	out := slices.Clone(ogg)
	copy(out[28:], header)
	return out
}

// utf16LE and utf16BE encode s with a byte order mark.
func utf16LE(s string) []byte { return utf16With(binary.LittleEndian, s) }
func utf16BE(s string) []byte { return utf16With(binary.BigEndian, s) }

func utf32With(order binary.AppendByteOrder, s string) []byte {
	out := order.AppendUint32(nil, 0xFEFF)
	for _, r := range s {
		out = order.AppendUint32(out, uint32(r))
	}
	return out
}

func utf16With(order binary.AppendByteOrder, s string) []byte {
	out := order.AppendUint16(nil, 0xFEFF)
	for _, u := range utf16.Encode([]rune(s)) {
		out = order.AppendUint16(out, u)
	}
	return out
}

// zipOf returns a zip archive holding empty entries with the given names.
func zipOf(tb testing.TB, names ...string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = w.Write([]byte("<x/>"))
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// ooxmlLate returns an OOXML-shaped zip whose main part comes after 8 KiB of
// other stored entries, so that the sniffed prefix shows only a zip.
func ooxmlLate(tb testing.TB, main string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	add("[Content_Types].xml", []byte(`<?xml version="1.0"?><Types/>`))
	add("docProps/thumbnail.jpeg", bytes.Repeat([]byte{0x5A}, 8*mediatype.KiB))
	add(main, []byte(`<?xml version="1.0"?><x/>`))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()
	if got, _ := mediatype.Detect(b[:mediatype.SniffLen]); got != "application/zip" {
		tb.Fatalf("the late OOXML zip detects as %s, want application/zip", got)
	}
	return b
}
