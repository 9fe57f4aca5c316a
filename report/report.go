// Package report renders stored ec-counter runs for people: a
// self-contained report.html per run (verdict, timeline, server values,
// latencies, convergence and anomalies), a listing of a store's runs, and an
// HTTP handler that browses a store.
//
// A report opens from disk without a network: its CSS, script and data are
// inline, and it draws on canvases from a compact JSON form of the history,
// so a run of 100,000 ops stays fluid.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
)

// File is the name of the report in a run directory.
const File = "report.html"

// linearFile is harness.LinearFile: porcupine's rendering of the first
// per-server linearizability violation, when the run had one.
const linearFile = "linear.html"

// RunInfo is what a report uses of a run's run.json (README "Store layout"). Unknown
// fields are ignored, so older and newer harnesses' records both load.
type RunInfo struct {
	Name    string          `json:"name"`
	Seed    uint64          `json:"seed"`
	Version string          `json:"version,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"` // the harness's configuration, shown as is
	Replay  string          `json:"replay,omitempty"` // the command that replays the run
	Start   time.Time       `json:"start"`
	End     time.Time       `json:"end,omitzero"` // zero while running, or after a hard crash
	// Timings holds each phase's duration in nanoseconds, keyed as in
	// run.json ("startup_ns", "clients_ns", ..., "total_ns").
	Timings     map[string]int64  `json:"timings,omitempty"`
	Valid       *checker.Validity `json:"valid,omitempty"`
	Error       string            `json:"error,omitempty"` // why the harness failed
	Schedule    string            `json:"nemesis_schedule,omitempty"`
	Interrupted bool              `json:"interrupted,omitempty"`
	Unclean     []string          `json:"unclean_shutdown,omitempty"`
}

// Run is everything a report shows of one run.
type Run struct {
	Dir  string   // the run directory, shown in the report; may be empty
	Info *RunInfo // run.json; nil when it is missing
	Ops  []histories.Op
	// Result is results.json. When it is nil the run did not finish: Render
	// checks Ops itself and says so.
	Result *checker.Result
	Notes  []string // problems met while loading, shown in the report
}

// Load reads a run directory's run.json, history.jsonl and results.json.
// Missing files and a truncated history are tolerated (a crashed run) and
// noted in Run.Notes; Load fails only when dir holds none of the three.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	found := 0
	var info RunInfo
	switch err := readJSON(filepath.Join(dir, histories.RunFile), &info); {
	case err == nil:
		r.Info = &info
		found++
	case errors.Is(err, fs.ErrNotExist):
		r.Notes = append(r.Notes, histories.RunFile+" is missing: the run crashed before writing it")
	default:
		r.Notes = append(r.Notes, err.Error())
	}
	ops, err := histories.ReadFile(filepath.Join(dir, histories.HistoryFile))
	switch {
	case err == nil:
		found++
	case errors.Is(err, fs.ErrNotExist):
		r.Notes = append(r.Notes, histories.HistoryFile+" is missing")
	case errors.Is(err, histories.ErrTruncated):
		found++
		r.Notes = append(r.Notes, fmt.Sprintf("%v; showing the %d complete ops before it", err, len(ops)))
	default:
		found++
		r.Notes = append(r.Notes, fmt.Sprintf("%v; showing the %d ops before it", err, len(ops)))
	}
	r.Ops = ops
	var res checker.Result
	switch err := readJSON(filepath.Join(dir, histories.ResultsFile), &res); {
	case err == nil:
		r.Result = &res
		found++
	case errors.Is(err, fs.ErrNotExist):
	default:
		r.Notes = append(r.Notes, err.Error())
	}
	if found == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("load run: %w", err)
		}
		return nil, fmt.Errorf("load run: %s is not a run directory: it has no %s, %s or %s",
			dir, histories.RunFile, histories.HistoryFile, histories.ResultsFile)
	}
	return r, nil
}

// Write renders the run in dir to dir/report.html, replacing any older
// report atomically.
func Write(dir string) error {
	r, err := Load(dir)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, File), func(w io.Writer) error { return Render(w, r) })
}

// writeAtomic writes path through a temporary file in its directory, so a
// reader never sees half a file.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*.tmp")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	tmp := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// The verdicts of a run: a checker's, or what became of a run that never
// wrote results.json.
const (
	verdictValid      = "valid"
	verdictInvalid    = "invalid"
	verdictUnknown    = "unknown"
	verdictCrashed    = "crashed"    // the harness failed or was interrupted
	verdictIncomplete = "incomplete" // no results and no recorded failure: still running, or killed hard
)

// verdictOf returns a run's verdict: its results' when it has them, else
// crashed or incomplete.
func verdictOf(info *RunInfo, res *checker.Result) string {
	if res != nil {
		return res.Valid.String()
	}
	if info != nil && (info.Error != "" || info.Interrupted) {
		return verdictCrashed
	}
	return verdictIncomplete
}
