package mediatype

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

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
// with content that is what t claims. It returns nil, an *Error, or an error
// reading c.All.
func (t Type) Check(c Content) error {
	if c.Size > t.MaxSize() {
		return t.TooLarge(c.Size)
	}
	return t.CheckContent(c)
}

// CheckContent is Check without the size limit: the file must not be empty
// and its content must be what t claims. The fake Graph API uses it with
// Meta's own limits, which are larger than SigFollow's for documents.
func (t Type) CheckContent(c Content) error {
	if c.Size == 0 {
		return &Error{Reason: ReasonEmpty, Declared: t.MIME, msg: "the file is empty"}
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
// BOM) is decoded first, as zero bytes are normal there: the BOM alone must
// not let binary data or markup through.
func (t Type) checkText(c Content, detected string) error {
	if w, ok := wideEncoding(c.Prefix); ok {
		return t.checkWideText(c, w)
	}
	buf := make([]byte, 32*KiB)
	r := io.NewSectionReader(c.All, 0, c.Size)
	var off int64
	for {
		n, err := r.Read(buf)
		if i := indexBinaryByte(buf[:n]); i >= 0 {
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

// wide is a UTF-16 or UTF-32 encoding announced by a byte order mark.
type wide struct {
	name  string
	unit  int // bytes per code unit
	order binary.ByteOrder
}

func wideEncoding(p []byte) (wide, bool) {
	switch {
	case bytes.HasPrefix(p, []byte{0xFF, 0xFE, 0x00, 0x00}):
		return wide{"UTF-32LE", 4, binary.LittleEndian}, true
	case bytes.HasPrefix(p, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return wide{"UTF-32BE", 4, binary.BigEndian}, true
	case bytes.HasPrefix(p, []byte{0xFF, 0xFE}):
		return wide{"UTF-16LE", 2, binary.LittleEndian}, true
	case bytes.HasPrefix(p, []byte{0xFE, 0xFF}):
		return wide{"UTF-16BE", 2, binary.BigEndian}, true
	}
	return wide{}, false
}

// checkWideText decodes a UTF-16 or UTF-32 file: every character must be
// valid and text, and its beginning must not be markup.
func (t Type) checkWideText(c Content, w wide) error {
	bad := func(off int64, why string) error {
		return t.mismatch("binary data", fmt.Sprintf("it starts with a %s byte order mark, but %s at offset %d", w.name, why, off))
	}
	if c.Size%int64(w.unit) != 0 {
		return bad(c.Size-c.Size%int64(w.unit), "a code unit is cut short")
	}
	buf := make([]byte, 32*KiB) // a multiple of every unit size
	r := io.NewSectionReader(c.All, 0, c.Size)
	head := make([]byte, 0, SniffLen+utf8.UTFMax) // the text's start as UTF-8, for the markup check
	high := rune(-1)                              // a pending UTF-16 high surrogate
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i+w.unit <= n; i += w.unit {
			pos := off + int64(i)
			var ch rune
			if w.unit == 2 {
				ch = rune(w.order.Uint16(buf[i:]))
			} else {
				ch = rune(w.order.Uint32(buf[i:]))
			}
			switch {
			case pos == 0:
				continue // the byte order mark
			case w.unit == 2 && ch >= 0xD800 && ch < 0xDC00:
				if high >= 0 {
					return bad(pos-2, "a surrogate is unpaired")
				}
				high = ch
				continue
			case w.unit == 2 && ch >= 0xDC00 && ch <= 0xDFFF:
				if high < 0 {
					return bad(pos, "a surrogate is unpaired")
				}
				ch, high = utf16.DecodeRune(high, ch), -1
			case high >= 0:
				return bad(pos-2, "a surrogate is unpaired")
			case !utf8.ValidRune(ch):
				return bad(pos, fmt.Sprintf("0x%X is not a character", uint32(ch)))
			}
			if isBinaryRune(ch) {
				return bad(pos, fmt.Sprintf("U+%04X is not text", ch))
			}
			if len(head) < SniffLen {
				head = utf8.AppendRune(head, ch)
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("mediatype: reading file: %w", err)
		}
	}
	if high >= 0 {
		return bad(c.Size-2, "a surrogate is unpaired")
	}
	if detected, lineage := Detect(head); !isPlainText(lineage) {
		return t.mismatch(detected+" ("+w.name+")", "")
	}
	return nil
}

// binaryBytes has bit b set for each binary data byte b (all below 0x20):
// 0x00-0x08, 0x0B, 0x0E-0x1A and 0x1C-0x1F.
const binaryBytes = 0b11110111111111111100100111111111

// indexBinaryByte returns the index of the first binary data byte in p, or
// -1. In UTF-8 a byte below 0x80 is always a character of its own (every
// byte of a multi-byte character is 0x80 or above), so scanning bytes finds
// exactly the characters isBinaryRune would, without decoding them. Eight
// bytes are tested at a time for one below 0x20; only such words are looked
// at byte by byte.
func indexBinaryByte(p []byte) int {
	const highs, below = 0x8080808080808080, 0x2020202020202020
	i := 0
	for ; i+8 <= len(p); i += 8 {
		if w := binary.LittleEndian.Uint64(p[i:]); (w-below)&^w&highs == 0 {
			continue
		}
		if j := indexBinaryByteSlow(p[i : i+8]); j >= 0 {
			return i + j
		}
	}
	if j := indexBinaryByteSlow(p[i:]); j >= 0 {
		return i + j
	}
	return -1
}

// indexBinaryByteSlow is indexBinaryByte one byte at a time.
func indexBinaryByteSlow(p []byte) int {
	for i, b := range p {
		if b < 0x20 && binaryBytes>>b&1 != 0 {
			return i
		}
	}
	return -1
}

// isBinaryRune is applied to characters decoded from UTF-8 (where invalid
// sequences decode as U+FFFD and pass, as legacy 8-bit encodings are still
// text) or from UTF-16 and UTF-32.
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
