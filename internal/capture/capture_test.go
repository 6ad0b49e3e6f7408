package capture_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func TestCapture_DirectoryBecomesAVolumeComponentWithIndex(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a/b/file.txt"), []byte(strings.Repeat("data ", 100000)), 0o644); err != nil {
		t.Fatal(err)
	}
	store := statepkg.NewMemoryStore()
	var events int
	m, stats, err := capture.Capture(context.Background(), []capture.Source{{Name: "files", URL: "file://" + dir}}, store,
		capture.Spec{State: "shop/seed", Revision: "1.2.3", Progress: func(driver.Event) { events++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	c := m.Components[0]
	if c.Kind != statepkg.KindVolume || c.Format != "tar" || len(c.Files) != 3 || m.State != "shop/seed" || m.Revision != "1.2.3" {
		t.Errorf("component %s/%s with %d files, manifest %q %q", c.Kind, c.Format, len(c.Files), m.State, m.Revision)
	}
	if stats.Components[0].Write.Bytes != c.Size || events == 0 {
		t.Errorf("stats %+v, %d events", stats, events)
	}
	// A second capture of unchanged data stores nothing new.
	_, stats, err = capture.Capture(context.Background(), []capture.Source{{Name: "files", URL: dir}}, store, capture.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Components[0].Write.NewChunks != 0 {
		t.Errorf("re-capture stored %d new chunks", stats.Components[0].Write.NewChunks)
	}
}

func TestCapture_RejectsBadSources(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(odd, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sources []capture.Source
		want    string
	}{
		{"none", nil, "no sources"},
		{"bad name", []capture.Source{{Name: "Bad_Name", URL: dir}}, "component name"},
		{"duplicate", []capture.Source{{Name: "a", URL: dir}, {Name: "a", URL: dir}}, "named twice"},
		{"unknown file", []capture.Source{{Name: "a", URL: odd}}, "cannot tell"},
		{"unknown scheme", []capture.Source{{Name: "a", URL: "ftp://x/y"}}, "unsupported source"},
		{"missing path", []capture.Source{{Name: "a", URL: filepath.Join(dir, "nope")}}, "no such file"},
		{"unreachable postgres", []capture.Source{{Name: "a", URL: "postgres://u:secret@127.0.0.1:1/db"}}, "capture a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := capture.Capture(context.Background(), tt.sources, statepkg.NewMemoryStore(), capture.Spec{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}
