package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ScopeMessagesSend is the scope the media route requires.
const ScopeMessagesSend = "messages:send"

// AnyPhoneNumber in a key's PhoneNumberIDs allows every phone number id.
const AnyPhoneNumber = "*"

// Modes a key can be issued in; the mode is part of the key's text.
const (
	ModeLive = "live"
	ModeTest = "test"
)

const (
	prefix    = "sflo"
	idLen     = 12
	secretLen = 32
	alphabet  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Key is a stored API key record. It never holds the plaintext key.
type Key struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Mode           string     `json:"mode"`
	Hash           string     `json:"hash"` // hex SHA-256 of the full key text
	Scopes         []string   `json:"scopes"`
	PhoneNumberIDs []string   `json:"phone_number_ids"`
	CreatedAt      time.Time  `json:"created_at"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	// WebhookSecret ("whsec_…") signs this key's webhooks. Unlike the key,
	// it is stored as is: the webhook dispatcher needs it to sign. Never
	// log it.
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// RequireSignature makes POST /media demand an X-SigFollow-Signature
	// made with SigningSecret.
	RequireSignature bool `json:"require_signature,omitempty"`
	// SigningSecret ("sfsig_…") is the HMAC-SHA256 key of this key's request
	// signatures. Like WebhookSecret it is stored as is (the server needs it
	// to verify), shown once at creation, and never logged.
	SigningSecret string `json:"signing_secret,omitempty"`
	// RateLimitPerMinute and RateLimitBurst, when positive, replace the
	// server's default rate limit for this key.
	RateLimitPerMinute int `json:"rate_limit_per_minute,omitempty"`
	RateLimitBurst     int `json:"rate_limit_burst,omitempty"`
}

// NewSigningSecret returns a random request-signing secret.
func NewSigningSecret() (string, error) {
	s, err := randomString(secretLen)
	if err != nil {
		return "", err
	}
	return "sfsig_" + s, nil
}

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return k.RevokedAt != nil }

// HasScope reports whether the key carries scope.
func (k *Key) HasScope(scope string) bool { return slices.Contains(k.Scopes, scope) }

// AllowsPhoneNumber reports whether the key may act for phoneNumberID.
func (k *Key) AllowsPhoneNumber(phoneNumberID string) bool {
	return slices.Contains(k.PhoneNumberIDs, AnyPhoneNumber) || slices.Contains(k.PhoneNumberIDs, phoneNumberID)
}

// Matches reports, in constant time, whether plaintext is this key.
func (k *Key) Matches(plaintext string) bool {
	want, err := hex.DecodeString(k.Hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(plaintext))
	return subtle.ConstantTimeCompare(want, got[:]) == 1
}

// Hash returns the hex SHA-256 of a key's text, as stored.
func Hash(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// Generate makes a new key: its plaintext (to show once) and its record.
func Generate(name, mode string, scopes, phoneNumberIDs []string, now time.Time) (string, *Key, error) {
	if mode != ModeLive && mode != ModeTest {
		return "", nil, fmt.Errorf("apikey: mode %q must be %q or %q", mode, ModeLive, ModeTest)
	}
	if len(phoneNumberIDs) == 0 {
		return "", nil, errors.New("apikey: a key needs at least one phone number id (or \"*\")")
	}
	id, err := randomString(idLen)
	if err != nil {
		return "", nil, err
	}
	secret, err := randomString(secretLen)
	if err != nil {
		return "", nil, err
	}
	whsec, err := NewWebhookSecret()
	if err != nil {
		return "", nil, err
	}
	plaintext := strings.Join([]string{prefix, mode, id, secret}, "_")
	return plaintext, &Key{
		ID: id, Name: name, Mode: mode, Hash: Hash(plaintext),
		Scopes: slices.Clone(scopes), PhoneNumberIDs: slices.Clone(phoneNumberIDs),
		CreatedAt: now.UTC(), WebhookSecret: whsec,
	}, nil
}

// ParseID extracts the key id from a key's text, or reports that the text
// is not shaped like a SigFollow key.
func ParseID(plaintext string) (string, bool) {
	parts := strings.Split(plaintext, "_")
	if len(parts) != 4 || parts[0] != prefix || (parts[1] != ModeLive && parts[1] != ModeTest) ||
		len(parts[2]) != idLen || len(parts[3]) != secretLen || !inAlphabet(parts[2]) || !inAlphabet(parts[3]) {
		return "", false
	}
	return parts[2], true
}

// Display returns the non-secret part of a key's text, for listings.
func (k *Key) Display() string { return prefix + "_" + k.Mode + "_" + k.ID + "_…" }

func inAlphabet(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// randomString returns n characters from alphabet, drawn uniformly.
func randomString(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("apikey: random: %w", err)
		}
		for _, b := range buf {
			// 62*4 = 248: reject bytes >= 248 so every character is equally likely.
			if b < 248 && len(out) < n {
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out), nil
}
