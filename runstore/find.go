package runstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// RunPaths returns the paths, relative to root and slash-separated, of the
// directories under root that may hold runs: NAME/TIMESTAMP. Callers that
// need runs only keep those for which IsRun holds.
func RunPaths(root string) ([]string, error) {
	names, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []string
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") {
			continue // latest is a symlink, so IsDir is false for it anyway
		}
		runs, err := os.ReadDir(filepath.Join(root, n.Name()))
		if err != nil {
			continue
		}
		for _, r := range runs {
			if r.IsDir() && !strings.HasPrefix(r.Name(), ".") {
				out = append(out, n.Name()+"/"+r.Name())
			}
		}
	}
	return out, nil
}

// IsRun reports whether dir is a run directory: it holds run.json,
// history.jsonl or results.json (a run that crashed early may lack some).
func IsRun(dir string) bool {
	for _, f := range []string{RecordFile, HistoryFile, ResultsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// Find resolves a user's reference to a run and returns its directory. ref
// is a run directory (or a file in one), "latest", or, under root,
// NAME/TIMESTAMP, NAME (that test's newest run) or TIMESTAMP (the one run
// with that timestamp, or a unique prefix of one).
func Find(root, ref string) (RunDir, error) {
	if ref == "" {
		return "", errors.New("no run given")
	}
	if ref == LatestLink {
		dir := filepath.Join(root, LatestLink)
		if !IsRun(dir) {
			return "", fmt.Errorf("no latest run in %s", root)
		}
		if target, err := os.Readlink(dir); err == nil && !filepath.IsAbs(target) {
			dir = filepath.Join(root, target) // name the run itself, not the link
		}
		return RunDir(dir), nil
	}
	st, statErr := os.Stat(ref)
	if statErr == nil {
		dir := ref
		if !st.IsDir() {
			dir = filepath.Dir(ref)
		}
		if IsRun(dir) {
			return RunDir(dir), nil
		}
	}
	notRun := fmt.Errorf("%s is not a run directory: it has no %s, %s or %s", ref, RecordFile, HistoryFile, ResultsFile)
	if !fs.ValidPath(ref) {
		if statErr == nil {
			return "", notRun
		}
		return "", fmt.Errorf("no run %s: %w", ref, statErr)
	}
	if strings.Contains(ref, "/") {
		if dir := filepath.Join(root, filepath.FromSlash(ref)); IsRun(dir) {
			return RunDir(dir), nil
		}
		if statErr == nil {
			return "", notRun
		}
		return "", fmt.Errorf("no run %s, neither a run directory nor NAME/TIMESTAMP under %s", ref, root)
	}
	paths, err := RunPaths(root)
	if err != nil {
		return "", err
	}
	var byName, byStamp []string
	for _, p := range paths {
		name, stamp, _ := strings.Cut(p, "/")
		if name != ref && !strings.HasPrefix(stamp, ref) || !IsRun(filepath.Join(root, filepath.FromSlash(p))) {
			continue
		}
		if name == ref {
			byName = append(byName, p)
		} else {
			byStamp = append(byStamp, p)
		}
	}
	pick := func(p string) (RunDir, error) { return RunDir(filepath.Join(root, filepath.FromSlash(p))), nil }
	switch {
	case len(byName) > 0:
		slices.Sort(byName) // timestamps sort in time order
		return pick(byName[len(byName)-1])
	case len(byStamp) == 1:
		return pick(byStamp[0])
	case len(byStamp) > 1:
		return "", fmt.Errorf("%q matches %d runs in %s (%s, ...): give NAME/TIMESTAMP", ref, len(byStamp), root, byStamp[0])
	case statErr == nil:
		return "", notRun
	}
	return "", fmt.Errorf("no run %q in %s: give a run directory, latest, NAME, TIMESTAMP or NAME/TIMESTAMP", ref, root)
}

// FindHistory resolves a user-given path to a history file: a run
// directory (holding history.jsonl) or the history file itself.
func FindHistory(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	h := filepath.Join(path, HistoryFile)
	if _, err := os.Stat(h); err != nil {
		return "", fmt.Errorf("%s is a directory without %s: give a run directory or a history file", path, HistoryFile)
	}
	return h, nil
}

// maxHistorySize bounds what a reader reads of a history: some 25 million
// ops.
const maxHistorySize = 4 << 30

// OpenHistory opens the history file at path for streaming (see
// histories.Reader), reading at most 4 GiB whatever the file is (see
// boundedfile): a FIFO nobody writes to reads as empty, one whose writer
// stays silent fails after a few seconds; a device that never ends is
// stopped by the history's own bound on a line.
func OpenHistory(path string) (io.ReadCloser, error) {
	r, err := boundedfile.Open(path, maxHistorySize)
	if err != nil {
		return nil, err
	}
	return r, nil
}
