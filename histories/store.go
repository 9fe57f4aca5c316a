package histories

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The files of a run directory (README "Store layout").
const (
	RunFile     = "run.json"
	HistoryFile = "history.jsonl"
	ResultsFile = "results.json"
	HarnessLog  = "harness.log"
	NodesDir    = "nodes"
	DataDir     = "data"
	LatestLink  = "latest"
)

// TimestampLayout names run directories: UTC, sortable, no colons.
const TimestampLayout = "20060102T150405.000Z"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidateTestName reports whether name can name a test in the store.
func ValidateTestName(name string) error {
	if !validName.MatchString(name) || name == LatestLink {
		return fmt.Errorf("invalid test name %q: use letters, digits, '.', '_' or '-' (not %q)", name, LatestLink)
	}
	return nil
}

// Run is one run's directory in a store.
type Run struct {
	Dir string // store/<test-name>/<timestamp>
}

// NewRun creates store/<name>/<timestamp>/ with its nodes/ and data/
// subdirectories and points store/latest at it.
func NewRun(store, name string, at time.Time) (Run, error) {
	if err := ValidateTestName(name); err != nil {
		return Run{}, err
	}
	stamp := at.UTC().Format(TimestampLayout)
	rel := filepath.Join(name, stamp)
	dir := filepath.Join(store, rel)
	for i := 1; ; i++ {
		err := os.MkdirAll(filepath.Dir(dir), 0o755)
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return Run{}, fmt.Errorf("create run directory: %w", err)
		}
		// Two runs started in the same millisecond: suffix the later one.
		rel = filepath.Join(name, fmt.Sprintf("%s-%d", stamp, i))
		dir = filepath.Join(store, rel)
	}
	for _, sub := range []string{NodesDir, DataDir} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return Run{}, fmt.Errorf("create run directory: %w", err)
		}
	}
	if err := pointLatest(store, rel); err != nil {
		return Run{}, err
	}
	return Run{Dir: dir}, nil
}

// pointLatest atomically replaces store/latest with a relative symlink to rel.
func pointLatest(store, rel string) error {
	tmp := filepath.Join(store, fmt.Sprintf(".latest-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Symlink(rel, tmp); err != nil {
		return fmt.Errorf("link %s: %w", LatestLink, err)
	}
	if err := os.Rename(tmp, filepath.Join(store, LatestLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", LatestLink, err)
	}
	return nil
}

// Path returns the path of a file in the run directory.
func (r Run) Path(elem ...string) string {
	return filepath.Join(append([]string{r.Dir}, elem...)...)
}

// NodeLog returns the path of a node's log.
func (r Run) NodeLog(node string) string { return r.Path(NodesDir, node+".log") }

// NodeData returns the path of a node's data directory.
func (r Run) NodeData(node string) string { return r.Path(DataDir, node) }

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
