package report

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/runstore"
)

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still going after %s", what, d)
	}
}

// hugeFile makes a sparse file of n bytes at path.
func hugeFile(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
}

// hostileStore holds, besides testStore's runs, a run whose files are
// endless devices and huge files, and one whose history is a FIFO nobody
// writes to.
func hostileStore(t *testing.T) (root, zero, fifo string) {
	t.Helper()
	root, _ = testStore(t)
	z, err := runstore.Create(root, "zero", t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{runstore.RecordFile, runstore.HistoryFile} {
		if err := os.Symlink("/dev/zero", z.File(f)); err != nil {
			t.Fatal(err)
		}
	}
	hugeFile(t, z.File(runstore.ResultsFile), 1<<30)
	p, err := runstore.Create(root, "fifo", t0.Add(6*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p.File(runstore.HistoryFile), 0o600); err != nil {
		t.Fatal(err)
	}
	writeJSONFile(t, p.File(runstore.RecordFile), map[string]any{"name": "fifo", "seed": 7, "start": t0.Add(6 * time.Minute)})
	return root, string(z), string(p)
}

// Listing a store reads every file within a bound: endless devices, huge
// files and FIFOs make notes, not gigabytes or a hang.
func TestListBoundsReads(t *testing.T) {
	root, zero, _ := hostileStore(t)
	var runs []RunSummary
	var err error
	within(t, 10*time.Second, "List", func() { runs, err = List(root) })
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]RunSummary{}
	for _, r := range runs {
		byName[r.Name] = r
	}
	z := byName["zero"]
	notes := strings.Join(z.Notes, "\n")
	for _, f := range []string{runstore.RecordFile, runstore.ResultsFile, runstore.HistoryFile} {
		if !strings.Contains(notes, filepath.Join(zero, f)) {
			t.Errorf("the /dev/zero run's notes do not name its %s:\n%s", f, notes)
		}
	}
	if f, ok := byName["fifo"]; !ok || f.Seed != 7 || f.Ops != 0 {
		t.Errorf("the FIFO run: %+v", f)
	}
	var b strings.Builder
	if err := WriteTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "larger than") || b.Len() > 10000 {
		t.Errorf("the table does not note the refused files, or is %d bytes:\n%.3000s", b.Len(), b.String())
	}
}

// Loading a run (show, report.html) reads every file within a bound too.
func TestLoadBoundsReads(t *testing.T) {
	_, zero, fifo := hostileStore(t)
	within(t, 10*time.Second, "Load", func() {
		r, err := Load(zero)
		if err != nil {
			t.Errorf("Load(/dev/zero run): %v", err)
			return
		}
		notes := strings.Join(r.Notes, "\n")
		if !strings.Contains(notes, "larger than") || !strings.Contains(notes, runstore.HistoryFile) {
			t.Errorf("Load(/dev/zero run) notes:\n%s", notes)
		}
		if r, err := Load(fifo); err != nil || r.Info == nil || len(r.Ops) != 0 {
			t.Errorf("Load(FIFO run) = %+v, %v", r, err)
		}
	})
}

// show prints what comes from the store escaped and clipped, as runs
// does: no escape sequence reaches the terminal, no field floods it.
func TestWriteTextEscapesAndClips(t *testing.T) {
	root := t.TempDir()
	dir := writeRun(t, root, "alpha", t0, synth{seed: 2, nodes: 3, clients: 4, ops: 600, bug: true}, false)
	// The shrink summary is read within a bound too.
	os.MkdirAll(filepath.Join(dir, runstore.ShrinkDir), 0o755)
	os.Symlink("/dev/zero", filepath.Join(dir, runstore.ShrinkDir, runstore.ShrinkSummaryFile))
	r, err := Load(dir)
	if err != nil || r.Info == nil || r.Result == nil || len(r.Result.Anomalies) == 0 {
		t.Fatalf("Load: %v", err)
	}
	huge := strings.Repeat("y", 5<<20)
	evil := "\x1b]0;pwned\x07\x1b[2J\r\x9b"
	r.Info.Name = "alpha" + evil + huge
	r.Info.Version = evil
	r.Info.Error = "boom" + evil + huge
	r.Info.Replay = `ec-counter test --node-cmd 'n "{name}" \x' ` + evil
	r.Info.Unclean = []string{"n1" + evil, huge}
	r.Info.Config = []byte(`{"nemesis":["partition` + evil + huge + `"],"bug":"` + strings.ReplaceAll(evil, "\x1b", `\u001b`) + `"}`)
	r.Notes = append(r.Notes, "note"+evil+huge)
	a := &r.Result.Anomalies[0]
	a.Message += evil + huge
	a.Expected = evil + huge
	a.Check += evil
	a.Ops[0].Node = "n1" + evil + huge
	var b strings.Builder
	within(t, 10*time.Second, "WriteText", func() {
		if err := r.WriteText(&b); err != nil {
			t.Error(err)
		}
	})
	out := b.String()
	for i, c := range out {
		if c != '\n' && (c < ' ' || c == 0x7f || c >= 0x80 && c < 0xa0) {
			t.Fatalf("a control character %q at byte %d reached the terminal:\n%.300s", c, i, out[max(0, i-100):])
		}
	}
	if len(out) > 40<<10 {
		t.Errorf("show printed %d bytes for fields of megabytes", len(out))
	}
	for _, want := range []string{`\x1b]0;pwned\a`, `'n "{name}" \x'`, "yyy..."} {
		if !strings.Contains(out, want) {
			t.Errorf("show does not print %q:\n%.2000s", want, out)
		}
	}
}
