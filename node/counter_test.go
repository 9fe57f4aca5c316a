package node

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openTestCounter(t testing.TB, dir string) *durableCounter {
	t.Helper()
	s, err := openCounter(dir, testLogger(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCounterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestCounter(t, dir)
	if v := s.get(); v != 0 {
		t.Fatalf("empty dir: %d, want 0", v)
	}
	for _, v := range []int64{-5, 7, 3, math.MaxInt64 - 1} {
		if _, _, err := s.set(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	s.merge(math.MaxInt64) // pending only: written by close's final flush
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.set(context.Background(), 1); !errors.Is(err, errClosed) {
		t.Errorf("set after close: %v, want errClosed", err)
	}
	s = openTestCounter(t, dir)
	defer s.close()
	if v := s.get(); v != math.MaxInt64 {
		t.Errorf("after restart: %d, want %d", v, int64(math.MaxInt64))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, stateFile)); string(b) != "9223372036854775807\n" {
		t.Errorf("state file %q", b)
	}
}

func TestCounterRefusesCorruptFile(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "12", "12\n\n", "x\n", "1.5\n", "99999999999999999999\n", " 12\n"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := openCounter(dir, testLogger(t), nil, nil)
		if err == nil {
			s.close()
			t.Errorf("state file %q accepted", content)
			continue
		}
		if !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("state file %q: error %q does not say corrupt", content, err)
		}
	}
}

func TestCounterSetHonoursContext(t *testing.T) {
	t.Parallel()
	s := openTestCounter(t, t.TempDir())
	defer s.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A cancelled set may still apply (its outcome is unknown to the
	// client), but it must return.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = s.set(ctx, 3)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("set with a cancelled context did not return")
	}
}

func TestCounterWriteFailure(t *testing.T) {
	t.Parallel()
	// A directory in the way of the state file makes writes fail: the
	// rename of the temporary file over it does (even for root, who
	// ignores permissions).
	dir := t.TempDir()
	s := openTestCounter(t, dir)
	state := filepath.Join(dir, stateFile)
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, applied, err := s.set(ctx, 9); err == nil || errors.Is(err, context.DeadlineExceeded) || !applied {
		t.Fatalf("set with a failing disk: applied %v err %v, want applied and a write error", applied, err)
	}
	s.merge(12)
	time.Sleep(100 * time.Millisecond) // a few failed retries
	if v := s.get(); v != 0 {
		t.Errorf("value %d visible although it is not durable", v)
	}
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
		t.Errorf("state file replaced by a failed write: %v", err)
	}
	// Once the disk works again the persister's retry makes it durable.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "retry to succeed", func() bool { return s.get() == 12 })
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if v := readStateOrFail(t, dir); v != 12 {
		t.Errorf("state file holds %d, want 12", v)
	}
	// The failed writes left no temporary file behind.
	if names := dirNames(t, dir); !slices.Equal(names, []string{stateFile}) {
		t.Errorf("data directory holds %v, want only %s", names, stateFile)
	}
}

// TestCounterRemovesLeftoverTemps: the temporary files of writes a crash
// interrupted are removed when the counter opens, and are never read as
// the state; other files are left alone.
func TestCounterRemovesLeftoverTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		stateFile:                    "7\n",
		"." + stateFile + "-1.tmp":   "99\n",
		"." + stateFile + "-abc.tmp": "9",
		stateFile + ".tmp":           "98\n", // the name nodes used before atomicfile
		"other":                      "x",
		"." + stateFile + "-1.bak":   "x",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestCounter(t, dir)
	defer s.close()
	if v := s.get(); v != 7 {
		t.Errorf("value %d, want 7 from the state file", v)
	}
	if names, want := dirNames(t, dir), []string{"." + stateFile + "-1.bak", stateFile, "other"}; !slices.Equal(names, want) {
		t.Errorf("data directory holds %v, want %v", names, want)
	}
}

// dirNames lists dir's entries, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	const n = 200
	s := openTestCounter(t, t.TempDir())
	defer s.close()
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		applied atomic.Int64
	)
	for i := range n {
		wg.Go(func() {
			<-start
			v, ok, err := s.set(context.Background(), int64(i+1))
			if err != nil {
				t.Error(err)
				return
			}
			if v < int64(i+1) {
				t.Errorf("set %d returned %d", i+1, v)
			}
			if ok {
				applied.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	writes := s.writes.Load()
	t.Logf("%d concurrent sets (%d applied): %d writes", n, applied.Load(), writes)
	if s.get() != n {
		t.Errorf("value %d, want %d", s.get(), n)
	}
	if writes > n/4 {
		t.Errorf("%d sets took %d writes: group commit does not share fsyncs", n, writes)
	}
}

// BenchmarkSetParallel measures sets of rising values from many goroutines
// through the group-committing counter.
func BenchmarkSetParallel(b *testing.B) {
	s := openTestCounter(b, b.TempDir())
	defer s.close()
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.set(context.Background(), next.Add(1)); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(s.writes.Load()), "sets/fsync")
}

// BenchmarkSetParallelFsyncEach is the baseline for BenchmarkSetParallel:
// the same load, but every set writes and fsyncs on its own.
func BenchmarkSetParallelFsyncEach(b *testing.B) {
	dir := b.TempDir()
	var (
		mu    sync.Mutex
		value int64
		next  atomic.Int64
	)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v := next.Add(1)
			mu.Lock()
			value = max(value, v)
			err := writeState(dir, value, nil)
			mu.Unlock()
			if err != nil {
				b.Error(err)
			}
		}
	})
}

func readStateOrFail(t *testing.T, dir string) int64 {
	t.Helper()
	v, err := readState(filepath.Join(dir, stateFile), false)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
