package mediatype_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigfollow/media/shared/mediatype"
)

// FuzzCheck feeds arbitrary bytes to every type's Check: the container
// parsers behind it read attacker-supplied structures, and whatever they
// meet, Check must answer nil or a *mediatype.Error, never panic or hang.
// The seeds are the fixtures under 64 KiB plus the committed corpus in
// testdata/fuzz/FuzzCheck (broken zips, OLE2 files and Ogg pages).
func FuzzCheck(f *testing.F) {
	for _, dir := range []string{"accept", "reject"} {
		files, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if info, err := file.Info(); err == nil && info.Size() <= 64*mediatype.KiB {
				f.Add(fixture(f, dir+"/"+file.Name()))
			}
		}
	}
	f.Add(buildOLE2(oleEntry{name: "Workbook", data: biffWorkbook(4096)}))

	reasons := map[mediatype.Reason]bool{
		mediatype.ReasonUnsupported: true, mediatype.ReasonMismatch: true, mediatype.ReasonEmpty: true,
		mediatype.ReasonTooLarge: true, mediatype.ReasonCodec: true,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mime := range mediatype.Whitelist() {
			typ, _ := mediatype.Lookup(mime)
			err := typ.Check(contentOf(data))
			if err == nil {
				if len(data) == 0 {
					t.Fatalf("%s: an empty file was accepted", mime)
				}
				continue
			}
			var e *mediatype.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: Check returned %T (%v), want *mediatype.Error", mime, err, err)
			}
			if !reasons[e.Reason] || e.Error() == "" {
				t.Fatalf("%s: Check returned reason %q, message %q", mime, e.Reason, e.Error())
			}
		}
	})
}
