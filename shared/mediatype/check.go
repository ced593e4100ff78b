package mediatype

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gabriel-vasile/mimetype"
	"github.com/richardlehane/mscfb"
)

// SniffLen is how many leading bytes Check wants in Content.Prefix: enough
// for every detector mimetype runs by default.
const SniffLen = 3072

// Reason names the rule a file broke. The values are stable and double as
// API error codes.
type Reason string

// The rules.
const (
	ReasonUnsupported Reason = "unsupported_media_type"
	ReasonMismatch    Reason = "content_mismatch"
	ReasonEmpty       Reason = "empty_file"
	ReasonTooLarge    Reason = "file_too_large"
	ReasonCodec       Reason = "unsupported_codec"
)

// Error is a file that breaks a media rule.
type Error struct {
	Reason   Reason
	Declared string // the declared type, normalised
	Detected string // what the content looks like, when known
	Size     int64  // the file's size, for ReasonTooLarge
	Limit    int64  // the limit it broke, for ReasonTooLarge
	msg      string
}

func (e *Error) Error() string { return e.msg }

// Unsupported returns the error for a declared type outside the whitelist.
func Unsupported(declared string) *Error {
	n := Normalize(declared)
	msg := fmt.Sprintf("type %q is not accepted", n)
	if n == "" || n == "application/octet-stream" {
		msg = "the file's type is missing or generic (" + orNone(n) + "); send a specific type in the `type` field or on the file part"
	}
	if s := Suggest(n); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	msg += "; accepted types: " + strings.Join(Whitelist(), ", ")
	return &Error{Reason: ReasonUnsupported, Declared: n, msg: msg}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// TooLarge returns the error for a file of size bytes (or, while streaming,
// of at least size bytes) declared as t.
func (t Type) TooLarge(size int64) *Error {
	limit := t.MaxSize()
	rule := fmt.Sprintf("Meta's %s limit", t.Kind)
	if limit == MaxUploadSize {
		rule = "SigFollow's upload cap"
	}
	return &Error{
		Reason: ReasonTooLarge, Declared: t.MIME, Size: size, Limit: limit,
		msg: fmt.Sprintf("file is larger than %s allows for %s: the limit is %d bytes (%s)", rule, t.MIME, limit, human(limit)),
	}
}

// TooLargeForUpload returns the error for a file over MaxUploadSize whose
// type is not known yet.
func TooLargeForUpload() *Error {
	return &Error{
		Reason: ReasonTooLarge, Limit: MaxUploadSize,
		msg: fmt.Sprintf("file is larger than SigFollow's upload cap of %d bytes (16 MiB)", MaxUploadSize),
	}
}

func human(n int64) string {
	switch {
	case n%MiB == 0:
		return fmt.Sprintf("%d MiB", n/MiB)
	case n%KiB == 0:
		return fmt.Sprintf("%d KiB", n/KiB)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (t Type) mismatch(detected, why string) *Error {
	msg := fmt.Sprintf("the file was declared as %s but its content is %s", t.MIME, detected)
	if why != "" {
		msg += ": " + why
	}
	return &Error{Reason: ReasonMismatch, Declared: t.MIME, Detected: detected, msg: msg}
}

// Content is a file to judge.
type Content struct {
	// Prefix holds the file's first bytes: at least SniffLen of them, or the
	// whole file if it is shorter.
	Prefix []byte
	// Size is the file's length in bytes.
	Size int64
	// All reads anywhere in the file; the deep checks use it.
	All io.ReaderAt
}

// Detect reports what the content's first bytes look like, with the
// detection's ancestors (most specific first), all without parameters.
func Detect(prefix []byte) (string, []string) {
	m := mimetype.Detect(prefix)
	var lineage []string
	for ; m != nil; m = m.Parent() {
		lineage = append(lineage, Normalize(m.String()))
	}
	return lineage[0], lineage
}

// Check judges a file declared as t: not empty, within t's size limit, and
// with content that is what t claims. It returns nil or an *Error.
func (t Type) Check(c Content) error {
	if c.Size == 0 {
		return &Error{Reason: ReasonEmpty, Declared: t.MIME, msg: "the file is empty"}
	}
	if c.Size > t.MaxSize() {
		return t.TooLarge(c.Size)
	}
	detected, lineage := Detect(c.Prefix)
	if !t.accepts(detected, lineage) {
		return t.mismatch(detected, "")
	}
	if t.deep == checkNone {
		return nil
	}
	return t.deepCheck(c, detected)
}

func (t Type) deepCheck(c Content, detected string) (err error) {
	defer func() {
		// The container parsers read attacker-supplied structures; a parser
		// bug must reject the file, not take the process down.
		if r := recover(); r != nil {
			err = t.mismatch(detected, "its structure could not be read")
		}
	}()
	switch t.deep {
	case checkText:
		return t.checkText(c, detected)
	case checkOpus:
		return t.checkOpus(c)
	case checkDocx:
		return t.checkOOXML(c, "word/")
	case checkXlsx:
		return t.checkOOXML(c, "xl/")
	case checkPptx:
		return t.checkOOXML(c, "ppt/")
	case checkXls:
		return t.checkXls(c, detected)
	}
	return nil
}

// checkText scans the whole file for binary bytes (WHATWG's "binary data
// bytes"); mimetype only looks at the prefix. UTF-16 and UTF-32 text (with a
// BOM) is exempt, as zero bytes are normal there.
func (t Type) checkText(c Content, detected string) error {
	if hasWideBOM(c.Prefix) {
		return nil
	}
	buf := make([]byte, 32*KiB)
	r := io.NewSectionReader(c.All, 0, c.Size)
	var off int64
	for {
		n, err := r.Read(buf)
		if i := bytes.IndexFunc(buf[:n], isBinaryRune); i >= 0 {
			return t.mismatch("binary data", fmt.Sprintf("byte 0x%02x at offset %d is not text", buf[i], off+int64(i)))
		}
		off += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mediatype: reading file: %w", err)
		}
	}
}

func hasWideBOM(p []byte) bool {
	return bytes.HasPrefix(p, []byte{0xFE, 0xFF}) || bytes.HasPrefix(p, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(p, []byte{0x00, 0x00, 0xFE, 0xFF})
}

// isBinaryRune is applied to runes decoded from UTF-8; invalid sequences
// decode as U+FFFD and pass, as legacy 8-bit encodings are still text.
func isBinaryRune(r rune) bool {
	return r <= 0x08 || r == 0x0B || (r >= 0x0E && r <= 0x1A) || (r >= 0x1C && r <= 0x1F)
}

// checkOpus requires the first logical stream of an Ogg file to be Opus:
// Meta plays only Opus in audio/ogg.
func (t Type) checkOpus(c Content) error {
	const off = 28 // the first page's payload: the codec's identification header
	p := c.Prefix
	if len(p) >= off+8 && string(p[off:off+8]) == "OpusHead" {
		return nil
	}
	codec := "not Opus"
	switch {
	case len(p) >= off+7 && string(p[off+1:off+7]) == "vorbis":
		codec = "Vorbis"
	case len(p) >= off+5 && string(p[off+1:off+5]) == "FLAC":
		codec = "FLAC"
	case len(p) >= off+5 && string(p[off:off+5]) == "Speex":
		codec = "Speex"
	}
	return &Error{
		Reason: ReasonCodec, Declared: t.MIME, Detected: "audio/ogg (" + codec + ")",
		msg: "audio/ogg files must use the Opus codec (Meta plays no other); this file's codec is " + codec,
	}
}

// ooxmlKinds names each OOXML main directory, for messages.
var ooxmlKinds = map[string]string{"word/": "a Word document", "xl/": "an Excel workbook", "ppt/": "a PowerPoint presentation"}

// checkOOXML reads the zip's central directory: an OOXML package has a
// [Content_Types].xml entry and its main part under word/, xl/ or ppt/.
func (t Type) checkOOXML(c Content, dir string) error {
	zr, err := zip.NewReader(c.All, c.Size)
	if err != nil {
		return t.mismatch("not a readable zip archive", "")
	}
	var hasTypes bool
	found := map[string]bool{}
	for _, f := range zr.File {
		if f.Name == "[Content_Types].xml" {
			hasTypes = true
		}
		for d := range ooxmlKinds {
			if strings.HasPrefix(f.Name, d) {
				found[d] = true
			}
		}
	}
	switch {
	case hasTypes && found[dir]:
		return nil
	case hasTypes:
		for d, what := range ooxmlKinds {
			if found[d] {
				return t.mismatch(what, "")
			}
		}
	}
	return t.mismatch("application/zip", "a plain zip archive, not an Office Open XML document")
}

// checkXls opens the OLE2 compound file and requires an Excel workbook
// stream ("Workbook" for BIFF8, "Book" for BIFF5). Word and PowerPoint files
// share the container and are told apart by their own streams.
func (t Type) checkXls(c Content, detected string) error {
	doc, err := mscfb.New(io.NewSectionReader(c.All, 0, c.Size))
	if err != nil {
		return t.mismatch(detected, "its OLE2 structure could not be read")
	}
	var other string
	for {
		entry, err := doc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return t.mismatch(detected, "its OLE2 structure could not be read")
		}
		if len(entry.Path) > 0 {
			continue // streams inside sub-storages (embedded objects) don't count
		}
		switch entry.Name {
		case "Workbook", "Book":
			return nil
		case "WordDocument":
			other = "application/msword (a Word 97-2003 document)"
		case "PowerPoint Document":
			other = "application/vnd.ms-powerpoint (a PowerPoint 97-2003 presentation)"
		}
	}
	if other != "" {
		return t.mismatch(other, "")
	}
	return t.mismatch(detected, "an OLE2 file without an Excel workbook stream")
}
