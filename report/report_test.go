package report

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

var t0 = time.Date(2026, 11, 28, 3, 15, 2, 120e6, time.UTC)

// pageOf extracts and decodes the data embedded in a report.
func pageOf(t *testing.T, report []byte) page {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`).FindSubmatch(report)
	if m == nil {
		t.Fatal("report has no embedded data")
	}
	var p page
	var raw struct {
		Calls struct {
			Inv []int64 `json:"inv"`
			St  []int   `json:"st"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(m[1], &raw); err != nil {
		t.Fatalf("embedded data is not JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(m[1]))
	var generic map[string]json.RawMessage
	if err := dec.Decode(&generic); err != nil {
		t.Fatal(err)
	}
	for k, v := range generic {
		switch k {
		case "windows":
			json.Unmarshal(v, &p.Windows)
		case "anomalies":
			json.Unmarshal(v, &p.Anomalies)
		case "ops":
			json.Unmarshal(v, &p.Ops)
		case "laneProc":
			json.Unmarshal(v, &p.LaneProc)
		case "conv":
			json.Unmarshal(v, &p.Conv)
		}
	}
	p.Calls.Inv, p.Calls.St = raw.Calls.Inv, raw.Calls.St
	return p
}

func TestWriteValidRun(t *testing.T) {
	root := t.TempDir()
	s := synth{seed: 3, nodes: 3, clients: 5, ops: 2000, faults: true}
	dir := writeRun(t, root, "ec-counter", t0, s, false)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, runstore.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`data-verdict="valid"`, `<div class="verdict">valid</div>`,
		`id="summary"`, `id="timeline"`, `id="values"`, `id="latency"`, `id="convergence"`, `id="anomalies"`, `id="config"`,
		"ec-counter test --seed 3 --name ec-counter", // the replay command
		"2026-11-28 03:15:02.120 UTC", "startup", "600ms",
		"thin-air", "linearizable", "session", "convergence", "stats",
		"partition,kill,pause,link", "The checks found nothing wrong.",
	} {
		if !strings.Contains(text, html.EscapeString(want)) && !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(text, "http://") || strings.Contains(text, "https://") || strings.Contains(text, "src=") {
		t.Error("report loads something from outside: it must be self-contained")
	}
	ops := s.history()
	p := pageOf(t, b)
	if p.Ops != len(ops) {
		t.Errorf("data has %d ops, want %d", p.Ops, len(ops))
	}
	res := checker.Check(ops)
	if len(p.Calls.Inv) != res.Checks.Stats.ClientOps {
		t.Errorf("data has %d calls, want %d", len(p.Calls.Inv), res.Checks.Stats.ClientOps)
	}
	if len(p.Windows) < 3 {
		t.Errorf("data has %d nemesis windows, want several: %+v", len(p.Windows), p.Windows)
	}
	if p.Conv.T0 < 0 || p.Conv.T1 < p.Conv.T0 {
		t.Errorf("convergence phase %+v, want a start and an end", p.Conv)
	}
}

func TestWriteInvalidRunListsAnomalies(t *testing.T) {
	root := t.TempDir()
	dir := writeRun(t, root, "buggy", t0, synth{seed: 4, nodes: 3, clients: 5, ops: 2000, bug: true}, false)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, runstore.ReportFile))
	res, err := runstore.ReadResults(runstore.RunDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid != checker.Invalid || len(res.Anomalies) == 0 {
		t.Fatalf("synthetic buggy run is %s with %d anomalies", res.Valid, len(res.Anomalies))
	}
	text := string(b)
	if !strings.Contains(text, `data-verdict="invalid"`) {
		t.Error("report does not say invalid")
	}
	for i, a := range res.Anomalies {
		if !strings.Contains(text, `id="anomaly-`+strconv.Itoa(i+1)+`"`) {
			t.Errorf("anomaly %d is not listed", i+1)
		}
		for _, ref := range a.Ops {
			if !strings.Contains(text, `data-op="`+strconv.Itoa(int(ref.Index))+`"`) {
				t.Errorf("anomaly %d's op %d is not linked", i+1, ref.Index)
			}
		}
	}
	p := pageOf(t, b)
	if len(p.Anomalies) != len(res.Anomalies) {
		t.Errorf("data has %d anomalies, want %d", len(p.Anomalies), len(res.Anomalies))
	}
}

func TestWriteCrashedRun(t *testing.T) {
	root := t.TempDir()
	dir := writeRun(t, root, "crashy", t0, synth{seed: 5, nodes: 3, clients: 3, ops: 500}, true)
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Result != nil || len(r.Notes) == 0 {
		t.Fatalf("Load of a crashed run: result %v, notes %q", r.Result, r.Notes)
	}
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, runstore.ReportFile))
	for _, want := range []string{`data-verdict="crashed"`, "results.json is missing", "truncated", "node n2 exited"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report of a crashed run lacks %q", want)
		}
	}
}

func TestLoadRejectsNonRun(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty directory succeeded")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

func TestRenderEscapesValues(t *testing.T) {
	ops := []histories.Op{
		{Index: 0, Time: 1000, Type: histories.Invoke, Process: 0, F: "get", Node: "n1"},
		{Index: 1, Time: 2000, Type: histories.Fail, Process: 0, F: "get", Node: "n1", Error: "</script><script>alert(1)</script>"},
		{Index: 2, Time: 3000, Type: histories.Info, Process: histories.Nemesis, F: "start-partition", Value: json.RawMessage(`{"x":"</script>"}`)},
	}
	var buf bytes.Buffer
	if err := Render(&buf, &Stored{Info: &runstore.Record{Name: "<b>x</b>"}, Ops: ops}); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	if strings.Count(s, "</script>") != 2 { // the data's and the script's own
		t.Errorf("a value closed a script element: %d </script>", strings.Count(s, "</script>"))
	}
	if strings.Contains(s, "<b>x</b>") {
		t.Error("the run's name was not escaped")
	}
}

func TestNemesisWindows(t *testing.T) {
	nem := func(i int64, f, v string) histories.Op {
		return histories.Op{Index: i, Time: i * 1000, Type: histories.Info, Process: histories.Nemesis, F: f, Value: json.RawMessage(v)}
	}
	ops := []histories.Op{
		nem(0, "start-partition", `{"shape":"isolate","groups":[["n1"],["n2","n3"]],"grudge":{"n1":["n2","n3"]}}`),
		nem(1, "kill", `{"nodes":["n1","n2"]}`),
		nem(2, "restart", `{"nodes":["n1"]}`),
		nem(3, "stop-partition", `{}`),
		nem(4, "start-partition", `{"n1":["n2"],"n2":["n1"]}`),
		nem(5, "restart", `{"nodes":["n2"]}`),
		nem(6, "pause", `{"nodes":["n3"]}`),
		nem(7, "start-link", `{"delay_ms":100,"jitter_ms":20,"loss":0.25,"nodes":["n2"]}`),
		nem(8, "stop-link", `{}`),
		nem(9, "crash", `{"nodes":["n1"],"lost":{"n1":{"writes":2,"bytes":8,"entries":1}}}`),
		nem(10, "restart", `["n1"]`),
	}
	p := buildPage(ops, nil, nil)
	type w struct {
		kind, label string
		i0, i1      int64
	}
	var got []w
	for _, x := range p.Windows {
		got = append(got, w{x.Kind, x.Label, x.I0, x.I1})
	}
	want := []w{
		{"partition", "partition isolate: n1 | n2,n3", 0, 3},
		{"kill", "killed n1", 1, 2},
		{"kill", "killed n2", 1, 5},
		{"partition", "partition n1✕n2 n2✕n1", 4, -1},
		{"pause", "paused n3", 6, -1},
		{"link", "link delay 100ms±20ms loss 25% on n2", 7, 8},
		{"crash", "crashed n1", 9, 10},
	}
	if len(got) != len(want) {
		t.Fatalf("windows %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("window %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, x := range p.Windows {
		if x.I1 < 0 && x.T1 != p.End {
			t.Errorf("open window %q ends at %d, want the history's end %d", x.Label, x.T1, p.End)
		}
	}
	// Overlapping windows never share a row.
	for i, a := range p.Windows {
		for _, b := range p.Windows[i+1:] {
			if a.Row == b.Row && a.T0 < b.T1 && b.T0 < a.T1 {
				t.Errorf("windows %q and %q overlap on row %d", a.Label, b.Label, a.Row)
			}
		}
	}
}

// TestNemesisValues reads the values the nemesis records (docs/histories-and-checks.md "Histories"): a
// bare grudge, a link fault, a bare node list; problems in the op's error.
func TestNemesisValues(t *testing.T) {
	nem := func(i int64, f, v, err string) histories.Op {
		return histories.Op{Index: i, Time: i * 1000, Type: histories.Info, Process: histories.Nemesis, F: f,
			Value: json.RawMessage(v), Error: err}
	}
	const grudge = `{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`
	const link = `{"delay_ms":100,"jitter_ms":20,"loss":0.25,"nodes":["n2"]}`
	ops := []histories.Op{
		nem(0, "start-partition", grudge, "unreachable: n2"),
		nem(1, "kill", `["n1","n2"]`, ""),
		nem(2, "restart", `["n1"]`, ""),
		nem(3, "kill", `[]`, "failed: n3 (no such process)"),
		nem(4, "stop-partition", grudge, ""),
		nem(5, "restart", `["n2"]`, "unreachable: n2"),
		nem(6, "pause", `["n3"]`, ""),
		nem(7, "start-link", link, ""),
		nem(8, "stop-link", link, "unreachable: n3"),
		nem(9, "resume", `[]`, ""), // n3 was skipped: it stays paused
	}
	p := buildPage(ops, nil, nil)
	type w struct {
		kind, label string
		i0, i1      int64
	}
	var got []w
	for _, x := range p.Windows {
		got = append(got, w{x.Kind, x.Label, x.I0, x.I1})
	}
	want := []w{
		{"partition", "partition n1✕n2,n3 n2✕n1 n3✕n1 (unreachable: n2)", 0, 4},
		{"kill", "killed n1", 1, 2},
		{"kill", "killed n2", 1, 5},
		{"pause", "paused n3", 6, -1},
		{"link", "link delay 100ms±20ms loss 25% on n2", 7, 8},
	}
	if !slices.Equal(got, want) {
		t.Errorf("windows\n%+v\nwant\n%+v", got, want)
	}
	wantOps := []struct{ label, err, value string }{
		{"partition n1✕n2,n3 n2✕n1 n3✕n1", "unreachable: n2", grudge},
		{"kill n1,n2", "", `["n1","n2"]`},
		{"restart n1", "", `["n1"]`},
		{"kill", "failed: n3 (no such process)", `[]`},
		{"stop-partition", "", grudge},
		{"restart n2", "unreachable: n2", `["n2"]`},
		{"pause n3", "", `["n3"]`},
		{"link delay 100ms±20ms loss 25% on n2", "", link},
		{"stop-link", "unreachable: n3", link},
		{"resume", "", `[]`},
	}
	for i, want := range wantOps {
		o := p.Nemesis[i]
		if o.Label != want.label || o.Error != want.err || string(o.Value) != want.value {
			t.Errorf("nemesis op %d: label %q error %q value %s, want %q, %q, %s", i, o.Label, o.Error, o.Value, want.label, want.err, want.value)
		}
	}
	b, _ := json.Marshal(p.Nemesis[0])
	if !strings.Contains(string(b), `"error":"unreachable: n2"`) {
		t.Errorf("the page's op lacks its error: %s", b)
	}
}

func TestIntColKeepsBigValuesExact(t *testing.T) {
	var c intCol
	c.add(57, true)
	c.add(0, false)
	c.add(9223372036854775807, true)
	c.add(-9223372036854775808, true)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[57,null,"9223372036854775807","-9223372036854775808"]`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestRenderLargeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a 100,000-op history")
	}
	ops := synth{seed: 9, nodes: 5, clients: 40, ops: 100_000, faults: true}.history()
	res := checker.Check(ops)
	var buf bytes.Buffer
	start := time.Now()
	if err := Render(&buf, &Stored{Dir: "store/big/x", Info: &runstore.Record{Name: "big"}, Ops: ops, Result: &res}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("rendered %d ops in %s: %.1f MB", len(ops), took.Round(time.Millisecond), float64(buf.Len())/1e6)
	if mb := float64(buf.Len()) / 1e6; mb > 12 {
		t.Errorf("report of %d ops is %.1f MB, want it compact", len(ops), mb)
	}
}
