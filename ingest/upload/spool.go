package upload

import (
	"io"
	"os"
	"sync"
)

// spool holds a file being received: in memory up to the pool's buffer size,
// then in an unlinked temporary file.
type spool struct {
	pool *sync.Pool
	buf  *[]byte
	f    *os.File
	dir  string
	size int64
}

func newSpool(pool *sync.Pool, dir string) *spool {
	return &spool{pool: pool, buf: pool.Get().(*[]byte), dir: dir}
}

// Write appends p.
func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil {
		b := *s.buf
		if len(b)+len(p) <= cap(b) {
			*s.buf = append(b, p...)
			s.size += int64(len(p))
			return len(p), nil
		}
		if err := s.spill(); err != nil {
			return 0, err
		}
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	return n, err
}

// spill moves the buffered bytes to a temporary file that is unlinked at
// once: it lives only as long as the open descriptor.
func (s *spool) spill() error {
	f, err := os.CreateTemp(s.dir, "sigfollow-upload-*")
	if err != nil {
		return err
	}
	_ = os.Remove(f.Name())
	if _, err := f.Write(*s.buf); err != nil {
		f.Close()
		return err
	}
	s.f = f
	s.release()
	return nil
}

// ReadAt reads from the spooled bytes; after Close it fails with
// os.ErrClosed.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	if s.buf == nil {
		return 0, os.ErrClosed
	}
	b := *s.buf
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// InMemory reports whether the file never left the buffer.
func (s *spool) InMemory() bool { return s.f == nil }

func (s *spool) release() {
	if s.buf != nil {
		*s.buf = (*s.buf)[:0]
		s.pool.Put(s.buf)
		s.buf = nil
	}
}

// Close frees the buffer or the file.
func (s *spool) Close() error {
	s.release()
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}
