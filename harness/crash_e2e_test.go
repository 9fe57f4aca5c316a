package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/labtest"
	"github.com/ec-counter/ec-counter/runstore"
)

// crashOps returns the crash ops of a history, with what each says was
// lost.
func crashOps(t *testing.T, ops []histories.Op) []crashValueJSON {
	t.Helper()
	var out []crashValueJSON
	for _, op := range ops {
		if op.Process != histories.Nemesis || op.F != "crash" {
			continue
		}
		var v crashValueJSON
		if err := json.Unmarshal(op.Value, &v); err != nil {
			t.Fatalf("crash op %d: value %s: %v", op.Index, op.Value, err)
		}
		if op.Error != "" {
			t.Errorf("crash op %d failed: %s", op.Index, op.Error)
		}
		out = append(out, v)
	}
	return out
}

type crashValueJSON struct {
	Nodes []string `json:"nodes"`
	Lost  map[string]struct {
		Writes, Bytes, Entries int
	} `json:"lost"`
}

// TestCrashCorrectNodePasses crashes the correct node under load, alone
// and mixed with partitions and kills: every run must be valid (no
// acknowledged write lost), record its crashes, leave the durable state in
// data/<name>/ and no mountpoint behind.
func TestCrashCorrectNodePasses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	bin, _ := buildBinaries(t)
	labtest.Need(t)
	for _, c := range []struct{ name, nemesis, seed string }{
		{"crash", "crash", "1"},
		{"mixed", "crash,partition,kill", "2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			code, out := runCLI(t, bin, "test", "--store", root, "--nemesis", c.nemesis, "--nemesis-interval", "700ms",
				"--seed", c.seed, "--rate", "40", "--requests", "200")
			if code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, out)
			}
			r := readRun(t, root)
			crashes := crashOps(t, r.ops)
			if len(crashes) == 0 {
				t.Fatalf("no crash op recorded\n%s", out)
			}
			if r.record["disk"] != DiskLazy {
				t.Errorf("run.json disk = %v, want lazy", r.record["disk"])
			}
			for _, cr := range crashes {
				for _, n := range cr.Nodes {
					if _, ok := cr.Lost[n]; !ok {
						t.Errorf("crash of %v does not say what %s lost: %+v", cr.Nodes, n, cr)
					}
				}
			}
			// The durable state is in data/<name>: the node's final value.
			final := finalValue(t, r.ops)
			for _, n := range []string{"n1", "n2", "n3"} {
				b, err := os.ReadFile(filepath.Join(r.dir, runstore.DataDir, n, "counter"))
				if err != nil {
					t.Fatalf("durable state of %s: %v", n, err)
				}
				if got, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || got != final {
					t.Errorf("%s's durable state holds %q, want the converged value %d", n, b, final)
				}
			}
			if _, err := os.Stat(filepath.Join(r.dir, runstore.MountsDir)); !os.IsNotExist(err) {
				t.Errorf("the mountpoints are still there after the run: %v", err)
			}
		})
	}
}

// finalValue returns the value of the history's last ok final-get.
func finalValue(t *testing.T, ops []histories.Op) int64 {
	t.Helper()
	for i := len(ops) - 1; i >= 0; i-- {
		if op := ops[i]; op.F == histories.FFinalGet && op.Type == histories.OK {
			v, ok := op.Int()
			if !ok {
				t.Fatalf("final-get %d has no integer value: %s", op.Index, op.Value)
			}
			return v
		}
	}
	t.Fatal("no ok final-get")
	return 0
}

// TestCrashCatchesDurabilityBugs runs no-fsync and no-dir-fsync under a
// crash of every node, where they must be caught, and under a kill of
// every node, where they must pass: a kill keeps the page cache, and the
// difference is what the power-loss file system is for.
func TestCrashCatchesDurabilityBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	bin, _ := buildBinaries(t)
	labtest.Need(t)
	for _, bug := range []string{"no-fsync", "no-dir-fsync"} {
		for _, c := range []struct {
			fault string
			want  int
		}{{"crash", 1}, {"kill", 0}} {
			t.Run(bug+"/"+c.fault, func(t *testing.T) {
				dir := t.TempDir()
				sched := filepath.Join(dir, "schedule.txt")
				script := strings.ReplaceAll(crashAll, "crash", c.fault)
				if err := os.WriteFile(sched, []byte(script), 0o644); err != nil {
					t.Fatal(err)
				}
				root := filepath.Join(dir, "store")
				args := []string{"test", "--store", root, "--bug", bug, "--nemesis-schedule", sched,
					"--rate", "40", "--requests", "240", "--seed", "1"}
				if c.fault == "kill" {
					args = append(args, "--disk", "lazy") // the same disk: only the fault differs
				}
				code, out := runCLI(t, bin, args...)
				if code != c.want {
					t.Fatalf("%s under %s all: exit %d, want %d\n%s", bug, c.fault, code, c.want, out)
				}
			})
		}
	}
}

// TestCrashReachesNodeCmdNodes runs the minimal independent node, whose
// {data_dir} is then on the power-loss file system too. It fsyncs its
// file but never its directory after the rename: it passes a kill of every
// node, and a crash of every node must catch it.
func TestCrashReachesNodeCmdNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	bin, mini := buildBinaries(t)
	labtest.Need(t)
	for _, c := range []struct {
		fault string
		want  int
	}{{"kill", 0}, {"crash", 1}} {
		t.Run(c.fault, func(t *testing.T) {
			dir := t.TempDir()
			sched := filepath.Join(dir, "schedule.txt")
			if err := os.WriteFile(sched, []byte(strings.ReplaceAll(crashAll, "crash", c.fault)), 0o644); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(dir, "store")
			code, out := runCLI(t, bin, "test", "--store", root, "--node-cmd", miniCmd(mini), "--nemesis-schedule", sched,
				"--disk", "lazy", "--rate", "40", "--requests", "240", "--seed", "1")
			if code != c.want {
				t.Fatalf("the minimal node under %s all: exit %d, want %d\n%s", c.fault, code, c.want, out)
			}
		})
	}
}

// TestKilledHarnessLeavesNoMount SIGKILLs the harness while its nodes run
// on the power-loss file system: no node process and no crashfs mount may
// survive, in any mount namespace.
func TestKilledHarnessLeavesNoMount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	bin, _ := buildBinaries(t)
	labtest.Need(t)
	mountsBefore := mounts(t)
	root := filepath.Join(t.TempDir(), "store")
	// Sets back to back, so that nodes are in the middle of requests to the
	// file system when the harness dies.
	run := startCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--disk", "lazy", "--requests", "100000", "--rate", "0", "--node-cmd", wrappedNodeCmd)
	run.waitOutput(t, "cluster up")
	time.Sleep(300 * time.Millisecond) // let the clients get going
	if len(crashfsMounts(t)) == 0 {
		run.cmd.Process.Kill()
		t.Fatal("no crashfs mount is visible while the run is on: the check cannot bite")
	}
	run.cmd.Process.Kill()
	run.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs, left, stuck := nodeProcesses(t, root), crashfsMounts(t), fuseWaiters(t)
		if len(procs) == 0 && len(left) == 0 && len(stuck) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after SIGKILL of the harness: node processes %v, crashfs mounts %v, threads waiting on FUSE %v", procs, left, stuck)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}

// fuseWaiters lists the threads (pid/tid) waiting for a FUSE answer:
// such a thread cannot die until its server answers, so one left behind
// by a dead harness hangs for good, zombie process and all.
func fuseWaiters(t *testing.T) []string {
	t.Helper()
	waits, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/wchan")
	var out []string
	for _, w := range waits {
		if b, err := os.ReadFile(w); err == nil && strings.Contains(string(b), "request_wait_answer") {
			out = append(out, strings.TrimPrefix(filepath.Dir(w), "/proc/"))
		}
	}
	return out
}

// crashfsMounts lists the processes whose mount namespace holds a crashfs
// mount, whichever namespace it is.
func crashfsMounts(t *testing.T) []string {
	t.Helper()
	tables, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	var out []string
	for _, m := range tables {
		if b, err := os.ReadFile(m); err == nil && strings.Contains(string(b), "crashfs") {
			out = append(out, filepath.Base(filepath.Dir(m)))
		}
	}
	return out
}
