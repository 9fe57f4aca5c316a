package report

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

//go:embed assets
var assets embed.FS

// templates are parsed once; they are never modified after.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"pct": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"dur": func(ns int64) string { return formatDuration(time.Duration(ns)) },
	"css": func(name string) template.CSS { return template.CSS(asset(name)) },
	"js":  func(name string) template.JS { return template.JS(asset(name)) },
}).ParseFS(assets, "assets/*.tmpl"))

// asset returns an embedded file; the names are constants of this package.
func asset(name string) string {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// formatDuration rounds d for reading: 1.234s, 56.7ms, 890µs.
func formatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// kv is a labelled value of a table.
type kv struct{ K, V string }

type checkRow struct {
	Name, Valid, Explanation string
	Count                    int
}

type countRow struct {
	Name string
	checker.Counts
}

type latencyRow struct {
	F string
	checker.Latency
}

type opLink struct {
	Index int64
	Text  string
}

type anomalyView struct {
	N                        int
	Check, Message, Expected string
	Ops                      []opLink
}

// view is what the report template renders.
type view struct {
	Title, Dir, Verdict string
	Rechecked           bool // results.json was missing: the report checked the history itself
	Notes               []string
	Facts               []kv
	Replay              string
	Timings             []kv
	Config              []kv
	Schedule            string
	Checks              []checkRow
	Stats               checker.Stats
	ByF, ByNode         []countRow
	Latency             []latencyRow
	Nemesis             []kv
	Conv                checker.Convergence
	ConvValue, ConvTime string
	Finals              []kv
	Lost                []opLink
	Anomalies           []anomalyView
	AnomalyTotal        int
	Linear              bool // the run directory holds porcupine's view of a violation
	Data                template.JS
}

// Render writes the report of r as one self-contained HTML page.
func Render(w io.Writer, r *Stored) error {
	v := newView(r)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "report.html.tmpl", v); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func newView(r *Stored) *view {
	res := r.Result
	v := &view{Dir: r.Dir, Notes: slices.Clone(r.Notes), Verdict: verdictOf(r.Info, res)}
	if res == nil {
		checked := checker.Check(r.Ops)
		res = &checked
		v.Rechecked = true
	}
	info := r.Info
	if info == nil {
		info = &runstore.Record{}
	}
	v.Title = cmp.Or(info.Name, "ec-counter run")
	v.Facts = runFacts(r, info, res)
	v.Replay = info.Replay
	v.Timings = timings(info.Timings)
	v.Config = configRows(info.Config)
	v.Schedule = info.Schedule

	c := &res.Checks
	v.Checks = checkRows(res)
	v.Stats = c.Stats
	for _, k := range slices.Sorted(maps.Keys(c.Stats.ByF)) {
		v.ByF = append(v.ByF, countRow{k, c.Stats.ByF[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stats.ByNode)) {
		v.ByNode = append(v.ByNode, countRow{k, c.Stats.ByNode[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stats.Latency)) {
		v.Latency = append(v.Latency, latencyRow{k, c.Stats.Latency[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Stats.Nemesis)) {
		v.Nemesis = append(v.Nemesis, kv{k, strconv.Itoa(c.Stats.Nemesis[k])})
	}

	v.Conv = c.Convergence
	v.ConvValue, v.ConvTime = "none: the servers did not converge", "—"
	if c.Convergence.Value != nil {
		v.ConvValue = strconv.FormatInt(*c.Convergence.Value, 10)
	}
	if t := c.Convergence.TimeToConvergeNS; t != nil {
		v.ConvTime = formatDuration(time.Duration(*t))
	}
	for _, n := range slices.Sorted(maps.Keys(c.Convergence.FinalValues)) {
		s := "no answer"
		if x := c.Convergence.FinalValues[n]; x != nil {
			s = strconv.FormatInt(*x, 10)
		}
		v.Finals = append(v.Finals, kv{n, s})
	}
	for _, ref := range c.Convergence.LostWrites {
		v.Lost = append(v.Lost, linkOf(ref))
	}

	anomalies := res.Anomalies
	for i, a := range anomalies {
		av := anomalyView{N: i + 1, Check: a.Check, Message: a.Message, Expected: a.Expected}
		for _, ref := range a.Ops {
			av.Ops = append(av.Ops, linkOf(ref))
		}
		v.Anomalies = append(v.Anomalies, av)
	}
	for _, row := range v.Checks {
		v.AnomalyTotal += row.Count
	}
	v.AnomalyTotal = max(v.AnomalyTotal, len(anomalies))
	if r.Dir != "" {
		_, err := os.Stat(filepath.Join(r.Dir, runstore.LinearFile))
		v.Linear = err == nil
	}

	data, err := json.Marshal(buildPage(r.Ops, res, anomalies))
	if err != nil { // the page holds only numbers, strings and valid JSON values
		data = []byte("{}")
		v.Notes = append(v.Notes, "could not encode the history for the charts: "+err.Error())
	}
	v.Data = template.JS(data) // json.Marshal escapes <, > and &: safe inside <script>
	return v
}

// checkRows lists each check's verdict, in the order of docs/histories-and-checks.md "Checks".
func checkRows(res *checker.Result) []checkRow {
	var rows []checkRow
	for _, c := range res.Verdicts() {
		rows = append(rows, checkRow{c.Name, c.Valid.String(), c.Explanation, c.AnomalyCount})
	}
	return rows
}

// linkOf names an op of an anomaly, e.g. "op 12: ok get 5 on n1 (process 3, t=1.234s)".
func linkOf(r checker.OpRef) opLink {
	var b strings.Builder
	fmt.Fprintf(&b, "op %d: %s %s", r.Index, r.Type, r.F)
	if len(r.Value) > 0 {
		b.WriteString(" " + string(r.Value))
	}
	if r.Current != nil {
		fmt.Fprintf(&b, " (current %d)", *r.Current)
	}
	if r.Node != "" {
		b.WriteString(" on " + r.Node)
	}
	fmt.Fprintf(&b, ", process %s, t=%s", r.Process, histories.FormatTime(r.Time))
	return opLink{Index: r.Index, Text: b.String()}
}

// runFacts lists what identifies a run, for the report's summary.
func runFacts(r *Stored, info *runstore.Record, res *checker.Result) []kv {
	var out []kv
	add := func(k, v string) {
		if v != "" {
			out = append(out, kv{k, v})
		}
	}
	add("name", info.Name)
	add("directory", r.Dir)
	if !info.Start.IsZero() {
		add("started", info.Start.UTC().Format("2006-01-02 15:04:05.000 UTC"))
	}
	if !info.End.IsZero() && !info.Start.IsZero() {
		add("ended", fmt.Sprintf("%s (%s)", info.End.UTC().Format("15:04:05.000 UTC"), formatDuration(info.End.Sub(info.Start))))
	}
	if r.Info != nil {
		add("seed", strconv.FormatUint(info.Seed, 10))
	}
	add("nemesis", nemesisOf(info.Config))
	add("bug", bugOf(info.Config))
	add("ops", fmt.Sprintf("%d (%d client ops, %d nemesis)", len(r.Ops), res.Checks.Stats.ClientOps, nemesisCount(r.Ops)))
	add("version", info.Version)
	add("harness error", info.Error)
	if info.Interrupted {
		add("interrupted", "yes: the run was stopped before it finished")
	}
	if len(info.Unclean) > 0 {
		add("unclean shutdown", strings.Join(info.Unclean, ", "))
	}
	return out
}

func nemesisCount(ops []histories.Op) int {
	n := 0
	for i := range ops {
		if ops[i].Process == histories.Nemesis {
			n++
		}
	}
	return n
}

// timings lists the phases of run.json's timings in the order they run.
func timings(t *runstore.Timings) []kv {
	if t == nil {
		return nil
	}
	return []kv{
		{"startup", formatDuration(t.Startup)},
		{"clients", formatDuration(t.Clients)},
		{"convergence", formatDuration(t.Convergence)},
		{"shutdown", formatDuration(t.Shutdown)},
		{"checking", formatDuration(t.Checking)},
		{"total", formatDuration(t.Total)},
	}
}

// configRows renders the top-level fields of run.json's config; durations
// (encoded in nanoseconds) read as durations.
func configRows(raw json.RawMessage) []kv {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s := jsonWords(m[k])
		var n int64
		if isDurationKey(k) && json.Unmarshal(m[k], &n) == nil {
			s = time.Duration(n).String()
		}
		out = append(out, kv{k, s})
	}
	return out
}

func isDurationKey(k string) bool {
	for _, s := range []string{"timeout", "interval", "grace", "delay"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// nemesisOf describes a config's faults: its nemesis kinds, or its scripted
// schedule file.
func nemesisOf(raw json.RawMessage) string {
	var c struct {
		Nemesis  json.RawMessage `json:"nemesis"`
		Schedule string          `json:"nemesis_schedule"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	if s := jsonWords(c.Nemesis); s != "" {
		return s
	}
	if c.Schedule != "" {
		return "schedule " + c.Schedule
	}
	return ""
}

// bugOf returns the config's bug, if the harness recorded one.
func bugOf(raw json.RawMessage) string {
	var c struct {
		Bug json.RawMessage `json:"bug"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return jsonWords(c.Bug)
}

// jsonWords renders a JSON string, list of strings or other value as text:
// "", "a", "a,b" or the JSON itself.
func jsonWords(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return strings.Join(list, ",")
	}
	var b bytes.Buffer
	if json.Compact(&b, v) == nil {
		return b.String()
	}
	return string(v)
}
