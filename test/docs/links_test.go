// Package docs_test checks the repository's Markdown: every relative link
// names a file or directory that exists, so moving a page cannot leave a
// dead link behind in the README, docs/ or a chart's README.
package docs_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// link matches a Markdown link or image target: ](target) or ](target "title").
var link = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// skipped are directories that hold no documentation of this repository.
var skipped = map[string]bool{".git": true, "dist": true, "bin": true, ".quickstart": true, "node_modules": true, ".terraform": true}

func TestMarkdown_RelativeLinksNameFilesThatExist(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipped[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".md") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		inFence := false
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inFence = !inFence
			}
			if inFence {
				continue
			}
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				checked++
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d: link to %s: no such file", rel, n, m[1])
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no relative link found: the walk missed the repository's Markdown")
	}
	t.Logf("%d relative links checked", checked)
}

// registryEntries are what the Terraform registry reads from docs/: the
// provider's index and its generated pages. Anything else belongs in
// manual/ (or api/), where neither the registry nor tfplugindocs looks.
var registryEntries = map[string]bool{"index.md": true, "resources": true, "data-sources": true, "guides": true,
	"functions": true, "ephemeral-resources": true, "actions": true, "list-resources": true}

func TestDocs_HoldsOnlyTheRegistryLayout(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "docs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !registryEntries[e.Name()] {
			t.Errorf("docs/%s is not a page of the Terraform registry's layout: move it to manual/ (git mv) and fix the links to it", e.Name())
		}
	}
}
