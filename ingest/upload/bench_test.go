package upload_test

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/sigfollow/media/ingest/upload"
)

// BenchmarkReceive measures one upload of a PDF of each size, received with
// the spool settings ingest uses by default (1 MiB in memory): the smaller
// files stay in a pooled buffer, the 16 MiB one goes through a file.
func BenchmarkReceive(b *testing.B) {
	pdf := fixture(b, "accept/document.pdf")
	for _, size := range []int64{100_000, 1 << 20, 16 << 20} {
		body := new(bytes.Buffer)
		if err := writeForm(body, whatsapp, sizedFile("bench.pdf", "application/pdf", pdf, size)); err != nil {
			b.Fatal(err)
		}
		form := body.Bytes()
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			rc := upload.NewReceiver(b.TempDir(), 1<<20)
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				u, err := rc.Receive(httptest.NewRecorder(), newRequest("", bytes.NewReader(form)))
				if err != nil {
					b.Fatal(err)
				}
				_ = u.Close()
			}
		})
	}
}
