package mediatype_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sigfollow/media/shared/mediatype"
)

// wantWhitelist is the product rule, spelled out: exactly these types are
// accepted, in this order.
var wantWhitelist = []string{
	"image/jpeg", "image/png", "image/webp",
	"video/mp4", "video/3gpp",
	"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg",
	"application/pdf", "text/plain",
	mediatype.DOCX, mediatype.XLSX, mediatype.PPTX, mediatype.XLS,
}

func TestWhitelistIsExactlyTheProductList(t *testing.T) {
	if got := mediatype.Whitelist(); !slices.Equal(got, wantWhitelist) {
		t.Fatalf("Whitelist() = %q\nwant %q", got, wantWhitelist)
	}
	// The caller gets a copy: changing it must not open the whitelist.
	w := mediatype.Whitelist()
	w[0] = "text/html"
	if _, ok := mediatype.Lookup("text/html"); ok {
		t.Fatal("editing the slice Whitelist returned changed the whitelist")
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		declared string
		want     string // the canonical MIME, or "" when not accepted
		kind     mediatype.Kind
	}{
		{"image/jpeg", "image/jpeg", mediatype.KindImage},
		{"IMAGE/JPEG", "image/jpeg", mediatype.KindImage},
		{"  image/png  ", "image/png", mediatype.KindImage},
		{"image/webp", "image/webp", mediatype.KindSticker},
		{"video/mp4", "video/mp4", mediatype.KindVideo},
		{"video/3gpp", "video/3gpp", mediatype.KindVideo},
		{"audio/aac", "audio/aac", mediatype.KindAudio},
		{"audio/mp4", "audio/mp4", mediatype.KindAudio},
		{"audio/mpeg", "audio/mpeg", mediatype.KindAudio},
		{"audio/amr", "audio/amr", mediatype.KindAudio},
		{"audio/ogg", "audio/ogg", mediatype.KindAudio},
		{"audio/ogg; codecs=opus", "audio/ogg", mediatype.KindAudio},
		{"application/pdf", "application/pdf", mediatype.KindDocument},
		{"text/plain", "text/plain", mediatype.KindDocument},
		{"text/plain; charset=utf-8", "text/plain", mediatype.KindDocument},
		{"Text/Plain;Charset=UTF-8", "text/plain", mediatype.KindDocument},
		{mediatype.DOCX, mediatype.DOCX, mediatype.KindDocument},
		{mediatype.XLSX, mediatype.XLSX, mediatype.KindDocument},
		{mediatype.PPTX, mediatype.PPTX, mediatype.KindDocument},
		{"application/vnd.ms-excel", mediatype.XLS, mediatype.KindDocument},
		// A broken parameter does not hide a whitelisted type.
		{"image/jpeg; name", "image/jpeg", mediatype.KindImage},
		{"text/plain; charset=", "text/plain", mediatype.KindDocument},

		{"", "", ""},
		{"application/octet-stream", "", ""},
		{"image/gif", "", ""},
		{"image/svg+xml", "", ""},
		{"text/html", "", ""},
		{"application/xhtml+xml", "", ""},
		{"application/msword", "", ""},
		{"application/vnd.ms-powerpoint", "", ""},
		{"application/zip", "", ""},
		{"application/x-zip-compressed", "", ""},
		{"audio/wav", "", ""},
		{"video/webm", "", ""},
		{"image/jpg", "", ""},
		{"audio/mp3", "", ""},
		{"audio/opus", "", ""},
		{"image/*", "", ""},
		{"image", "", ""},
		{"image/jpeg, image/png", "", ""},
		{"image/jpegx", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.declared, func(t *testing.T) {
			got, ok := mediatype.Lookup(tt.declared)
			if ok != (tt.want != "") {
				t.Fatalf("Lookup(%q) ok = %v, want %v", tt.declared, ok, tt.want != "")
			}
			if got.MIME != tt.want || got.Kind != tt.kind {
				t.Fatalf("Lookup(%q) = {%q %q}, want {%q %q}", tt.declared, got.MIME, got.Kind, tt.want, tt.kind)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"image/jpeg", "image/jpeg"},
		{"IMAGE/JPEG", "image/jpeg"},
		{" image/jpeg ", "image/jpeg"},
		{"text/plain; charset=utf-8", "text/plain"},
		{"text/plain;charset=\"UTF-8\"; format=flowed", "text/plain"},
		{"image/jpeg; name", "image/jpeg"},
		{"", ""},
		{"   ", ""},
		{"Not A Type", "not a type"},
		{"image/", "image/"},
	}
	for _, tt := range tests {
		if got := mediatype.Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSpecific(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"  ", false},
		{"application/octet-stream", false},
		{"Application/Octet-Stream; charset=binary", false},
		{"image/jpeg", true},
		{"image/gif", true}, // specific, just not accepted
		{"nonsense", true},
		{"image", false}, // a message kind, not a MIME type
		{"Document", false},
	}
	for _, tt := range tests {
		if got := mediatype.Specific(tt.in); got != tt.want {
			t.Errorf("Specific(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"image/jpg", "image/jpeg"},
		{"IMAGE/JPG", "image/jpeg"},
		{"image/pjpeg", "image/jpeg"},
		{"audio/mp3", "audio/mpeg"},
		{"audio/x-mpeg", "audio/mpeg"},
		{"audio/mpeg3", "audio/mpeg"},
		{"audio/x-m4a", "audio/mp4"},
		{"audio/m4a", "audio/mp4"},
		{"video/3gp", "video/3gpp"},
		{"audio/opus", "audio/ogg"},
		{"application/x-pdf", "application/pdf"},
		{"image/gif", ""},
		{"image/jpeg", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := mediatype.Suggest(tt.in)
		if got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != "" {
			if _, ok := mediatype.Lookup(got); !ok {
				t.Errorf("Suggest(%q) = %q, which is not whitelisted", tt.in, got)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		mime      string
		meta, max int64
	}{
		{"image/jpeg", 5 * mediatype.MiB, 5 * mediatype.MiB},
		{"image/png", 5 * mediatype.MiB, 5 * mediatype.MiB},
		{"image/webp", 500 * mediatype.KiB, 500 * mediatype.KiB},
		{"video/mp4", 16 * mediatype.MiB, 16 * mediatype.MiB},
		{"video/3gpp", 16 * mediatype.MiB, 16 * mediatype.MiB},
		{"audio/ogg", 16 * mediatype.MiB, 16 * mediatype.MiB},
		{"audio/amr", 16 * mediatype.MiB, 16 * mediatype.MiB},
		{"application/pdf", 100 * mediatype.MiB, 16 * mediatype.MiB},
		{"text/plain", 100 * mediatype.MiB, 16 * mediatype.MiB},
		{mediatype.XLS, 100 * mediatype.MiB, 16 * mediatype.MiB},
	}
	if mediatype.MaxUploadSize != 16777216 {
		t.Fatalf("MaxUploadSize = %d, want 16777216 (16 MiB)", mediatype.MaxUploadSize)
	}
	for _, tt := range tests {
		typ := lookup(t, tt.mime)
		if got := typ.MetaLimit(); got != tt.meta {
			t.Errorf("%s: MetaLimit() = %d, want %d", tt.mime, got, tt.meta)
		}
		if got := typ.MaxSize(); got != tt.max {
			t.Errorf("%s: MaxSize() = %d, want %d", tt.mime, got, tt.max)
		}
	}
}

func TestUnsupportedMessage(t *testing.T) {
	tests := []struct {
		declared string
		want     []string
	}{
		{"image/gif", []string{`"image/gif" is not accepted`, "accepted types: image/jpeg, image/png"}},
		{"image/jpg", []string{`did you mean "image/jpeg"?`}},
		{"", []string{"missing or generic (none)", "`type` field"}},
		{"application/octet-stream", []string{"missing or generic (application/octet-stream)"}},
		{"TEXT/HTML; charset=utf-8", []string{`"text/html" is not accepted`}},
	}
	for _, tt := range tests {
		t.Run(tt.declared, func(t *testing.T) {
			err := mediatype.Unsupported(tt.declared)
			if err.Reason != mediatype.ReasonUnsupported {
				t.Errorf("Reason = %q, want %q", err.Reason, mediatype.ReasonUnsupported)
			}
			if err.Declared != mediatype.Normalize(tt.declared) {
				t.Errorf("Declared = %q, want %q", err.Declared, mediatype.Normalize(tt.declared))
			}
			for _, w := range append(tt.want, strings.Join(wantWhitelist, ", ")) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err.Error(), w)
				}
			}
		})
	}
}

func TestTooLargeMessages(t *testing.T) {
	tests := []struct {
		mime  string
		limit int64
		want  []string
	}{
		{"image/jpeg", 5 * mediatype.MiB, []string{"Meta's image limit", "5242880 bytes (5 MiB)"}},
		{"image/webp", 500 * mediatype.KiB, []string{"Meta's sticker limit", "512000 bytes (500 KiB)"}},
		{"video/mp4", 16 * mediatype.MiB, []string{"SigFollow's upload cap", "16777216 bytes (16 MiB)"}},
		{"application/pdf", 16 * mediatype.MiB, []string{"SigFollow's upload cap", "16777216 bytes (16 MiB)"}},
	}
	for _, tt := range tests {
		t.Run(tt.mime, func(t *testing.T) {
			err := lookup(t, tt.mime).TooLarge(tt.limit + 1)
			if err.Reason != mediatype.ReasonTooLarge || err.Limit != tt.limit || err.Size != tt.limit+1 || err.Declared != tt.mime {
				t.Errorf("TooLarge = %+v, want reason %q, limit %d, size %d, declared %q", err, mediatype.ReasonTooLarge, tt.limit, tt.limit+1, tt.mime)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err.Error(), w)
				}
			}
		})
	}
	err := mediatype.TooLargeForUpload()
	if err.Reason != mediatype.ReasonTooLarge || err.Limit != mediatype.MaxUploadSize || !strings.Contains(err.Error(), "16777216 bytes (16 MiB)") {
		t.Errorf("TooLargeForUpload() = %+v (%q)", err, err.Error())
	}
}

func lookup(tb testing.TB, mime string) mediatype.Type {
	tb.Helper()
	typ, ok := mediatype.Lookup(mime)
	if !ok {
		tb.Fatalf("%s is not whitelisted", mime)
	}
	return typ
}
