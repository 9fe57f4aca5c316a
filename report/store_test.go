package report

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/runstore"
)

// testStore holds one run of each kind: valid (with faults), invalid (with
// a bug), crashed, and incomplete (run.json without end or results).
func testStore(t *testing.T) (root string, dirs map[string]string) {
	t.Helper()
	root = t.TempDir()
	dirs = map[string]string{
		"valid":   writeRun(t, root, "alpha", t0, synth{seed: 1, nodes: 3, clients: 4, ops: 600, faults: true}, false),
		"invalid": writeRun(t, root, "alpha", t0.Add(time.Minute), synth{seed: 2, nodes: 3, clients: 4, ops: 600, bug: true}, false),
		"crashed": writeRun(t, root, "beta", t0.Add(2*time.Minute), synth{seed: 3, nodes: 3, clients: 4, ops: 600}, true),
	}
	run, err := runstore.Create(root, "gamma", t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	writeJSONFile(t, run.File(runstore.RecordFile), map[string]any{"name": "gamma", "seed": 4, "start": t0.Add(3 * time.Minute)})
	os.WriteFile(run.File(runstore.HistoryFile), []byte(`{"index":0,"time":5,"type":"invoke","process":0,"f":"get","node":"n1"}`+"\n"), 0o644)
	dirs["incomplete"] = string(run)
	os.MkdirAll(filepath.Join(root, "alpha", "not-a-run"), 0o755) // ignored: no run files
	os.WriteFile(filepath.Join(root, "stray.txt"), []byte("x"), 0o644)
	return root, dirs
}

func TestList(t *testing.T) {
	root, dirs := testStore(t)
	runs, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Name+" "+r.Verdict)
	}
	want := []string{"gamma incomplete", "beta crashed", "alpha invalid", "alpha valid"} // newest first
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	byVerdict := map[string]RunSummary{}
	for _, r := range runs {
		byVerdict[r.Verdict] = r
	}
	v := byVerdict["valid"]
	if v.Dir != dirs["valid"] || v.Path != "alpha/20261128T031502.120Z" || v.Seed != 1 || !v.Start.Equal(t0) {
		t.Errorf("valid run: %+v", v)
	}
	if v.Nemesis != "partition,kill,pause,link" || v.Bug != "" || v.Ops != len(synth{seed: 1, nodes: 3, clients: 4, ops: 600, faults: true}.history()) {
		t.Errorf("valid run: nemesis %q, bug %q, ops %d", v.Nemesis, v.Bug, v.Ops)
	}
	if !slices.Equal(v.NodeLogs, []string{"n1.log", "n2.log", "n3.log"}) {
		t.Errorf("node logs %q", v.NodeLogs)
	}
	if !slices.Contains(v.Files, runstore.ResultsFile) || slices.Contains(v.Files, runstore.ReportFile) {
		t.Errorf("files %q", v.Files)
	}
	if b := byVerdict["invalid"]; b.Bug != "stale-read" || b.Anomalies == 0 {
		t.Errorf("invalid run: bug %q, %d anomalies", b.Bug, b.Anomalies)
	}
	c := byVerdict["crashed"]
	if c.Error == "" || c.Ops == 0 || slices.Contains(c.Files, runstore.ResultsFile) {
		t.Errorf("crashed run: %+v", c)
	}
	if i := byVerdict["incomplete"]; i.Ops != 1 || i.Seed != 4 {
		t.Errorf("incomplete run: %+v", i)
	}

	if _, err := List(filepath.Join(root, "missing")); err == nil {
		t.Error("List of a missing store succeeded")
	}
}

func TestListerCacheFollowsChanges(t *testing.T) {
	root, dirs := testStore(t)
	l := newLister(root)
	if _, err := l.list(); err != nil {
		t.Fatal(err)
	}
	// The incomplete run finishes: its results appear.
	res := filepath.Join(dirs["invalid"], runstore.ResultsFile)
	b, _ := os.ReadFile(res)
	os.WriteFile(filepath.Join(dirs["incomplete"], runstore.ResultsFile), b, 0o644)
	runs, _ := l.list()
	for _, r := range runs {
		if r.Name == "gamma" && r.Verdict != "invalid" {
			t.Errorf("after results appeared, gamma is %s", r.Verdict)
		}
	}
	os.RemoveAll(dirs["crashed"])
	runs, _ = l.list()
	if len(runs) != 3 || len(l.cache) != 3 {
		t.Errorf("after a run was removed: %d runs, %d cached", len(runs), len(l.cache))
	}
}

func TestWriteTable(t *testing.T) {
	root, _ := testStore(t)
	runs, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{"gamma", "incomplete", "crashed", "invalid (", "partition,kill,pause,link", "bug=stale-read", "2026-11-28 03:15:02Z"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteText(t *testing.T) {
	_, dirs := testStore(t)
	for verdict, dir := range dirs {
		r, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := r.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if !strings.Contains(s, "verdict:  "+strings.ToUpper(verdict)) || !strings.Contains(s, "checks:") {
			t.Errorf("%s run's text:\n%s", verdict, s)
		}
		if verdict == "invalid" && (!strings.Contains(s, "anomalies (") || !strings.Contains(s, "[linearizable]") || !strings.Contains(s, "- op ")) {
			t.Errorf("invalid run's text lacks its anomalies:\n%s", s)
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	names := []string{"n10", "n2", "n1", "a", "n02", "m3"}
	slices.SortFunc(names, naturalCompare)
	if want := []string{"a", "m3", "n1", "n2", "n02", "n10"}; !slices.Equal(names, want) {
		t.Errorf("sorted %q, want %q", names, want)
	}
}

func TestWriteTableBoundsCells(t *testing.T) {
	var b strings.Builder
	huge := strings.Repeat("x", 20<<20)
	if err := WriteTable(&b, []RunSummary{{Name: huge, Verdict: "valid\x1b[2J", Dir: "d"}}); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 1000 {
		t.Errorf("a run with a 20 MB name printed %d bytes", b.Len())
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("a control character reached the terminal")
	}
}
