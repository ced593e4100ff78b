package upload

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestEndWatcherFindsTheCloseDelimiter checks the watcher against a plain
// bytes.Contains over the whole body, for boundaries shorter and longer
// than the probe, delimiters split across reads of every size, and near
// misses that share the probe but not the whole delimiter.
func TestEndWatcherFindsTheCloseDelimiter(t *testing.T) {
	filler := bytes.Repeat([]byte("binary\x00\n-data\r\n"), 40)
	for _, boundary := range []string{"b", strings.Repeat("x", probeLen-4), strings.Repeat("y", probeLen), strings.Repeat("z", 70)} {
		delim := "\n--" + boundary + "--"
		nearMiss := delim[:len(delim)-1] + "!" // the probe, not the delimiter
		bodies := map[string]string{
			"no delimiter":           string(filler),
			"near miss only":         string(filler) + nearMiss + string(filler),
			"delimiter opens body":   delim[1:] + "\r\n",
			"delimiter in the body":  string(filler) + delim + "\r\nepilogue",
			"delimiter after a miss": string(filler) + nearMiss + delim,
			"delimiter ends body":    string(filler) + delim,
			"cut inside delimiter":   string(filler) + delim[:len(delim)-2],
		}
		for name, body := range bodies {
			want := strings.Contains("\n"+body, delim)
			for _, chunk := range []int{1, 3, probeLen - 1, probeLen + 5, 4096} {
				w := newEndWatcher(iotest.HalfReader(&chunked{r: strings.NewReader(body), n: chunk}), boundary)
				got, err := io.ReadAll(w)
				if err != nil || string(got) != body {
					t.Fatalf("boundary %d bytes, %s, reads of %d: passed %d bytes through, err %v", len(boundary), name, chunk, len(got), err)
				}
				if w.seen != want {
					t.Errorf("boundary %d bytes, %s, reads of %d: seen %v, want %v", len(boundary), name, chunk, w.seen, want)
				}
			}
		}
	}
}

// chunked returns at most n bytes per read.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }
