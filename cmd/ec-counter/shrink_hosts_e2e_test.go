package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/internal/labhosts"
	"github.com/ec-counter/ec-counter/runstore"
)

// TestHostsShrink shrinks an invalid run made on SSH hosts, on the same
// hosts: it used to be refused with "--net must be auto, lab or loopback,
// got hosts", though the README says such runs can be shrunk.
func TestHostsShrink(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	store := t.TempDir()
	sched := filepath.Join(t.TempDir(), "schedule.txt")
	if err := os.WriteFile(sched, []byte("0.5s kill all\n0.8s restart all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", store, "--seed", "1", "--bug", "no-persist",
		"--nemesis-schedule", sched, "--clients", "3", "--requests", "20", "--rate", "20", "--values", "small")
	if code != 1 {
		t.Fatalf("the original run: exit %d, want 1 (invalid):\n%s", code, out)
	}
	code, out = ecCounter(t, "shrink", "--store", store, "--budget", "60s", "--tries", "1", "latest")
	if code != 0 {
		t.Fatalf("shrink of a run on SSH hosts: exit %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "one run at a time") || !strings.Contains(out, "replay: ") {
		t.Errorf("shrink's output lacks the hosts note or the replay line:\n%s", out)
	}
	run, err := runstore.Find(store, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run.File(runstore.ShrinkDir, runstore.ShrinkSummaryFile)); err != nil {
		t.Errorf("no RUN/shrink/summary.txt: %v", err)
	}
	if left := hostsLeftovers(t, hostsFile); len(left) > 0 {
		t.Errorf("the shrink left on the hosts: %v", left)
	}
}
