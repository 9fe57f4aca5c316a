package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/runstore"
	"github.com/ec-counter/ec-counter/workload"
)

// TestShrinkNoPersist shrinks a no-persist run (a node that forgets its
// value on restart) under a 4-step schedule to a smaller case that fails
// the same check, and replays it: the shrunk case keeps only the restart
// that matters, fewer requests, and fails again.
func TestShrinkNoPersist(t *testing.T) {
	bin, _ := buildBinaries(t)
	store := t.TempDir()
	sched := filepath.Join(t.TempDir(), "schedule.txt")
	if err := os.WriteFile(sched, []byte("0.4s start-partition isolate n1\n0.8s stop-partition\n1.2s kill all\n1.5s restart all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, bin, "test", "--bug", "no-persist", "--nemesis-schedule", sched, "--clients", "3", "--requests", "40", "--rate", "20",
		"--values", "small", "--store", store)
	if code != 1 {
		t.Fatalf("the original run: exit %d, want 1 (invalid):\n%s", code, out)
	}
	code, out = runCLI(t, bin, "shrink", "--store", store, "--budget", "150s", "--tries", "2", "--parallel", "4", "latest")
	if code != 0 {
		t.Fatalf("shrink: exit %d, want 0:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "replay: ") || !strings.Contains(last, "--workload") || !strings.Contains(last, "--nemesis-schedule") {
		t.Fatalf("the last line is not the replay command: %q\n%s", last, out)
	}
	run, err := runstore.Find(store, "latest")
	if err != nil {
		t.Fatal(err)
	}
	dir := run.File(runstore.ShrinkDir)
	steps := readSchedule(t, filepath.Join(dir, runstore.ScheduleFile))
	if len(steps) >= 4 {
		t.Errorf("shrunk schedule keeps %d of 4 steps:\n%s", len(steps), nemesis.Schedule(steps))
	}
	f, err := os.Open(filepath.Join(dir, runstore.WorkloadFile))
	if err != nil {
		t.Fatal(err)
	}
	w, err := workload.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(w) >= 120 {
		t.Errorf("the shrunk workload keeps %d of 120 requests", len(w))
	}
	summary, err := os.ReadFile(filepath.Join(dir, runstore.ShrinkSummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"original: 4 steps, 3 clients, 120 requests, 3 nodes", "shrunk:", "fails:", "replay:"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary.txt lacks %q:\n%s", want, summary)
		}
	}
	// The kept run is the shrunk case's, and failed the check.
	res, err := runstore.ReadResults(runstore.RunDir(filepath.Join(dir, "run")))
	if err != nil {
		t.Fatalf("no kept failing run: %v", err)
	}
	if b, _ := json.Marshal(res.Valid); string(b) != "false" {
		t.Errorf("the kept run is %s, want invalid", res.Valid)
	}
	// show of the original names the shrunk case.
	if code, out := runCLI(t, bin, "show", "--store", store, "latest"); code != 0 || !strings.Contains(out, "shrunk") {
		t.Errorf("show: exit %d, no mention of the shrunk case:\n%s", code, out)
	}
	// The replay command fails again.
	args := strings.Fields(strings.TrimPrefix(last, "replay: "))
	if args[0] != "ec-counter" {
		t.Fatalf("replay %q", last)
	}
	if code, out := runCLI(t, bin, args[1:]...); code != 1 {
		t.Errorf("the replay: exit %d, want 1:\n%s", code, out)
	}
}

// TestShrinkRefuses: a valid run has nothing to shrink (254), and a run
// whose failure does not come back (here: a valid run whose results were
// edited to invalid) is not reproduced (1).
func TestShrinkRefuses(t *testing.T) {
	bin, _ := buildBinaries(t)
	store := t.TempDir()
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--clients", "2", "--requests", "10", "--rate", "20", "--store", store)
	if code != 0 {
		t.Fatalf("a valid run: exit %d:\n%s", code, out)
	}
	code, out = runCLI(t, bin, "shrink", "--store", store, "latest")
	if code != 254 || !strings.Contains(out, "not invalid") {
		t.Errorf("shrink of a valid run: exit %d, want 254 saying it is not invalid:\n%s", code, out)
	}
	run, err := runstore.Find(store, "latest")
	if err != nil {
		t.Fatal(err)
	}
	res, err := runstore.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	res.Valid = checker.Invalid
	res.Checks.Session.Valid = checker.Invalid
	if err := runstore.WriteJSON(run.File(runstore.ResultsFile), res); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, bin, "shrink", "--store", store, "--tries", "2", "latest")
	if code != 1 || !strings.Contains(out, "did not reproduce") {
		t.Errorf("shrink of an unreproducible run: exit %d, want 1 saying so:\n%s", code, out)
	}
}

func readSchedule(t *testing.T, path string) nemesis.Schedule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := nemesis.ParseSchedule(strings.NewReader(string(b)), nodeNames(3), 1)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}
