package job

import (
	"strings"
	"time"
)

// CacheEntry is a media id Meta returned for some bytes, kept so the same
// bytes uploaded again for the same number get it without a second upload.
type CacheEntry struct {
	MediaID   string    `json:"id"`
	JobID     string    `json:"job_id"`
	CreatedAt time.Time `json:"created_at"`
}

// CacheKey is the media-id cache key of a file: the phone number id, the
// type and the file's sha256. Characters a key-value key cannot hold become
// "_".
func CacheKey(phoneNumberID, mimeType, sha256 string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '/', r == '=':
			return r
		}
		return '_'
	}, mimeType)
	return phoneNumberID + "." + safe + "." + sha256
}
