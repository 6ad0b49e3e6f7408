package api_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// randomBytes returns n reproducible pseudo-random bytes (incompressible).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// makeVersion chunks data into a one-component manifest for project/state,
// with the chunks in a MemoryStore.
func makeVersion(t testing.TB, state, revision string, data []byte) (*statepkg.Manifest, *statepkg.MemoryStore) {
	t.Helper()
	mem := statepkg.NewMemoryStore()
	comp, _, err := statepkg.WriteComponent(context.Background(), mem,
		statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom"}, bytes.NewReader(data), statepkg.WriteOptions{})
	if err != nil {
		t.Fatalf("write component: %v", err)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: state, Revision: revision, Message: "test",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Components: []statepkg.Component{comp}}
	return m, mem
}

// readAll restores the manifest's first component from store.
func readAll(t testing.TB, store statepkg.ChunkStore, m *statepkg.Manifest) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := statepkg.ReadComponent(context.Background(), store, m.Components[0], &buf, statepkg.ReadOptions{}); err != nil {
		t.Fatalf("read component: %v", err)
	}
	return buf.Bytes()
}

func sleep(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }
