// Package testenv gives tests the pipeline's real dependencies: an embedded
// JetStream server, a real MinIO server process, and the fake Graph API on
// an httptest server, each torn down when the test ends. It is imported by
// tests only.
package testenv
