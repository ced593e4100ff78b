// Package graph is the worker's client for the media endpoint of Meta's
// Graph API (WhatsApp Cloud API). It is the "Meta" step of the flow
// request → auth → validate → stage → publish → worker → Meta → result:
// the worker hands it a staged file as a stream and gets Meta's media id
// back.
//
// Upload sends POST /{version}/{phone-number-id}/media as multipart/form-data
// with an exact Content-Length: the form's framing is built in memory, the
// file's bytes flow straight from the reader to the connection, and nothing
// holds the whole file.
//
// Every failure comes back as an *Error, classified once into a Kind: Meta
// rejected the upload, Meta refused the credentials, Meta or the network
// failed transiently, or Meta is throttling. Callers act on the Kind, never on
// messages. The access token travels only in the Authorization header; it is
// never part of an error or a log line.
package graph
