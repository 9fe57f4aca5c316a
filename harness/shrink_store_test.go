package harness

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/runstore"
)

// storedInvalidRun stores a run that failed the linearizable check, with
// an earlier shrink's result in RUN/shrink, and returns it.
func storedInvalidRun(t *testing.T) runstore.RunDir {
	t.Helper()
	dir, err := runstore.Create(t.TempDir(), "t", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Net = NetLoopback
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := runstore.WriteRecord(dir, &runstore.Record{Name: "t", Seed: 1, Config: cfgJSON, Network: NetLoopback}); err != nil {
		t.Fatal(err)
	}
	var res checker.Result
	res.Valid = checker.Invalid
	res.Checks.Linearizable.Valid = checker.Invalid
	if err := runstore.WriteJSON(dir.File(runstore.ResultsFile), &res); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir.File(runstore.ShrinkDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir.File(runstore.ShrinkDir, runstore.ShrinkSummaryFile), []byte("the last shrink\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// An interrupted shrink keeps the last shrink's result: it used to empty
// RUN/shrink before its first run.
func TestShrinkInterruptedKeepsTheLastResult(t *testing.T) {
	dir := storedInvalidRun(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Shrink(ctx, dir, ShrinkOptions{Tries: 1, Parallel: 1}, os.Stderr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shrink with a cancelled context = %v, want context.Canceled", err)
	}
	b, err := os.ReadFile(dir.File(runstore.ShrinkDir, runstore.ShrinkSummaryFile))
	if err != nil || string(b) != "the last shrink\n" {
		t.Fatalf("the last shrink's summary after an interrupted shrink: %q, %v", b, err)
	}
	if left, _ := filepath.Glob(dir.File(".shrink-*")); len(left) > 0 {
		t.Fatalf("the interrupted shrink left %v", left)
	}
}

// A stored run whose workload.jsonl is corrupt cannot be shrunk: a usage
// error (ErrNothingToShrink, exit 254), not a harness failure.
func TestShrinkCorruptWorkload(t *testing.T) {
	dir := storedInvalidRun(t)
	if err := os.WriteFile(dir.File(runstore.WorkloadFile), []byte("{\"client\":0,\"f\":\"set\"\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Shrink(context.Background(), dir, ShrinkOptions{Tries: 1, Parallel: 1}, os.Stderr)
	if !errors.Is(err, ErrNothingToShrink) {
		t.Fatalf("Shrink of a run with a corrupt workload.jsonl = %v, want ErrNothingToShrink", err)
	}
}

// Two shrinks of one run at once: the second is refused.
func TestShrinkBusy(t *testing.T) {
	dir := storedInvalidRun(t)
	aside, unlock, err := shrinkAside(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, _, err := shrinkAside(dir); !errors.Is(err, ErrShrinkBusy) {
		t.Fatalf("a second shrink's lock = %v, want ErrShrinkBusy", err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("the second shrink removed the first one's directory: %v", err)
	}
}

// replaceDir swaps a complete new directory in, with or without a last one.
func TestReplaceDir(t *testing.T) {
	root := t.TempDir()
	final := filepath.Join(root, "shrink")
	for i, content := range []string{"first", "second"} {
		aside := filepath.Join(root, "aside")
		if err := os.Mkdir(aside, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(aside, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := replaceDir(aside, final); err != nil {
			t.Fatalf("replace %d: %v", i, err)
		}
		if b, _ := os.ReadFile(filepath.Join(final, "f")); string(b) != content {
			t.Fatalf("after replace %d: %q", i, b)
		}
		if _, err := os.Stat(aside); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after replace %d the aside directory is still there: %v", i, err)
		}
	}
}
