package store

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

// A key is made once and then read back, by this process and by another
// on the same database, and keys of different names differ.
func TestKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := openStore(t, dsn), openStore(t, dsn)
		first, err := a.Key(ctx, "login")
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != keyBytes || bytes.Equal(first, make([]byte, keyBytes)) {
			t.Fatalf("Key = %x, want %d random bytes", first, keyBytes)
		}
		for _, s := range []*Store{a, b} {
			again, err := s.Key(ctx, "login")
			if err != nil || !bytes.Equal(again, first) {
				t.Errorf("Key again = %x, %v; want the first key %x", again, err, first)
			}
		}
		other, err := b.Key(ctx, "other")
		if err != nil || bytes.Equal(other, first) {
			t.Errorf("Key(other) = %x, %v; want a key of its own", other, err)
		}
		var input *InputError
		if _, err := a.Key(ctx, ""); !errors.As(err, &input) {
			t.Errorf("Key(\"\") = %v, want an InputError", err)
		}
	})
}

// API replicas starting together on a new database all get one key: the
// one whose insert won.
func TestKeyMadeOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = stores[i%2].Key(context.Background(), "race")
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Key #%d: %v", i, errs[i])
			} else if !bytes.Equal(keys[i], keys[0]) {
				t.Errorf("Key #%d = %x, Key #0 = %x: two keys of one name", i, keys[i], keys[0])
			}
		}
	})
}
