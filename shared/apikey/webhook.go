package apikey

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// WebhookSecretPrefix starts every webhook signing secret, as in the
// Standard Webhooks specification.
const WebhookSecretPrefix = "whsec_"

// webhookSecretBytes is the length of a webhook secret's random part.
const webhookSecretBytes = 32

// NewWebhookSecret returns a new webhook signing secret: "whsec_" and the
// standard base64 of 32 random bytes.
func NewWebhookSecret() (string, error) {
	b := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("apikey: random: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ValidWebhookSecret reports whether s is "whsec_" and the standard base64
// of at least 24 bytes.
func ValidWebhookSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, WebhookSecretPrefix)
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	return err == nil && len(b) >= 24
}
