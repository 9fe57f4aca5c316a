package runstore

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDiscardRestoresLatest(t *testing.T) {
	root := t.TempDir()
	first, err := Create(root, "t", time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	prev := Latest(root)
	refused, err := Create(root, "t", time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := Discard(root, refused, prev); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(string(refused)); !os.IsNotExist(err) {
		t.Fatalf("the refused run is still there: %v", err)
	}
	got, err := filepath.EvalSymlinks(filepath.Join(root, LatestLink))
	want, _ := filepath.EvalSymlinks(string(first))
	if err != nil || got != want {
		t.Fatalf("latest -> %q (%v), want %q", got, err, want)
	}

	// The store's first run refused: no latest, no empty test directory.
	root = t.TempDir()
	refused, err = Create(root, "other", time.Unix(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := Discard(root, refused, ""); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("a refused first run left %v", entries)
	}
}
