// Package runstore owns the run store: the layout of a run directory (docs/store-and-exit-codes.md "Store layout"), creating a run, listing and finding runs, and run.json,
// the one record a run writes and every reader loads.
package runstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The files and directories of a run directory (docs/store-and-exit-codes.md "Store layout").
const (
	RecordFile  = "run.json"      // the run's Record
	HistoryFile = "history.jsonl" // the history (docs/histories-and-checks.md "Histories")
	ResultsFile = "results.json"  // the checkers' results
	HarnessLog  = "harness.log"   // what the harness printed
	ReportFile  = "report.html"   // the browsable report
	LinearFile  = "linear.html"   // porcupine's view of a linearizability violation
	// ScheduleFile is a copy of the scripted schedule the run was given.
	ScheduleFile = "schedule.txt"
	// WorkloadFile is the workload the run's clients sent, one request a
	// line (docs/workloads.md "Scripted workloads").
	WorkloadFile = "workload.jsonl"
	// ShrinkDir holds what "ec-counter shrink" found: the shrunk case's
	// schedule.txt and workload.jsonl, its ShrinkSummaryFile, and run/,
	// its last failing run.
	ShrinkDir         = "shrink"
	ShrinkSummaryFile = "summary.txt"
	NodesDir          = "nodes" // nodes/<name>.log: each node's stderr
	DataDir           = "data"  // data/<name>/: each node's data directory
	// MountsDir holds the mountpoints of the power-loss file systems while
	// a run can crash nodes; their durable state is in DataDir.
	MountsDir  = "mnt"
	LatestLink = "latest" // store/latest: a symlink to the newest run
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

// RunDir is the directory of one run: root/<test-name>/<timestamp>.
type RunDir string

// File returns the path of a file in the run directory.
func (d RunDir) File(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// NodeLog returns the path of a node's log.
func (d RunDir) NodeLog(node string) string { return d.File(NodesDir, node+".log") }

// NodeData returns the path of a node's data directory.
func (d RunDir) NodeData(node string) string { return d.File(DataDir, node) }

// Create makes root/<name>/<timestamp>/ with its nodes/ and data/
// subdirectories, and points root/latest at it. Two runs created in the
// same millisecond get distinct directories.
func Create(root, name string, at time.Time) (RunDir, error) {
	if err := ValidateTestName(name); err != nil {
		return "", err
	}
	stamp := at.UTC().Format(TimestampLayout)
	rel := filepath.Join(name, stamp)
	dir := filepath.Join(root, rel)
	for i := 1; ; i++ {
		err := os.MkdirAll(filepath.Dir(dir), 0o755)
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("create run directory: %w", err)
		}
		rel = filepath.Join(name, fmt.Sprintf("%s-%d", stamp, i))
		dir = filepath.Join(root, rel)
	}
	for _, sub := range []string{NodesDir, DataDir} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return "", fmt.Errorf("create run directory: %w", err)
		}
	}
	if err := pointLatest(root, rel); err != nil {
		return "", err
	}
	return RunDir(dir), nil
}

// pointLatest atomically replaces root/latest with a relative symlink to rel.
func pointLatest(root, rel string) error {
	tmp := filepath.Join(root, fmt.Sprintf(".latest-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Symlink(rel, tmp); err != nil {
		return fmt.Errorf("link %s: %w", LatestLink, err)
	}
	if err := os.Rename(tmp, filepath.Join(root, LatestLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", LatestLink, err)
	}
	return nil
}
