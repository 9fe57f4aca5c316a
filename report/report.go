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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/runstore"
)

// Stored is a stored run as a report sees it: its files, loaded.
type Stored struct {
	Dir  string           // the run directory, shown in the report; may be empty
	Info *runstore.Record // run.json; nil when it is missing
	Ops  []histories.Op
	// Result is results.json. When it is nil the run did not finish: Render
	// checks Ops itself and says so.
	Result *checker.Result
	Notes  []string // problems met while loading, shown in the report
}

// Load reads a run directory's run.json, history.jsonl and results.json.
// Missing files and a truncated history are tolerated (a crashed run) and
// noted in Run.Notes; Load fails only when dir holds none of the three.
func Load(dir string) (*Stored, error) {
	r := &Stored{Dir: dir}
	found := 0
	switch info, err := runstore.ReadRecord(runstore.RunDir(dir)); {
	case err == nil:
		r.Info = info
		found++
	case errors.Is(err, fs.ErrNotExist):
		r.Notes = append(r.Notes, runstore.RecordFile+" is missing: the run crashed before writing it")
	default:
		r.Notes = append(r.Notes, err.Error())
	}
	ops, err := readHistory(filepath.Join(dir, runstore.HistoryFile))
	switch {
	case err == nil:
		found++
	case errors.Is(err, fs.ErrNotExist):
		r.Notes = append(r.Notes, runstore.HistoryFile+" is missing")
	case errors.Is(err, histories.ErrTruncated):
		found++
		r.Notes = append(r.Notes, fmt.Sprintf("%v; showing the %d complete ops before it", err, len(ops)))
	default:
		found++
		r.Notes = append(r.Notes, fmt.Sprintf("%v; showing the %d ops before it", err, len(ops)))
	}
	r.Ops = ops
	switch res, err := runstore.ReadResults(runstore.RunDir(dir)); {
	case err == nil:
		r.Result = res
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
			dir, runstore.RecordFile, runstore.HistoryFile, runstore.ResultsFile)
	}
	return r, nil
}

// readHistory reads the history at path within runstore.OpenHistory's
// bounds; see histories.Read. Its errors name the path.
func readHistory(path string) ([]histories.Op, error) {
	f, err := runstore.OpenHistory(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ops, err := histories.Read(f)
	if err != nil {
		return ops, fmt.Errorf("%s: %w", path, err)
	}
	return ops, nil
}

// Write renders the run in dir to dir/report.html, replacing any older
// report atomically.
func Write(dir string) error {
	r, err := Load(dir)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, runstore.ReportFile), 0o644, func(w io.Writer) error { return Render(w, r) })
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
func verdictOf(info *runstore.Record, res *checker.Result) string {
	if res != nil {
		return res.Valid.String()
	}
	if info != nil && (info.Error != "" || info.Interrupted) {
		return verdictCrashed
	}
	return verdictIncomplete
}
