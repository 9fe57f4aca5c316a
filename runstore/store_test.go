package runstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
)

var t0 = time.Date(2026, 11, 28, 3, 15, 2, 120e6, time.UTC)

func TestCreate(t *testing.T) {
	root := t.TempDir()
	a, err := Create(root, "alpha", t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "alpha", "20261128T031502.120Z"); string(a) != want {
		t.Fatalf("run dir %s, want %s", a, want)
	}
	for _, sub := range []string{NodesDir, DataDir} {
		if st, err := os.Stat(a.File(sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	// The same millisecond again: a distinct directory, and latest follows.
	b, err := Create(root, "alpha", t0)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(a)+"-1" {
		t.Errorf("second run in the same millisecond: %s", b)
	}
	if target, err := os.Readlink(filepath.Join(root, LatestLink)); err != nil || target != filepath.Join("alpha", "20261128T031502.120Z-1") {
		t.Errorf("latest -> %q, %v", target, err)
	}
	if got := b.NodeLog("n1"); got != filepath.Join(string(b), "nodes", "n1.log") {
		t.Errorf("NodeLog = %s", got)
	}
	if got := b.NodeData("n1"); got != filepath.Join(string(b), "data", "n1") {
		t.Errorf("NodeData = %s", got)
	}
	for _, name := range []string{"", "latest", "../x", "a/b", ".hidden", strings.Repeat("x", 101)} {
		if _, err := Create(root, name, t0); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir, err := Create(t.TempDir(), "r", t0)
	if err != nil {
		t.Fatal(err)
	}
	invalid := checker.Invalid
	want := &Record{
		Name: "r", Seed: 7, Config: []byte(`{"nodes":3}`), Command: []string{"ec-counter", "test"},
		Nodes:   map[string]NodeAddrs{"n1": {HTTP: "10.1.1.2:8080", Gossip: "10.1.1.2:7946"}},
		Start:   t0,
		Timings: &Timings{Startup: time.Second, Total: 5 * time.Second},
		Valid:   &invalid,
		Lab:     &Lab{ID: 3, Hosts: map[string]LabHost{"n1": {Addr: "10.3.1.2", NetNS: "net:[1]"}}},
	}
	if err := WriteRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seed != 7 || !strings.Contains(string(got.Config), `"nodes": 3`) || got.Nodes["n1"].Gossip != "10.1.1.2:7946" ||
		got.Timings.Total != 5*time.Second || *got.Valid != checker.Invalid || got.Lab.Hosts["n1"].NetNS != "net:[1]" || !got.Start.Equal(t0) {
		t.Errorf("read back %+v", got)
	}
	b, _ := os.ReadFile(dir.File(RecordFile))
	for _, key := range []string{`"startup_ns": 1000000000`, `"valid": false`, `"router_netns"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("run.json lacks %s:\n%s", key, b)
		}
	}
	os.WriteFile(dir.File(RecordFile), []byte(`{"name": "x", "seed": "not a number"}`), 0o644)
	if _, err := ReadRecord(dir); err == nil || !strings.Contains(err.Error(), RecordFile) {
		t.Errorf("a bad run.json: %v, want an error naming the file", err)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	run := func(name string, at time.Time, file string) string {
		d, err := Create(root, name, at)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(d.File(file), []byte("{}\n"), 0o644)
		return string(d)
	}
	valid := run("alpha", t0, ResultsFile)
	invalid := run("alpha", t0.Add(time.Minute), RecordFile)
	crashed := run("beta", t0.Add(2*time.Minute), HistoryFile)
	notRun := filepath.Join(root, "alpha", "not-a-run")
	os.MkdirAll(notRun, 0o755)
	for _, c := range []struct{ ref, want string }{
		{"latest", crashed},
		{"alpha", invalid}, // the newest of the test
		{"beta", crashed},
		{"alpha/20261128T031502.120Z", valid},
		{"20261128T031602", invalid}, // a unique timestamp prefix
		{valid, valid},
		{filepath.Join(valid, ResultsFile), valid},
	} {
		got, err := Find(root, c.ref)
		if err != nil || string(got) != c.want {
			t.Errorf("Find(%q) = %q, %v; want %q", c.ref, got, err, c.want)
		}
	}
	for _, ref := range []string{"", "nope", "2026", "alpha/nope", "../x", root, notRun} {
		if got, err := Find(root, ref); err == nil {
			t.Errorf("Find(%q) = %q, want an error", ref, got)
		}
	}
	paths, err := RunPaths(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	want := []string{"alpha/20261128T031502.120Z", "alpha/20261128T031602.120Z", "alpha/not-a-run", "beta/20261128T031702.120Z"}
	if !slices.Equal(paths, want) {
		t.Errorf("RunPaths = %q, want %q", paths, want)
	}
	if _, err := RunPaths(filepath.Join(root, "missing")); err == nil {
		t.Error("RunPaths of a missing store succeeded")
	}
}

func TestFindHistory(t *testing.T) {
	root := t.TempDir()
	d, _ := Create(root, "h", t0)
	os.WriteFile(d.File(HistoryFile), nil, 0o644)
	if got, err := FindHistory(string(d)); err != nil || got != d.File(HistoryFile) {
		t.Errorf("FindHistory(run dir) = %q, %v", got, err)
	}
	if got, err := FindHistory(d.File(HistoryFile)); err != nil || got != d.File(HistoryFile) {
		t.Errorf("FindHistory(file) = %q, %v", got, err)
	}
	if _, err := FindHistory(root); err == nil {
		t.Error("FindHistory of a directory without a history succeeded")
	}
}

// A run's JSON files are read within a bound whatever they are: a symlink
// to a device that never ends, a huge file, a FIFO nobody writes to. Each
// is a clear error within a few seconds, not gigabytes or a hang.
func TestReadJSONIsBounded(t *testing.T) {
	dir := RunDir(t.TempDir())
	if err := os.Symlink("/dev/zero", dir.File(RecordFile)); err != nil {
		t.Fatal(err)
	}
	huge, err := os.Create(dir.File(ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := huge.Truncate(1 << 30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	huge.Close()
	began := time.Now()
	if _, err := ReadRecord(dir); err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), RecordFile) {
		t.Errorf("ReadRecord of /dev/zero = %v, want a refusal naming %s", err, RecordFile)
	}
	if _, err := ReadResults(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ReadResults of a 1 GiB file = %v, want a refusal", err)
	}
	fifo := RunDir(t.TempDir())
	if err := syscall.Mkfifo(fifo.File(RecordFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(fifo); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("ReadRecord of a FIFO without writer = %v, want empty", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("reading took %s", d)
	}
}

// A history that is a FIFO nobody writes to opens at once and reads as
// empty: check and serve must not hang on it.
func TestOpenHistoryFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), HistoryFile)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := OpenHistory(p)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(r)
			r.Close()
			if err == nil && len(b) > 0 {
				err = fmt.Errorf("read %q", b)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("OpenHistory(FIFO): %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("OpenHistory(FIFO) still reading after 3s")
	}
}
