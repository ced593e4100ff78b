package apikey_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/apikey"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var keyShape = regexp.MustCompile(`^sflo_(live|test)_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})$`)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))

func generate(tb testing.TB, mode string) (string, *apikey.Key) {
	tb.Helper()
	plaintext, k, err := apikey.Generate("ci", mode, []string{apikey.ScopeMessagesSend}, []string{"106540352242922"}, now)
	if err != nil {
		tb.Fatal(err)
	}
	return plaintext, k
}

func TestGenerate(t *testing.T) {
	for _, mode := range []string{apikey.ModeLive, apikey.ModeTest} {
		t.Run(mode, func(t *testing.T) {
			scopes, phones := []string{apikey.ScopeMessagesSend}, []string{"1", "2"}
			plaintext, k, err := apikey.Generate("billing", mode, scopes, phones, now)
			if err != nil {
				t.Fatal(err)
			}
			m := keyShape.FindStringSubmatch(plaintext)
			if m == nil || m[1] != mode {
				t.Fatalf("key %q is not sflo_%s_<12>_<32>", plaintext, mode)
			}
			sum := sha256.Sum256([]byte(plaintext))
			if k.ID != m[2] || k.Name != "billing" || k.Mode != mode || k.Hash != hex.EncodeToString(sum[:]) || k.Hash != apikey.Hash(plaintext) {
				t.Errorf("record %+v does not describe %q", k, plaintext)
			}
			if !k.CreatedAt.Equal(now) || k.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %v, want %v in UTC", k.CreatedAt, now)
			}
			if k.Revoked() || !k.HasScope(apikey.ScopeMessagesSend) || k.HasScope("admin") {
				t.Errorf("record %+v: wrong revocation or scopes", k)
			}
			if !k.AllowsPhoneNumber("1") || !k.AllowsPhoneNumber("2") || k.AllowsPhoneNumber("3") || k.AllowsPhoneNumber(apikey.AnyPhoneNumber) {
				t.Errorf("phone numbers %v allow the wrong ids", k.PhoneNumberIDs)
			}
			// The record holds copies: the caller's slices stay the caller's.
			scopes[0], phones[0] = "admin", "3"
			if k.HasScope("admin") || k.AllowsPhoneNumber("3") {
				t.Error("the record shares its slices with the caller")
			}
			// Nothing of the secret is stored or displayed.
			b, _ := json.Marshal(k)
			if strings.Contains(string(b), m[3]) || strings.Contains(k.Display(), m[3]) {
				t.Errorf("the record or its display shows the secret: %s / %s", b, k.Display())
			}
			if want := "sflo_" + mode + "_" + k.ID + "_…"; k.Display() != want {
				t.Errorf("Display() = %q, want %q", k.Display(), want)
			}
		})
	}
}

func TestGenerateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		phones []string
		msg    string
	}{
		{"unknown mode", "prod", []string{"1"}, `mode "prod" must be "live" or "test"`},
		{"mode in capitals", "LIVE", []string{"1"}, "mode"},
		{"no phone number", apikey.ModeLive, nil, "at least one phone number id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plaintext, k, err := apikey.Generate("x", tt.mode, nil, tt.phones, now)
			if err == nil || plaintext != "" || k != nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Generate = %q, %v, %v; want an error with %q", plaintext, k, err, tt.msg)
			}
		})
	}
}

func TestAnyPhoneNumber(t *testing.T) {
	_, k, err := apikey.Generate("all", apikey.ModeTest, nil, []string{apikey.AnyPhoneNumber}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "106540352242922", ""} {
		if !k.AllowsPhoneNumber(id) {
			t.Errorf("a \"*\" key does not allow %q", id)
		}
	}
}

// TestGenerateRandomness: keys are unique, drawn only from the alphabet, and
// every character is about equally likely (a chi-square test that a modulo
// bias would fail by far, and a fair generator passes but once in 10^12).
func TestGenerateRandomness(t *testing.T) {
	const n = 2000
	counts := map[rune]int{}
	seen := map[string]bool{}
	for range n {
		plaintext, k := generate(t, apikey.ModeLive)
		if seen[k.ID] {
			t.Fatalf("key id %s generated twice", k.ID)
		}
		seen[k.ID] = true
		m := keyShape.FindStringSubmatch(plaintext)
		if m == nil {
			t.Fatalf("key %q has the wrong shape", plaintext)
		}
		for _, r := range m[2] + m[3] {
			counts[r]++
		}
	}
	total := n * (12 + 32)
	expected := float64(total) / float64(len(alphabet))
	var chi2 float64
	for _, r := range alphabet {
		d := float64(counts[r]) - expected
		chi2 += d * d / expected
	}
	if len(counts) != len(alphabet) || chi2 > 150 {
		t.Errorf("character counts are not uniform: %d distinct, chi-square %.1f (61 degrees of freedom)", len(counts), chi2)
	}
}

func TestParseID(t *testing.T) {
	plaintext, k := generate(t, apikey.ModeTest)
	id12, secret32 := strings.Repeat("a", 12), strings.Repeat("Z", 32)
	tests := []struct {
		in   string
		want string // "" when not a key
	}{
		{plaintext, k.ID},
		{"sflo_live_" + id12 + "_" + secret32, id12},
		{"sflo_test_0123456789AB_" + secret32, "0123456789AB"},
		{"", ""},
		{"Bearer " + plaintext, ""},
		{plaintext + " ", ""},
		{" " + plaintext, ""},
		{"sflo_prod_" + id12 + "_" + secret32, ""},
		{"SFLO_live_" + id12 + "_" + secret32, ""},
		{"sk_live_" + id12 + "_" + secret32, ""},
		{"sflo_live_" + id12[:11] + "_" + secret32, ""},
		{"sflo_live_" + id12 + "a_" + secret32, ""},
		{"sflo_live_" + id12 + "_" + secret32[:31], ""},
		{"sflo_live_" + id12 + "_" + secret32 + "Z", ""},
		{"sflo_live_" + id12 + "_" + secret32 + "_x", ""},
		{"sflo_live_" + id12, ""},
		{"sflo_live_aaaaaaaaaa-a_" + secret32, ""},
		{"sflo_live_" + id12 + "_" + strings.Repeat("é", 16), ""},
		{"sflo_live_" + id12 + "_" + strings.Repeat("+", 32), ""},
		{"sflo__live_" + id12 + "_" + secret32, ""},
	}
	for _, tt := range tests {
		got, ok := apikey.ParseID(tt.in)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("ParseID(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	plaintext, k := generate(t, apikey.ModeLive)
	other, _ := generate(t, apikey.ModeLive)
	tests := []struct {
		name string
		key  apikey.Key
		in   string
		want bool
	}{
		{"the key", *k, plaintext, true},
		{"another key", *k, other, false},
		{"same id, other secret", *k, plaintext[:len(plaintext)-1] + flip(plaintext[len(plaintext)-1]), false},
		{"the key with a newline", *k, plaintext + "\n", false},
		{"empty", *k, "", false},
		{"the hash itself", *k, k.Hash, false},
		{"a record with a broken hash", withHash(*k, "not hex"), plaintext, false},
		{"a record with a short hash", withHash(*k, k.Hash[:62]), plaintext, false},
		{"a record with an upper-case hash", withHash(*k, strings.ToUpper(k.Hash)), plaintext, true},
	}
	for _, tt := range tests {
		if got := tt.key.Matches(tt.in); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func withHash(k apikey.Key, h string) apikey.Key { k.Hash = h; return k }

// flip returns another alphabet character than c.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestKeyJSON(t *testing.T) {
	_, k := generate(t, apikey.ModeLive)
	revoked := now.Add(time.Hour).UTC()
	k.RevokedAt = &revoked
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var back apikey.Key
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID || back.Hash != k.Hash || !slices.Equal(back.Scopes, k.Scopes) || !back.CreatedAt.Equal(k.CreatedAt) ||
		back.RevokedAt == nil || !back.RevokedAt.Equal(revoked) || !back.Revoked() {
		t.Errorf("JSON round trip: %+v, want %+v", back, k)
	}
	for _, field := range []string{`"id"`, `"name"`, `"mode"`, `"hash"`, `"scopes"`, `"phone_number_ids"`, `"created_at"`, `"revoked_at"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("stored record %s lacks %s", b, field)
		}
	}
}
