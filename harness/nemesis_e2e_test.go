package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

// parallelRuns runs fn for each item on up to width goroutines: runs of a
// 3-node cluster at 10 requests per second leave the machine mostly idle,
// so running a few side by side keeps the suite short.
func parallelRuns[T any](items []T, width int, fn func(T)) {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(it)
		}()
	}
	wg.Wait()
}

// TestNemesisKindsPassOnTheCorrectServer runs every fault kind over five
// seeds, and all four together over ten: the correct server must pass every
// check, and each run's history must hold the ops of every kind asked for.
func TestNemesisKindsPassOnTheCorrectServer(t *testing.T) {
	bin, _ := buildBinaries(t)
	type job struct {
		kinds string
		seed  int
	}
	wantFs := map[string][]string{
		"partition": {"start-partition", "stop-partition"},
		"delay":     {"start-link", "stop-link"},
		"kill":      {"kill", "restart"},
		"pause":     {"pause", "resume"},
	}
	var jobs []job
	for _, kinds := range []string{"partition", "delay", "kill", "pause"} {
		for seed := 1; seed <= 5; seed++ {
			jobs = append(jobs, job{kinds, seed})
		}
	}
	// Combined kinds take turns: a default-length run injects all four.
	for seed := 1; seed <= 10; seed++ {
		jobs = append(jobs, job{"partition,delay,kill,pause", seed})
	}
	parallelRuns(jobs, 5, func(j job) {
		root := filepath.Join(t.TempDir(), "store")
		// The loopback network: faults inside the nodes, through the admin
		// API (the lab's are in lab_e2e_test.go).
		requests := "80"
		if strings.Contains(j.kinds, ",") {
			requests = "100" // the default run
		}
		code, out := runCLI(t, bin, "test", "--net", "loopback", "--store", root, "--nemesis", j.kinds, "--nemesis-interval", "2s",
			"--seed", fmt.Sprint(j.seed), "--requests", requests)
		if code != 0 {
			t.Errorf("--nemesis %s --seed %d: exit %d, want 0:\n%s", j.kinds, j.seed, code, out)
			return
		}
		r, err := loadRun(root)
		if err != nil {
			t.Errorf("--nemesis %s --seed %d: %v", j.kinds, j.seed, err)
			return
		}
		n := countOps(r.ops)
		// Durability under kills with sets in flight: no acknowledged set may
		// be above the converged value.
		conv, _ := r.results["checks"].(map[string]any)["convergence"].(map[string]any)
		if lost, _ := conv["lost_write_count"].(float64); conv == nil || lost != 0 || n["ok set"] == 0 {
			t.Errorf("--nemesis %s --seed %d: %v lost acknowledged writes (%d ok sets)", j.kinds, j.seed, conv["lost_write_count"], n["ok set"])
		}
		for _, kind := range strings.Split(j.kinds, ",") {
			for _, f := range wantFs[kind] {
				if n["info "+f] == 0 {
					t.Errorf("--nemesis %s --seed %d: no %s op in the history", j.kinds, j.seed, f)
				}
			}
		}
	})
}

// TestLongPartitionConverges holds a partition for 35 s, longer than
// memberlist's dead-node reaping, and checks the cluster converges after
// the heal (the rejoin loop's job).
func TestLongPartitionConverges(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	sched := filepath.Join(dir, "schedule.txt")
	os.WriteFile(sched, []byte("1s start-partition halves\n37s stop-partition\n"), 0o644)
	root := filepath.Join(dir, "store")
	code, out := runCLI(t, bin, "test", "--store", root, "--nemesis-schedule", sched, "--rate", "2", "--requests", "80")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readRun(t, root)
	var start, stop int64 = -1, -1
	for _, op := range r.ops {
		switch op.F {
		case "start-partition":
			start = op.Time
		case "stop-partition":
			stop = op.Time
		}
	}
	if start < 0 || stop < 0 || time.Duration(stop-start) < 35*time.Second {
		t.Fatalf("partition from %d to %d: want it held at least 35 s", start, stop)
	}
	// Both sides declared the other failed: the partition really outlasted
	// memberlist's failure detection.
	log, _ := os.ReadFile(filepath.Join(r.dir, "nodes", "n1.log"))
	if !bytes.Contains(log, []byte("failed")) && !bytes.Contains(log, []byte("dead")) {
		t.Errorf("n1 never marked a peer failed during a 35 s partition; log:\n%s", log)
	}
	conv := r.results["checks"].(map[string]any)["convergence"].(map[string]any)
	if conv["valid"] != true {
		t.Errorf("convergence: %v", conv)
	}
}

// TestSameSeedReplaysSameFaultsAndOps runs twice with one seed and checks
// that both record the same nemesis actions and the same client requests.
func TestSameSeedReplaysSameFaultsAndOps(t *testing.T) {
	bin, _ := buildBinaries(t)
	var runs [2]storedRun
	parallelRuns([]int{0, 1}, 2, func(i int) {
		root := filepath.Join(t.TempDir(), "store")
		code, out := runCLI(t, bin, "test", "--store", root, "--seed", "99", "--nemesis", "partition,delay,kill,pause",
			"--nemesis-interval", "1s", "--requests", "50", "--rate", "20")
		if code != 0 {
			t.Errorf("run %d: exit %d\n%s", i, code, out)
			return
		}
		r, err := loadRun(root)
		if err != nil {
			t.Errorf("run %d: %v", i, err)
			return
		}
		runs[i] = r
	})
	if t.Failed() {
		return
	}
	// f and value only: the error ("unreachable: n2") depends on timing,
	// e.g. a node paused at that moment. Values are objects (a grudge, a
	// link fault) or node lists.
	nemesisOps := func(r storedRun) []string {
		var out []string
		for _, op := range r.ops {
			if op.Process == histories.Nemesis {
				var v any
				if err := json.Unmarshal(op.Value, &v); err != nil {
					t.Errorf("nemesis op %d: value %s: %v", op.Index, op.Value, err)
				}
				b, _ := json.Marshal(v)
				out = append(out, op.F+" "+string(b))
			}
		}
		return out
	}
	clientOps := func(r storedRun) []string {
		var out []string
		for _, op := range r.ops {
			if op.Type == histories.Invoke && (op.F == histories.FGet || op.F == histories.FSet) {
				out = append(out, op.Node+" "+op.F+" "+string(op.Value))
			}
		}
		slices.Sort(out)
		return out
	}
	a, b := nemesisOps(runs[0]), nemesisOps(runs[1])
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Errorf("nemesis ops differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if !reflect.DeepEqual(clientOps(runs[0]), clientOps(runs[1])) {
		t.Error("client requests differ between two runs of one seed")
	}
	if runs[0].record["nemesis_schedule"] != runs[1].record["nemesis_schedule"] {
		t.Errorf("schedules differ:\n%v\n---\n%v", runs[0].record["nemesis_schedule"], runs[1].record["nemesis_schedule"])
	}
}

// TestInterruptDuringPartition sends Ctrl-C while a partition is in force:
// no process may remain, and the next run starts clean and passes.
func TestInterruptDuringPartition(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	sched := filepath.Join(dir, "schedule.txt")
	os.WriteFile(sched, []byte("200ms start-partition isolate n1\n"), 0o644)
	root := filepath.Join(dir, "store")
	run := startCLI(t, bin, "test", "--store", root, "--nemesis-schedule", sched)
	run.waitOutput(t, "start-partition")
	run.cmd.Process.Signal(syscall.SIGINT)
	err := run.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Errorf("interrupted run: %v, want exit 255\n%s", err, run.output())
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(nodeProcesses(t, root)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node processes remain after Ctrl-C: %v", nodeProcesses(t, root))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--requests", "20", "--rate", "50"); code != 0 {
		t.Fatalf("the next run: exit %d\n%s", code, out)
	}
}

func TestBadScheduleIsUsageError(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	sched := filepath.Join(dir, "schedule.txt")
	os.WriteFile(sched, []byte("1s start-partition isolate n9\n"), 0o644)
	for _, args := range [][]string{
		{"--nemesis-schedule", sched},
		{"--nemesis", "partition,earthquake"},
		{"--nemesis", "partition", "--nemesis-interval", "0s"},
	} {
		code, out := runCLI(t, bin, append([]string{"test", "--store", filepath.Join(dir, "store")}, args...)...)
		if code != 254 {
			t.Errorf("%v: exit %d, want 254\n%s", args, code, out)
		}
	}
}
