package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRun_ReproducesTheCommittedSeed regenerates the seed and compares it
// byte for byte with the committed files, so they never drift from the
// generator (run `go run ./examples/quickstart/seed/gen` after changing it).
func TestRun_ReproducesTheCommittedSeed(t *testing.T) {
	out := t.TempDir()
	if err := run(out); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..")
	var n int
	err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		got, _ := os.ReadFile(p)
		want, err := os.ReadFile(filepath.Join(committed, rel))
		if err != nil {
			t.Errorf("%s: generated but not committed: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the committed file: run go run ./examples/quickstart/seed/gen", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + ProductPics + Invoices + 1; n != want {
		t.Errorf("generated %d files, want %d", n, want)
	}
}
