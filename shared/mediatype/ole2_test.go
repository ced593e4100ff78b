package mediatype_test

import (
	"encoding/binary"
	"unicode/utf16"
)

// OLE2 (Compound File Binary, version 3) constants.
const (
	oleSector     = 512
	oleEntries    = oleSector / 4 // FAT entries per sector
	oleDirEntry   = 128
	oleHeaderDIF  = 109 // DIFAT slots in the header
	oleEndOfChain = 0xFFFFFFFE
	oleFree       = 0xFFFFFFFF
	oleFATSect    = 0xFFFFFFFD
	oleDIFSect    = 0xFFFFFFFC
	oleNoStream   = 0xFFFFFFFF
)

// oleEntry is one directory entry of a compound file built by buildOLE2.
type oleEntry struct {
	name     string
	data     []byte     // a stream's content; at least 4096 bytes, so it lives in regular sectors
	children []oleEntry // a storage's entries; a storage has no data
}

// buildOLE2 writes a compound file whose root storage holds entries, laid
// out the way LibreOffice and Excel write large files: the stream data first,
// then the directory, then the FAT, with DIFAT sectors once the FAT needs more
// than the header's 109 slots. Siblings are chained through their right
// pointers, which every reader accepts.
func buildOLE2(entries ...oleEntry) []byte {
	type flat struct {
		e            oleEntry
		typ          byte
		child, right uint32
		start        uint32
	}
	dir := []flat{{e: oleEntry{name: "Root Entry"}, typ: 5, child: oleNoStream, right: oleNoStream, start: oleEndOfChain}}
	var add func(parent int, es []oleEntry)
	add = func(parent int, es []oleEntry) {
		prev := -1
		for _, e := range es {
			i := len(dir)
			typ := byte(2)
			if e.children != nil {
				typ = 1
			}
			dir = append(dir, flat{e: e, typ: typ, child: oleNoStream, right: oleNoStream, start: oleEndOfChain})
			if prev < 0 {
				dir[parent].child = uint32(i)
			} else {
				dir[prev].right = uint32(i)
			}
			prev = i
			add(i, e.children)
		}
	}
	add(0, entries)

	sectors := func(n int) int { return (n + oleSector - 1) / oleSector }
	var data int
	for i := range dir {
		if dir[i].typ == 2 {
			dir[i].start = uint32(data)
			data += sectors(len(dir[i].e.data))
		}
	}
	dirSectors := sectors(len(dir) * oleDirEntry)
	var fat, dif int
	for {
		total := data + dirSectors + fat + dif
		needFAT := (total + oleEntries - 1) / oleEntries
		needDIF := 0
		if needFAT > oleHeaderDIF {
			needDIF = (needFAT - oleHeaderDIF + oleEntries - 2) / (oleEntries - 1)
		}
		if needFAT == fat && needDIF == dif {
			break
		}
		fat, dif = needFAT, needDIF
	}
	dirStart, fatStart, difStart := data, data+dirSectors, data+dirSectors+fat

	out := make([]byte, oleSector*(1+difStart+dif))
	sector := func(n int) []byte { return out[oleSector*(n+1) : oleSector*(n+2)] }
	put := func(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

	// Header.
	h := out[:oleSector]
	copy(h, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1})
	binary.LittleEndian.PutUint16(h[24:], 0x003E)
	binary.LittleEndian.PutUint16(h[26:], 3)
	binary.LittleEndian.PutUint16(h[28:], 0xFFFE)
	binary.LittleEndian.PutUint16(h[30:], 9)
	binary.LittleEndian.PutUint16(h[32:], 6)
	put(h[44:], uint32(fat))
	put(h[48:], uint32(dirStart))
	put(h[56:], 4096)
	put(h[60:], oleEndOfChain)
	put(h[68:], oleEndOfChain)
	if dif > 0 {
		put(h[68:], uint32(difStart))
	}
	put(h[72:], uint32(dif))
	for i := range oleHeaderDIF {
		v := uint32(oleFree)
		if i < fat {
			v = uint32(fatStart + i)
		}
		put(h[76+4*i:], v)
	}

	// Stream data and the FAT chains.
	fatEntry := func(n int) []byte { return sector(fatStart + n/oleEntries)[4*(n%oleEntries):] }
	for n := range fat * oleEntries {
		put(fatEntry(n), oleFree)
	}
	chain := func(start, count int) {
		for n := start; n < start+count; n++ {
			next := uint32(n + 1)
			if n == start+count-1 {
				next = oleEndOfChain
			}
			put(fatEntry(n), next)
		}
	}
	for _, d := range dir {
		if d.typ == 2 {
			copy(out[oleSector*(int(d.start)+1):], d.e.data)
			chain(int(d.start), sectors(len(d.e.data)))
		}
	}
	chain(dirStart, dirSectors)
	for n := range fat {
		put(fatEntry(fatStart+n), oleFATSect)
	}
	for n := range dif {
		put(fatEntry(difStart+n), oleDIFSect)
	}

	// DIFAT sectors: 127 FAT sector numbers each, then the next DIFAT sector.
	for n := range dif {
		s := sector(difStart + n)
		for i := range oleEntries - 1 {
			v := uint32(oleFree)
			if f := oleHeaderDIF + n*(oleEntries-1) + i; f < fat {
				v = uint32(fatStart + f)
			}
			put(s[4*i:], v)
		}
		next := uint32(oleEndOfChain)
		if n < dif-1 {
			next = uint32(difStart + n + 1)
		}
		put(s[oleSector-4:], next)
	}

	// Directory.
	dirBytes := out[oleSector*(dirStart+1) : oleSector*(dirStart+1+dirSectors)]
	for i := len(dir); i < dirSectors*oleSector/oleDirEntry; i++ {
		e := dirBytes[i*oleDirEntry:]
		put(e[68:], oleNoStream)
		put(e[72:], oleNoStream)
		put(e[76:], oleNoStream)
	}
	for i, d := range dir {
		e := dirBytes[i*oleDirEntry:]
		name := utf16.Encode([]rune(d.e.name))
		for j, c := range name {
			binary.LittleEndian.PutUint16(e[2*j:], c)
		}
		binary.LittleEndian.PutUint16(e[64:], uint16(2*len(name)+2))
		e[66], e[67] = d.typ, 1 // black
		put(e[68:], oleNoStream)
		put(e[72:], d.right)
		put(e[76:], d.child)
		put(e[116:], d.start)
		if d.typ == 2 {
			put(e[120:], uint32(len(d.e.data)))
		}
	}
	return out
}

// biffWorkbook returns a Workbook stream of n bytes: a BIFF8 BOF record for a
// workbook globals substream, then filler.
func biffWorkbook(n int) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x09, 0x08, 0x10, 0x00, 0x00, 0x06, 0x05, 0x00, 0xBB, 0x0D, 0xCC, 0x07, 0x00, 0x00, 0x00, 0x00, 0x06, 0x03, 0x00, 0x00})
	for i := 20; i < n; i++ {
		b[i] = byte(i % 251)
	}
	return b
}
