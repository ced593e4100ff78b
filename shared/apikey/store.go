package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Store keeps key records in a NATS key-value bucket.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a store over kv.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// ErrNotFound is returned for a key id with no record.
var ErrNotFound = errors.New("apikey: no such key")

// Create stores a new record; it fails if the id is taken.
func (s *Store) Create(ctx context.Context, k *Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, k.ID, b); err != nil {
		return fmt.Errorf("apikey: store key %s: %w", k.ID, err)
	}
	return nil
}

// Get returns the record for id.
func (s *Store) Get(ctx context.Context, id string) (*Key, error) {
	k, _, err := s.get(ctx, id)
	return k, err
}

func (s *Store) get(ctx context.Context, id string) (*Key, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("apikey: read key %s: %w", id, err)
	}
	var k Key
	if err := json.Unmarshal(e.Value(), &k); err != nil {
		return nil, 0, fmt.Errorf("apikey: decode key %s: %w", id, err)
	}
	return &k, e.Revision(), nil
}

// List returns every record, oldest first.
func (s *Store) List(ctx context.Context) ([]*Key, error) {
	// Cancelling stops the lister's goroutine if we return before draining it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("apikey: list keys: %w", err)
	}
	var keys []*Key
	for id := range lister.Keys() {
		k, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
	return keys, nil
}

// Revoke marks the key revoked; later requests with it get 401. Revoking a
// revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time) (*Key, error) {
	for {
		k, rev, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if k.Revoked() {
			return k, nil
		}
		t := now.UTC()
		k.RevokedAt = &t
		b, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		_, err = s.kv.Update(ctx, id, b, rev)
		if err == nil {
			return k, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
			return nil, fmt.Errorf("apikey: revoke key %s: %w", id, err)
		}
		// Changed under us: read it again.
	}
}

// Errors from Authenticate.
var (
	// ErrMissing: no bearer token was presented.
	ErrMissing = errors.New("missing API key: send Authorization: Bearer <key>")
	// ErrInvalid: the token is not a live key.
	ErrInvalid = errors.New("invalid or revoked API key")
)

// Authenticator resolves a presented key to its record.
type Authenticator struct {
	store   *Store
	devHash [sha256.Size]byte
	devKey  *Key
}

// NewAuthenticator checks keys against store. If devKey is not empty, it is
// also accepted, with messages:send for every phone number id: for local
// development only.
func NewAuthenticator(store *Store, devKey string) *Authenticator {
	a := &Authenticator{store: store}
	if devKey != "" {
		a.devHash = sha256.Sum256([]byte(devKey))
		a.devKey = &Key{
			ID: "dev", Name: "development key", Mode: ModeTest,
			Scopes: []string{ScopeMessagesSend}, PhoneNumberIDs: []string{AnyPhoneNumber},
		}
	}
	return a
}

// Authenticate returns the record of the key plaintext, ErrMissing,
// ErrInvalid, or an error reaching the store.
func (a *Authenticator) Authenticate(ctx context.Context, plaintext string) (*Key, error) {
	if plaintext == "" {
		return nil, ErrMissing
	}
	if a.devKey != nil {
		got := sha256.Sum256([]byte(plaintext))
		if subtle.ConstantTimeCompare(got[:], a.devHash[:]) == 1 {
			return a.devKey, nil
		}
	}
	id, ok := ParseID(plaintext)
	if !ok {
		return nil, ErrInvalid
	}
	k, err := a.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if !k.Matches(plaintext) || k.Revoked() {
		return nil, ErrInvalid
	}
	return k, nil
}
