package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

// RunSummary is one line of a store's listing.
type RunSummary struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"` // relative to the store, slash-separated: NAME/TIMESTAMP
	Dir     string    `json:"dir"`  // the run directory: the store joined with Path
	Start   time.Time `json:"start"`
	Seed    uint64    `json:"seed"`
	Nemesis string    `json:"nemesis,omitempty"` // the fault kinds, or the scripted schedule
	Bug     string    `json:"bug,omitempty"`     // the bug the config asked for, if any
	// Verdict is valid, invalid or unknown from results.json; crashed when
	// results.json is missing and run.json records a failure or an
	// interruption; incomplete when it is missing otherwise (a run still
	// going, or killed hard).
	Verdict   string `json:"verdict"`
	Anomalies int    `json:"anomalies"` // anomalies found, listed or not
	Ops       int    `json:"ops"`       // ops in the history
	Error     string `json:"error,omitempty"`
	// Notes are the problems met reading the run's files (one that is not
	// JSON, larger than its bound, a device or a FIFO).
	Notes []string `json:"notes,omitempty"`
	// Files lists which of the run's files exist, among run.json,
	// history.jsonl, results.json, harness.log, report.html and
	// linear.html.
	Files    []string `json:"files"`
	NodeLogs []string `json:"node_logs,omitempty"` // the names of nodes/*.log
}

// List returns the runs of a store, newest first. It tolerates runs that
// crashed or are still running: missing or unreadable files only make a
// run's summary poorer.
func List(root string) ([]RunSummary, error) {
	return newLister(root).list()
}

// lister reads a store's runs, caching each run's summary until one of the
// files it was read from changes.
type lister struct {
	root  string
	mu    sync.Mutex
	cache map[string]cached // by run path
}

type cached struct {
	stamp   string
	summary RunSummary
}

func newLister(root string) *lister {
	return &lister{root: root, cache: map[string]cached{}}
}

func (l *lister) list() ([]RunSummary, error) {
	paths, err := runstore.RunPaths(l.root)
	if err != nil {
		return nil, err
	}
	out := make([]RunSummary, 0, len(paths))
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		dir := filepath.Join(l.root, filepath.FromSlash(p))
		stamp, ok := runStamp(dir)
		if !ok {
			continue // not a run: no run.json, history or results
		}
		seen[p] = true
		l.mu.Lock()
		c, hit := l.cache[p]
		l.mu.Unlock()
		if !hit || c.stamp != stamp {
			c = cached{stamp: stamp, summary: summarize(l.root, p)}
			l.mu.Lock()
			l.cache[p] = c
			l.mu.Unlock()
		}
		out = append(out, c.summary)
	}
	l.mu.Lock()
	for p := range l.cache {
		if !seen[p] {
			delete(l.cache, p)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b RunSummary) int {
		return cmp.Or(b.Start.Compare(a.Start), strings.Compare(b.Path, a.Path))
	})
	return out, nil
}

// runFiles returns the files of a run directory that a listing links to.
func runFiles() []string {
	return []string{runstore.RecordFile, runstore.HistoryFile, runstore.ResultsFile, runstore.HarnessLog, runstore.ReportFile, runstore.LinearFile}
}

// runStamp identifies the state of a run directory by the sizes and
// modification times of the files a summary reads; ok is false when dir
// holds none of run.json, history.jsonl and results.json.
func runStamp(dir string) (stamp string, ok bool) {
	var b strings.Builder
	for _, name := range append(runFiles(), runstore.NodesDir) {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			b.WriteString("-;")
			continue
		}
		if name == runstore.RecordFile || name == runstore.HistoryFile || name == runstore.ResultsFile {
			ok = true
		}
		fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
	}
	return b.String(), ok
}

// summarize reads the summary of the run at path (relative to store).
func summarize(root, path string) RunSummary {
	dir := filepath.Join(root, filepath.FromSlash(path))
	name, stamp, _ := strings.Cut(path, "/")
	s := RunSummary{Name: name, Path: path, Dir: dir}
	if t, err := time.Parse(runstore.TimestampLayout, strings.SplitN(stamp, "-", 2)[0]); err == nil {
		s.Start = t
	}
	info, err := runstore.ReadRecord(runstore.RunDir(dir))
	s.note(err)
	if err == nil {
		ri := info
		s.Name = cmp.Or(ri.Name, s.Name)
		if !ri.Start.IsZero() {
			s.Start = ri.Start
		}
		s.Seed = ri.Seed
		s.Nemesis = nemesisOf(ri.Config)
		s.Bug = bugOf(ri.Config)
		s.Error = ri.Error
	}
	result, err := runstore.ReadResults(runstore.RunDir(dir))
	s.note(err)
	if err == nil {
		res := result
		counted := 0
		for _, c := range res.Verdicts() {
			counted += c.AnomalyCount
		}
		s.Anomalies = max(len(res.Anomalies), counted)
		s.Ops = res.Checks.Stats.Ops
	}
	s.Verdict = verdictOf(info, result)
	if s.Ops == 0 {
		s.Ops, err = countLines(filepath.Join(dir, runstore.HistoryFile))
		s.note(err)
	}
	if logs, err := filepath.Glob(filepath.Join(dir, runstore.NodesDir, "*.log")); err == nil {
		for _, l := range logs {
			s.NodeLogs = append(s.NodeLogs, filepath.Base(l))
		}
	}
	s.Files = []string{}
	for _, f := range runFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			s.Files = append(s.Files, f)
		}
	}
	return s
}

// note records err, if any, among the summary's notes; a missing file is
// no problem (a run that crashed early).
func (s *RunSummary) note(err error) {
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.Notes = append(s.Notes, err.Error())
	}
}

// countLines counts the complete lines of the history at path, reading it
// within runstore.OpenHistory's bounds. It stops at a line longer than any
// op's (histories.MaxLine): that file is no history. A listing reads no
// device or FIFO: it would wait on a FIFO's writer, or consume its lines.
func countLines(path string) (int, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is %s, not a regular file: its ops are not counted", path, fileKind(st.Mode()))
	}
	f, err := runstore.OpenHistory(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	n, line := 0, 0 // line: bytes since the last newline
	for {
		k, err := f.Read(buf)
		chunk := buf[:k]
		for {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				line += len(chunk)
				break
			}
			n, line, chunk = n+1, 0, chunk[i+1:]
		}
		if line > histories.MaxLine {
			return n, fmt.Errorf("%s: a line is longer than %d bytes: not a history (one op a line)", path, histories.MaxLine)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fileKind names the kind of file that m is the mode of, for a person.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "a special file"
}

// WriteTable writes runs as an aligned table, one run per line.
func WriteTable(w io.Writer, runs []RunSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTIME\tSEED\tNEMESIS\tVERDICT\tOPS\tDIR")
	for _, r := range runs {
		t := "-"
		if !r.Start.IsZero() {
			t = r.Start.UTC().Format("2006-01-02 15:04:05Z")
		}
		seed := "-"
		if r.Seed != 0 || r.Verdict != verdictIncomplete {
			seed = strconv.FormatUint(r.Seed, 10)
		}
		verdict := r.Verdict
		if r.Anomalies > 0 {
			verdict += fmt.Sprintf(" (%d)", r.Anomalies)
		}
		nem := cmp.Or(r.Nemesis, "-")
		if r.Bug != "" {
			nem += " bug=" + r.Bug
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", clip(r.Name), t, seed, clip(nem), clip(verdict), r.Ops, clip(r.Dir))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range runs {
		for _, n := range r.Notes {
			if _, err := fmt.Fprintf(w, "note: %s: %s\n", printable(r.Path, maxText), printable(n, maxText)); err != nil {
				return err
			}
		}
	}
	return nil
}

// The bounds on what a listing's cell and a line of text print: run.json
// and results.json are the user's files, and a field of megabytes must not
// flood the terminal.
const (
	maxCell = 80
	maxText = 1000
)

// clip is printable for a table cell.
func clip(s string) string { return printable(s, maxCell) }

// printable returns s as a terminal may show it: control characters and
// bytes that are not UTF-8 escaped as in Go strings (\n, \x1b, \u2028),
// and cut to at most limit bytes (at a character boundary) with "..." when
// longer. Quotes and backslashes stay as they are, so that a command (a
// run's replay) can still be copied.
func printable(s string, limit int) string {
	var b strings.Builder
	cut := 0 // b.Len() at the last character boundary leaving room for "..."
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		}
		if b.Len() > limit {
			return b.String()[:cut] + "..."
		}
		if b.Len() <= limit-3 {
			cut = b.Len()
		}
	}
	return b.String()
}
