package mediatype

import (
	"errors"
	"mime"
	"slices"
	"strings"
)

// Sizes. Meta's documentation says "MB" without saying whether it means 10^6
// or 2^20 bytes; like SigFollow's 16 MiB cap, these read it as 2^20.
const (
	KiB = 1 << 10
	MiB = 1 << 20

	// MaxUploadSize is SigFollow's cap on every upload: 16 MiB.
	MaxUploadSize int64 = 16 * MiB
)

// Kind is Meta's grouping of media types; each kind has its own limit.
type Kind string

// The kinds Meta distinguishes.
const (
	KindImage    Kind = "image"
	KindSticker  Kind = "sticker"
	KindVideo    Kind = "video"
	KindAudio    Kind = "audio"
	KindDocument Kind = "document"
)

// metaLimit is Meta's own size limit per kind.
var metaLimit = map[Kind]int64{
	KindImage:    5 * MiB,
	KindSticker:  500 * KiB,
	KindVideo:    16 * MiB,
	KindAudio:    16 * MiB,
	KindDocument: 100 * MiB,
}

// check is a deeper content check run on the whole file.
type check int

const (
	checkNone check = iota
	checkText
	checkOpus
	checkDocx
	checkXlsx
	checkPptx
	checkXls
)

// Type is one whitelisted MIME type.
type Type struct {
	// MIME is the canonical type, as Meta expects it in the `type` field.
	MIME string
	// Kind decides Meta's size limit.
	Kind Kind
	// detected lists what mimetype may report for a genuine file of this
	// type: the aliases real encoders produce. See Aliases.
	detected []string
	deep     check
}

// MIME names of the OOXML and legacy Excel types.
const (
	DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	XLS  = "application/vnd.ms-excel"
)

// whitelist is the one table of accepted types and the detections each one
// accepts. Aliases, by the encoders that produce them:
//   - image/png: animated PNGs detect as image/vnd.mozilla.apng.
//   - video/mp4: ISO-BMFF files with the 3GP or M4V brands are MP4 too.
//   - video/3gpp: 3GP files detect under video/mp4 (as video/3gpp or
//     video/3gpp2), and ffmpeg's H.264 3GP output sometimes as plain mp4.
//   - audio/mp4: an .m4a detects as audio/x-m4a (a child of video/mp4); an
//     audio-only MP4 with the generic "isom" brand detects as video/mp4.
//   - OOXML: when the tell-tale entry is beyond the sniffed prefix, the file
//     detects as application/zip; the whole archive then decides.
//   - application/vnd.ms-excel: when the OLE2 directory is beyond the sniffed
//     prefix (LibreOffice writes it at the end), the file detects as
//     application/x-ole-storage; the compound file's streams then decide.
var whitelist = []Type{
	{MIME: "image/jpeg", Kind: KindImage, detected: []string{"image/jpeg"}},
	{MIME: "image/png", Kind: KindImage, detected: []string{"image/png", "image/vnd.mozilla.apng"}},
	{MIME: "image/webp", Kind: KindSticker, detected: []string{"image/webp"}},
	{MIME: "video/mp4", Kind: KindVideo, detected: []string{"video/mp4", "video/x-m4v", "video/3gpp", "video/3gpp2"}},
	{MIME: "video/3gpp", Kind: KindVideo, detected: []string{"video/3gpp", "video/3gpp2", "video/mp4"}},
	{MIME: "audio/aac", Kind: KindAudio, detected: []string{"audio/aac"}},
	{MIME: "audio/mp4", Kind: KindAudio, detected: []string{"audio/mp4", "audio/x-m4a", "video/mp4"}},
	{MIME: "audio/mpeg", Kind: KindAudio, detected: []string{"audio/mpeg"}},
	{MIME: "audio/amr", Kind: KindAudio, detected: []string{"audio/amr"}},
	{MIME: "audio/ogg", Kind: KindAudio, detected: []string{"audio/ogg"}, deep: checkOpus},
	{MIME: "application/pdf", Kind: KindDocument, detected: []string{"application/pdf"}},
	{MIME: "text/plain", Kind: KindDocument, deep: checkText},
	{MIME: DOCX, Kind: KindDocument, detected: []string{DOCX, "application/zip"}, deep: checkDocx},
	{MIME: XLSX, Kind: KindDocument, detected: []string{XLSX, "application/zip"}, deep: checkXlsx},
	{MIME: PPTX, Kind: KindDocument, detected: []string{PPTX, "application/zip"}, deep: checkPptx},
	{MIME: XLS, Kind: KindDocument, detected: []string{XLS, "application/x-ole-storage"}, deep: checkXls},
}

// Lookup returns the whitelisted type for a declared MIME type. The
// declaration is normalised first (case, parameters such as charset).
func Lookup(declared string) (Type, bool) {
	n := Normalize(declared)
	for _, t := range whitelist {
		if t.MIME == n {
			return t, true
		}
	}
	return Type{}, false
}

// Whitelist returns the accepted MIME types, in the seed's order.
func Whitelist() []string {
	out := make([]string, len(whitelist))
	for i, t := range whitelist {
		out[i] = t.MIME
	}
	return out
}

// Normalize lowercases a MIME type and drops its parameters, even malformed
// ones ("image/jpeg; name"). A value whose type itself does not parse is
// returned trimmed and lowercased, so that it can still be named in an error.
func Normalize(declared string) string {
	mt, _, err := mime.ParseMediaType(declared)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return strings.ToLower(strings.TrimSpace(declared))
	}
	return mt
}

// Specific reports whether a declared type says anything: empty values and
// the generic application/octet-stream do not.
func Specific(declared string) bool {
	n := Normalize(declared)
	_, isKind := KindOf(n)
	return n != "" && n != "application/octet-stream" && !isKind
}

// KindOf reports whether declared is one of WhatsApp's message kinds
// ("image", "sticker", "video", "audio", "document") rather than a MIME
// type. Some Cloud API clients send the message kind in the `type` field;
// it says which kind the file is for, not what the file is.
func KindOf(declared string) (Kind, bool) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(declared))); k {
	case KindImage, KindSticker, KindVideo, KindAudio, KindDocument:
		return k, true
	}
	return "", false
}

// FitsKind reports whether a file of type t can be sent as a message of
// kind k. WebP files are stickers but are images too.
func (t Type) FitsKind(k Kind) bool {
	return t.Kind == k || (k == KindImage && t.Kind == KindSticker)
}

// MetaLimit is Meta's own size limit for the type.
func (t Type) MetaLimit() int64 { return metaLimit[t.Kind] }

// MaxSize is the largest file SigFollow accepts for the type: Meta's limit,
// capped at MaxUploadSize.
func (t Type) MaxSize() int64 { return min(t.MetaLimit(), MaxUploadSize) }

// accepts reports whether a detection with the given MIME and ancestors is a
// genuine file of this type (before any deep check).
func (t Type) accepts(detected string, lineage []string) bool {
	if t.deep == checkText {
		return isPlainText(lineage)
	}
	return slices.Contains(t.detected, detected)
}

// markup lists the text types text/plain must not be: a browser would render
// them, which is exactly what a disguised upload wants.
var markup = []string{"text/html", "text/xml", "image/svg+xml", "application/xhtml+xml", "text/x-php", "text/rtf"}

func isPlainText(lineage []string) bool {
	if !slices.Contains(lineage, "text/plain") {
		return false
	}
	for _, m := range lineage {
		if slices.Contains(markup, m) {
			return false
		}
	}
	return true
}

// Suggest returns the whitelisted type a common misspelling means, if any.
func Suggest(declared string) string {
	switch Normalize(declared) {
	case "image/jpg", "image/pjpeg":
		return "image/jpeg"
	case "audio/mp3", "audio/x-mpeg", "audio/mpeg3":
		return "audio/mpeg"
	case "audio/x-m4a", "audio/m4a":
		return "audio/mp4"
	case "video/3gp":
		return "video/3gpp"
	case "audio/opus":
		return "audio/ogg"
	case "application/x-pdf":
		return "application/pdf"
	}
	return ""
}
