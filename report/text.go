package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
	"github.com/ec-counter/ec-counter/runstore"
)

// maxShrinkSummary bounds what show reads of a shrink's summary.txt, a
// few lines.
const maxShrinkSummary = 1 << 20

// WriteText writes a plain-text summary of the run: what identifies it, its
// verdict, each check's verdict, and every anomaly listed in its results
// with the ops involved.
func (r *Stored) WriteText(w io.Writer) error {
	var b strings.Builder
	info := r.Info
	if info == nil {
		info = &runstore.Record{}
	}
	res := r.Result
	verdict := verdictOf(r.Info, res)
	if res == nil {
		checked := checker.Check(r.Ops)
		res = &checked
	}
	// Every string from the store goes through printable: run.json and
	// results.json are the user's files.
	p := func(s string) string { return printable(s, maxText) }
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-9s %s\n", k+":", p(v))
		}
	}
	line("run", r.Dir)
	line("verdict", strings.ToUpper(verdict))
	for _, f := range runFacts(r, info, res) {
		if f.K != "directory" {
			line(f.K, f.V)
		}
	}
	line("replay", info.Replay)
	if r.Dir != "" {
		// A shrunk case (docs/shrinking.md "Shrinking a failing run").
		summary := filepath.Join(r.Dir, runstore.ShrinkDir, runstore.ShrinkSummaryFile)
		data, err := boundedfile.ReadFile(summary, maxShrinkSummary)
		for l := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(l, "shrunk:"); ok {
				line("shrunk", strings.TrimSpace(rest)+" (see "+summary+")")
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			line("note", err.Error())
		}
		if _, err := os.Stat(filepath.Join(r.Dir, runstore.ReportFile)); err == nil {
			line("report", filepath.Join(r.Dir, runstore.ReportFile))
		}
	}
	var ts []string
	for _, t := range timings(info.Timings) {
		ts = append(ts, t.K+" "+t.V)
	}
	line("timings", strings.Join(ts, ", "))
	for _, n := range r.Notes {
		line("note", n)
	}
	if r.Result == nil {
		line("note", "results.json is missing: these checks were run now on the history as recorded")
	}
	fmt.Fprintf(&b, "\nchecks: %s\n", res.Valid)
	total := 0
	for _, c := range checkRows(res) {
		fmt.Fprintf(&b, "  %-13s %-8s %s\n", p(c.Name), p(c.Valid), p(c.Explanation))
		total += c.Count
	}
	if n := len(res.Anomalies); n > 0 {
		fmt.Fprintf(&b, "\nanomalies (%d", n)
		if total > n {
			fmt.Fprintf(&b, " listed of %d", total)
		}
		b.WriteString("):\n")
		for i, a := range res.Anomalies {
			fmt.Fprintf(&b, "%3d. [%s] %s\n", i+1, p(a.Check), p(a.Message))
			if a.Expected != "" {
				fmt.Fprintf(&b, "     expected: %s\n", p(a.Expected))
			}
			for _, ref := range a.Ops {
				fmt.Fprintf(&b, "     - %s\n", p(linkOf(ref).Text))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
