package apikey_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/apikey"
)

func TestEveryKeyGetsItsOwnWebhookSecret(t *testing.T) {
	_, a, err := apikey.Generate("a", apikey.ModeLive, []string{apikey.ScopeMessagesSend}, []string{"1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := apikey.Generate("b", apikey.ModeLive, []string{apikey.ScopeMessagesSend}, []string{"1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*apikey.Key{a, b} {
		if !apikey.ValidWebhookSecret(k.WebhookSecret) {
			t.Errorf("key %s has webhook secret %q, want whsec_ and base64 of 24+ bytes", k.ID, k.WebhookSecret)
		}
	}
	if a.WebhookSecret == b.WebhookSecret {
		t.Error("two keys share a webhook secret")
	}
}

func TestValidWebhookSecret(t *testing.T) {
	cases := []struct {
		secret string
		ok     bool
	}{
		{"whsec_" + strings.Repeat("A", 32), true}, // 24 bytes
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"whsec_" + strings.Repeat("A", 28), false}, // 21 bytes
		{strings.Repeat("A", 32), false},            // no prefix
		{"whsec_not*base64*at*all*not*base64*", false},
		{"", false},
	}
	for _, tc := range cases {
		t.Run(tc.secret, func(t *testing.T) {
			if got := apikey.ValidWebhookSecret(tc.secret); got != tc.ok {
				t.Errorf("ValidWebhookSecret(%q) = %v, want %v", tc.secret, got, tc.ok)
			}
		})
	}
}
