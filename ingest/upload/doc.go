// Package upload is the "validate" step of ingest: it reads a multipart
// upload as a stream, in one pass that sniffs the first bytes, hashes,
// counts against the size limit and spools the file, and then judges the
// result against the media rules (package mediatype).
//
// Nothing here holds a whole file in memory: the spool keeps a small file
// in a pooled buffer and moves a larger one to an unlinked temporary file, so
// a crash leaves nothing behind on disk. The spool gives the object store the
// exact length it needs for a single streamed PUT, and lets every check run
// before anything is staged, so a rejected upload leaves nothing in the store.
package upload
