package upload_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/sigfollow/media/ingest/upload"
	"github.com/sigfollow/media/shared/mediatype"
)

// FuzzReceive feeds arbitrary bodies to Receive: whatever arrives, it must
// return either an upload whose bytes are what it reports, or a client error
// (*upload.Error or *mediatype.Error), and never leave a spool file open.
// Seeds: well-formed uploads here, hostile bodies in testdata/fuzz/FuzzReceive.
func FuzzReceive(f *testing.F) {
	jpeg, txt := fixture(f, "accept/image.jpg"), fixture(f, "accept/document.txt")
	f.Add(formBytes(f, whatsapp, file("a.jpg", "image/jpeg", jpeg)))
	f.Add(formBytes(f, field("type", "text/plain"), file("a.txt", "", txt), whatsapp, field("callback_url", "https://example.test/")))
	f.Add(formBytes(f, whatsapp, file("a.txt", "text/plain", txt), file("b.txt", "text/plain", txt)))
	f.Add(formBytes(f, whatsapp, field("type", "image/png"), file("a.jpg", "image/jpeg", jpeg)))

	dir := f.TempDir()
	rc := upload.NewReceiver(dir, 1024) // small, so that files spill
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := rc.Receive(httptest.NewRecorder(), newRequest("", bytes.NewReader(body)))
		if err != nil {
			var ue *upload.Error
			var me *mediatype.Error
			if u != nil || !errors.As(err, &ue) && !errors.As(err, &me) {
				t.Fatalf("Receive = %v, %T %v; want a nil upload and a client error", u, err, err)
			}
		} else {
			got, rerr := io.ReadAll(u.Body())
			sum := sha256.Sum256(got)
			if rerr != nil || int64(len(got)) != u.Size || hex.EncodeToString(sum[:]) != u.SHA256 || u.Size > u.Type.MaxSize() {
				t.Fatalf("upload reports %d bytes, sha256 %s; its body has %d (%v)", u.Size, u.SHA256, len(got), rerr)
			}
			if err := u.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if n := spooled(t, dir); n != 0 {
			t.Fatalf("%d spool files left open", n)
		}
	})
}
