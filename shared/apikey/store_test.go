package apikey_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sigfollow/media/shared/apikey"
	"github.com/sigfollow/media/shared/queue"
	"github.com/sigfollow/media/shared/testenv"
)

// newStore returns a store over the Keys bucket of a fresh embedded
// JetStream server, the bucket itself, and the client connection.
func newStore(tb testing.TB) (*apikey.Store, jetstream.KeyValue, *nats.Conn) {
	tb.Helper()
	nc, js := testenv.JetStream(tb, testenv.NATS(tb))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := queue.Declare(ctx, js, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return apikey.NewStore(topo.Keys), topo.Keys, nc
}

func ctxFor(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// createKey generates a key created at the given time and stores it.
func createKey(tb testing.TB, s *apikey.Store, name string, at time.Time) (string, *apikey.Key) {
	tb.Helper()
	plaintext, k, err := apikey.Generate(name, apikey.ModeLive, []string{apikey.ScopeMessagesSend}, []string{"106540352242922"}, at)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Create(ctxFor(tb), k); err != nil {
		tb.Fatal(err)
	}
	return plaintext, k
}

func TestStore(t *testing.T) {
	s, kv, _ := newStore(t)
	ctx := ctxFor(t)

	keys, err := s.List(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("List on an empty bucket = %v, %v", keys, err)
	}

	// Created out of order: List sorts by creation time.
	pB, b := createKey(t, s, "b", now.Add(2*time.Hour))
	pA, a := createKey(t, s, "a", now)
	pC, c := createKey(t, s, "c", now.Add(time.Hour))

	got, err := s.Get(ctx, a.ID)
	if err != nil || got.ID != a.ID || got.Name != "a" || got.Hash != a.Hash || !got.CreatedAt.Equal(a.CreatedAt) || got.Revoked() || !got.Matches(pA) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.Get(ctx, "nosuchkey123"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
	}
	if err := s.Create(ctx, a); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		t.Errorf("Create with a taken id: %v, want ErrKeyExists", err)
	}

	keys, err = s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "a,c,b" {
		t.Errorf("List order = %v, want oldest first: a,c,b", names)
	}

	t.Run("stored records never hold the plaintext", func(t *testing.T) {
		for plaintext, k := range map[string]*apikey.Key{pA: a, pB: b, pC: c} {
			e, err := kv.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			secret := plaintext[strings.LastIndex(plaintext, "_")+1:]
			if strings.Contains(string(e.Value()), secret) {
				t.Errorf("the record of %s holds the secret: %s", k.ID, e.Value())
			}
		}
	})

	t.Run("revoke", func(t *testing.T) {
		at := now.Add(24 * time.Hour)
		k, err := s.Revoke(ctx, b.ID, at)
		if err != nil || !k.Revoked() || !k.RevokedAt.Equal(at) {
			t.Fatalf("Revoke = %+v, %v", k, err)
		}
		stored, _ := s.Get(ctx, b.ID)
		if !stored.Revoked() || !stored.RevokedAt.Equal(at) || stored.Hash != b.Hash {
			t.Fatalf("after Revoke, Get = %+v", stored)
		}
		// Revoking again is not an error and keeps the first time.
		k, err = s.Revoke(ctx, b.ID, at.Add(time.Hour))
		if err != nil || !k.RevokedAt.Equal(at) {
			t.Fatalf("second Revoke = %+v, %v; want the first revocation time", k, err)
		}
		if _, err := s.Revoke(ctx, "nosuchkey123", at); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Revoke of an unknown id: %v, want ErrNotFound", err)
		}
	})

	t.Run("deleted entries are not found and not listed", func(t *testing.T) {
		if err := kv.Delete(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, c.ID); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Get of a deleted entry: %v", err)
		}
		keys, err := s.List(ctx)
		if err != nil || len(keys) != 2 {
			t.Errorf("List = %d keys, %v; want the 2 left", len(keys), err)
		}
	})

	t.Run("a corrupt record is an error, not a key", func(t *testing.T) {
		if _, err := kv.Put(ctx, "corrupt00000", []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "corrupt00000"); err == nil || errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Get of a corrupt record: %v", err)
		}
		if _, err := s.List(ctx); err == nil {
			t.Error("List with a corrupt record succeeded")
		}
		_ = kv.Purge(ctx, "corrupt00000")
	})
}

// TestRevokeConcurrently: revocations racing on one key all succeed, and the
// stored record is one of them, whole.
func TestRevokeConcurrently(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	_, k := createKey(t, s, "raced", now)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := s.Revoke(ctx, k.ID, now.Add(time.Duration(i+1)*time.Minute))
			if err == nil && !r.Revoked() {
				err = errors.New("Revoke returned a live key")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	stored, err := s.Get(ctx, k.ID)
	if err != nil || !stored.Revoked() || stored.Hash != k.Hash || stored.Name != "raced" {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	if d := stored.RevokedAt.Sub(now); d < time.Minute || d > n*time.Minute {
		t.Errorf("RevokedAt = %v, not one of the revocations", stored.RevokedAt)
	}
}

func TestAuthenticator(t *testing.T) {
	s, _, nc := newStore(t)
	ctx := ctxFor(t)
	live, k := createKey(t, s, "live", now)
	revoked, r := createKey(t, s, "revoked", now)
	if _, err := s.Revoke(ctx, r.ID, now); err != nil {
		t.Fatal(err)
	}
	unknown, _ := generate(t, apikey.ModeLive)
	const dev = "sigfollow-dev-key"
	auth := apikey.NewAuthenticator(s, dev)

	tests := []struct {
		name    string
		key     string
		wantID  string
		wantErr error
	}{
		{"live key", live, k.ID, nil},
		{"missing", "", "", apikey.ErrMissing},
		{"unknown", unknown, "", apikey.ErrInvalid},
		{"malformed", "not-a-key", "", apikey.ErrInvalid},
		{"bearer prefix left on", "Bearer " + live, "", apikey.ErrInvalid},
		{"revoked", revoked, "", apikey.ErrInvalid},
		{"right id, wrong secret", live[:len(live)-1] + flip(live[len(live)-1]), "", apikey.ErrInvalid},
		{"test-mode spelling of a live key", strings.Replace(live, "_live_", "_test_", 1), "", apikey.ErrInvalid},
		{"dev key", dev, "dev", nil},
		{"dev key with a suffix", dev + "x", "", apikey.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.Authenticate(ctx, tt.key)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (got != nil) {
				t.Fatalf("Authenticate = %+v, %v; want error %v", got, err, tt.wantErr)
			}
			if got != nil && got.ID != tt.wantID {
				t.Fatalf("Authenticate = key %s, want %s", got.ID, tt.wantID)
			}
		})
	}

	t.Run("the dev key may send for any phone number", func(t *testing.T) {
		k, err := auth.Authenticate(ctx, dev)
		if err != nil || !k.HasScope(apikey.ScopeMessagesSend) || !k.AllowsPhoneNumber("42") || k.Revoked() {
			t.Fatalf("dev key = %+v, %v", k, err)
		}
	})
	t.Run("no dev key configured", func(t *testing.T) {
		a := apikey.NewAuthenticator(s, "")
		if _, err := a.Authenticate(ctx, dev); !errors.Is(err, apikey.ErrInvalid) {
			t.Errorf("a dev key without one configured: %v", err)
		}
		if got, err := a.Authenticate(ctx, live); err != nil || got.ID != k.ID {
			t.Errorf("live key: %+v, %v", got, err)
		}
	})
	t.Run("a store that cannot be reached is not an invalid key", func(t *testing.T) {
		nc.Close()
		_, err := auth.Authenticate(ctx, live)
		if err == nil || errors.Is(err, apikey.ErrInvalid) || errors.Is(err, apikey.ErrMissing) {
			t.Fatalf("Authenticate with the store down: %v; want a store error", err)
		}
		// The dev key needs no store.
		if _, err := auth.Authenticate(ctx, dev); err != nil {
			t.Errorf("dev key with the store down: %v", err)
		}
	})
}
