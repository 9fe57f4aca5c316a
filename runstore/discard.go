package runstore

import (
	"fmt"
	"os"
	"path/filepath"
)

// Latest returns the target root/latest points at, relative to root, or ""
// if there is none: what Discard restores.
func Latest(root string) string {
	target, err := os.Readlink(filepath.Join(root, LatestLink))
	if err != nil {
		return ""
	}
	return target
}

// Discard removes dir, a run that was refused before anything ran (docs/store-and-exit-codes.md "Exit codes": 254, like a bad flag, stores nothing), and points
// root/latest back at prev, as Latest returned it before Create (or
// removes root/latest if prev is ""), unless a later run moved it since.
func Discard(root string, dir RunDir, prev string) error {
	rel, err := filepath.Rel(root, string(dir))
	if err != nil {
		return err
	}
	if err := os.RemoveAll(string(dir)); err != nil {
		return fmt.Errorf("remove the refused run %s: %w", dir, err)
	}
	os.Remove(filepath.Dir(string(dir))) // the test's directory, if this was its only run
	if Latest(root) != rel {
		return nil // another run has started since: latest is its
	}
	if prev == "" {
		return os.Remove(filepath.Join(root, LatestLink))
	}
	return pointLatest(root, prev)
}
