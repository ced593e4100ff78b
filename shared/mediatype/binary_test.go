package mediatype

import (
	"bytes"
	"testing"
)

// TestIndexBinaryByteMatchesRunes checks that scanning bytes finds the same
// first binary character as decoding UTF-8 and testing each character,
// around every byte value and inside multi-byte and invalid sequences.
func TestIndexBinaryByteMatchesRunes(t *testing.T) {
	var inputs [][]byte
	for b := range 256 {
		inputs = append(inputs,
			[]byte{byte(b)},
			[]byte{'a', byte(b), 'z'},
			append([]byte("é€😀"), byte(b)),
			[]byte{0xE2, byte(b), 0x82},       // a multi-byte character cut by b
			[]byte{0xF0, 0x9F, byte(b)},       // a four-byte one cut short
			[]byte{byte(b), 0x80, 0x80, 0x09}, // a stray continuation, then a tab
		)
	}
	// Longer text, so that every byte value sits at every place in the
	// eight-byte words the scan tests at once, among text and line ends.
	for b := range 256 {
		for pos := range 20 {
			in := []byte("line one\nline two\r\n\tx")[:20]
			in[pos] = byte(b)
			inputs = append(inputs, in, append([]byte("é"), in...))
		}
	}
	for _, in := range inputs {
		if got, want := indexBinaryByte(in), bytes.IndexFunc(in, isBinaryRune); got != want {
			t.Errorf("indexBinaryByte(% x) = %d, decoding finds %d", in, got, want)
		}
	}
}
