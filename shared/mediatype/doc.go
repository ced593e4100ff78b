// Package mediatype holds the media rules of the "validate" step: the MIME
// whitelist (exactly the types Meta's Cloud API accepts on /media), each
// type's size limit, and the magic-byte checks that decide whether a file's
// content is what its declared type claims.
//
// Ingest applies these rules before anything is staged; the fake Graph API
// applies Meta's limits from the same table.
//
// Detection uses github.com/gabriel-vasile/mimetype on the first bytes of the
// file, plus deeper checks on the whole file where the first bytes cannot
// decide: OOXML documents are zip archives whose tell-tale entries may sit
// anywhere in the archive, legacy .xls files are OLE2 compound files whose
// directory is often far from the start, Ogg audio must carry Opus, and
// text/plain must be text throughout and not markup.
package mediatype
