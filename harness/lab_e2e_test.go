package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/labtest"
	"github.com/ec-counter/ec-counter/runstore"
)

// miniCmd is the node command of the minimal implementation, which syncs
// over HTTP and knows nothing of faults: no admin API, no memberlist.
func miniCmd(mini string) string {
	return mini + " -id {name} -listen {http} -peer-http {peer_http} -dir {data_dir}"
}

// TestLabPassesUnderNetworkFaults runs both node implementations in the
// lab under partitions, delay, loss and every kind together, over five
// seeds each: every run must be valid, inject its faults (none "not
// installed"), and lose no acknowledged write.
func TestLabPassesUnderNetworkFaults(t *testing.T) {
	bin, mini := buildBinaries(t)
	labtest.Need(t)
	type job struct {
		impl, nodeCmd, kinds string
		seed                 int
	}
	want := map[string][]string{
		"partition": {"start-partition", "stop-partition"},
		"delay":     {"start-link", "stop-link"},
		"loss":      {"start-link", "stop-link"},
	}
	var jobs []job
	for _, impl := range [][2]string{{"ec-counter", DefaultNodeCmd}, {"minimalnode", miniCmd(mini)}} {
		for _, kinds := range []string{"partition", "delay", "loss", "partition,delay,loss,kill,pause"} {
			for seed := 1; seed <= 5; seed++ {
				jobs = append(jobs, job{impl[0], impl[1], kinds, seed})
			}
		}
	}
	parallelRuns(jobs, 2, func(j job) {
		name := fmt.Sprintf("%s --nemesis %s --seed %d", j.impl, j.kinds, j.seed)
		root := filepath.Join(t.TempDir(), "store")
		code, out := runCLI(t, bin, "test", "--net", "lab", "--store", root, "--node-cmd", j.nodeCmd,
			"--nemesis", j.kinds, "--nemesis-interval", "500ms", "--seed", strconv.Itoa(j.seed),
			"--requests", "40", "--rate", "20")
		if code != 0 {
			t.Errorf("%s: exit %d, want 0:\n%s", name, code, out)
			return
		}
		r, err := loadRun(root)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if r.record["network"] != NetLab {
			t.Errorf("%s: ran on network %v, want lab", name, r.record["network"])
		}
		n := countOps(r.ops)
		for _, f := range want[j.kinds] {
			if n["info "+f] == 0 {
				t.Errorf("%s: no %s op in the history", name, f)
			}
		}
		for _, op := range r.ops {
			if op.Process == histories.Nemesis && op.Error != "" {
				t.Errorf("%s: nemesis op %d failed: %s", name, op.Index, op.Error)
			}
		}
		conv, _ := r.results["checks"].(map[string]any)["convergence"].(map[string]any)
		if lost, _ := conv["lost_write_count"].(float64); conv == nil || lost != 0 {
			t.Errorf("%s: %v lost acknowledged writes", name, conv["lost_write_count"])
		}
	})
}

// TestLabPartitionSplitsANodeThatKnowsNothing partitions the minimal node,
// which has no fault injection of its own, into n1,n2 | n3: during the
// partition each side goes on without the other's writes, and after the
// heal all agree.
func TestLabPartitionSplitsANodeThatKnowsNothing(t *testing.T) {
	bin, mini := buildBinaries(t)
	labtest.Need(t)
	dir := t.TempDir()
	sched := filepath.Join(dir, "schedule.txt")
	os.WriteFile(sched, []byte("1s start-partition n1,n2|n3\n4s stop-partition\n"), 0o644)
	root := filepath.Join(dir, "store")
	code, out := runCLI(t, bin, "test", "--net", "lab", "--store", root, "--node-cmd", miniCmd(mini),
		"--nemesis-schedule", sched, "--requests", "120", "--rate", "20", "--seed", "1")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readRun(t, root)
	var start, stop int64 = -1, -1
	for _, op := range r.ops {
		switch {
		case op.F == "start-partition":
			start = op.Time
		case op.F == "stop-partition" && stop < 0:
			stop = op.Time
		}
	}
	if start < 0 || stop < 0 {
		t.Fatalf("no partition in the history")
	}
	// Every set value is unique, so each read names the node its value was
	// written on. The minimal node syncs every 50 ms, so reads often see
	// values written on the other side, except during the partition: then
	// no read may return a value the other side wrote after the cut.
	side := map[string]int{"n1": 0, "n2": 0, "n3": 1}
	writtenOn := map[string]histories.Op{} // value → its set's invoke
	var during, outside [2]int             // cross-side reads, by the reading side
	settle := int64(300 * time.Millisecond)
	for _, op := range r.ops {
		if op.Process == histories.Nemesis {
			continue
		}
		if op.F == histories.FSet && op.Type == histories.Invoke {
			writtenOn[string(op.Value)] = op
			continue
		}
		if op.F != histories.FGet || op.Type != histories.OK {
			continue
		}
		w, ok := writtenOn[string(op.Value)]
		if !ok || side[w.Node] == side[op.Node] {
			continue
		}
		switch {
		case op.Time > start+settle && op.Time < stop && w.Time > start:
			during[side[op.Node]]++
		case op.Time < start || op.Time > stop+settle:
			outside[side[op.Node]]++
		}
	}
	t.Logf("reads of the other side's writes: during the partition n1,n2 %d, n3 %d; outside it n1,n2 %d, n3 %d",
		during[0], during[1], outside[0], outside[1])
	if during != [2]int{} {
		t.Errorf("during the partition, reads returned values written on the other side after the cut: %v", during)
	}
	if outside[0] == 0 || outside[1] == 0 {
		t.Errorf("outside the partition, no side read the other's writes (%v): the check cannot bite", outside)
	}
	if r.results["valid"] != true {
		t.Errorf("valid = %v after the heal", r.results["valid"])
	}
}

// TestKilledHarnessLeavesNoLab SIGKILLs the harness in the middle of a lab
// partition, its nodes started through a shell wrapper (so a node is not
// the harness's own child): no node process, no network namespace of the
// lab (router or host) may survive, no rule or mount may appear in the
// namespace the harness was started from, and the next run passes.
func TestKilledHarnessLeavesNoLab(t *testing.T) {
	bin, _ := buildBinaries(t)
	labtest.Need(t)
	before, mountsBefore := nftTables(t), mounts(t)
	dir := t.TempDir()
	sched := filepath.Join(dir, "schedule.txt")
	os.WriteFile(sched, []byte("200ms start-partition isolate n1\n"), 0o644)
	root := filepath.Join(dir, "store")
	run := startCLI(t, bin, "test", "--net", "lab", "--store", root, "--nemesis-schedule", sched, "--node-cmd", wrappedNodeCmd)
	run.waitOutput(t, "start-partition")
	dir, err := filepath.EvalSymlinks(filepath.Join(root, runstore.LatestLink))
	if err != nil {
		t.Fatal(err)
	}
	var record map[string]any
	if b, err := os.ReadFile(filepath.Join(dir, runstore.RecordFile)); err != nil || json.Unmarshal(b, &record) != nil {
		t.Fatalf("run.json: %v", err)
	}
	rec, _ := record["lab"].(map[string]any)
	if rec == nil {
		t.Fatalf("run.json has no lab record: %v", record)
	}
	namespaces := []string{rec["router_netns"].(string)}
	for _, h := range rec["hosts"].(map[string]any) {
		namespaces = append(namespaces, h.(map[string]any)["netns"].(string))
	}
	if held := holders(t, namespaces); len(held) == 0 {
		t.Fatalf("the lab's namespaces %v are held by no process while the run is on: the check cannot bite", namespaces)
	}
	run.cmd.Process.Kill()
	run.cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		procs, held := nodeProcesses(t, root), holders(t, namespaces)
		if len(procs) == 0 && len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after SIGKILL of the harness: node processes %v, namespaces still held by %v", procs, held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := nftTables(t); after != before {
		t.Errorf("nftables tables in the harness's own namespace changed: before %q, after %q", before, after)
	}
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
	if code, out := runCLI(t, bin, "test", "--nemesis", "none", "--net", "lab", "--store", root, "--requests", "20", "--rate", "50"); code != 0 {
		t.Fatalf("the next run: exit %d\n%s", code, out)
	}
}

// holders lists the processes that hold one of the network namespaces
// (e.g. "net:[4026532591]"), as their own or through an open file.
func holders(t *testing.T, namespaces []string) []string {
	t.Helper()
	want := map[string]bool{}
	for _, ns := range namespaces {
		want[ns] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		links := []string{filepath.Join("/proc", e.Name(), "ns", "net")}
		if fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd")); err == nil {
			for _, fd := range fds {
				links = append(links, filepath.Join("/proc", e.Name(), "fd", fd.Name()))
			}
		}
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && want[target] {
				out = append(out, e.Name()+" "+target)
			}
		}
	}
	return out
}

// mounts returns this process's mount table.
func mounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nftTables lists the nftables tables of this process's network namespace.
func nftTables(t *testing.T) string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	return strings.Join(names, ",")
}

// TestLoopbackRefusesFaultsNodesCannotTake asks for network faults on the
// loopback network with a node that has no admin API: refused up front
// (254), with a message that says what to do, and no run is stored.
func TestLoopbackRefusesFaultsNodesCannotTake(t *testing.T) {
	bin, mini := buildBinaries(t)
	for _, kinds := range []string{"partition", "delay", "loss", "kill,partition"} {
		root := filepath.Join(t.TempDir(), "store")
		code, out := runCLI(t, bin, "test", "--net", "loopback", "--store", root, "--node-cmd", miniCmd(mini), "--nemesis", kinds)
		if code != 254 || !strings.Contains(out, "--net lab") || !strings.Contains(out, "admin API") {
			t.Errorf("--nemesis %s: exit %d, want 254 and a hint:\n%s", kinds, code, out)
		}
		if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--nemesis %s: a refused run left a store: %v", kinds, err)
		}
	}
	// Process faults need no admin API: accepted.
	root := filepath.Join(t.TempDir(), "store")
	if code, out := runCLI(t, bin, "test", "--net", "loopback", "--store", root, "--node-cmd", miniCmd(mini),
		"--nemesis", "kill", "--nemesis-interval", "500ms", "--requests", "30", "--rate", "20"); code != 0 {
		t.Errorf("--nemesis kill on loopback: exit %d, want 0:\n%s", code, out)
	}
}

// TestAutoPicksTheLab: a default run uses the lab where it works.
func TestAutoPicksTheLab(t *testing.T) {
	bin, _ := buildBinaries(t)
	labtest.Need(t)
	root := filepath.Join(t.TempDir(), "store")
	if code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--requests", "20", "--rate", "50"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if r := readRun(t, root); r.record["network"] != NetLab || !strings.HasPrefix(r.record["nodes"].(map[string]any)["n1"].(map[string]any)["http"].(string), "10.") {
		t.Errorf("default run: network %v, nodes %v; want the lab", r.record["network"], r.record["nodes"])
	}
}

// TestLabFailureMakesTheRunUnknown breaks the lab under a running test:
// it deletes the lab's nftables table, so the partitions that follow
// cannot be installed. The run must end unknown (exit 2), the history must
// say which faults were not installed, and a re-check must agree.
func TestLabFailureMakesTheRunUnknown(t *testing.T) {
	bin, _ := buildBinaries(t)
	labtest.Need(t) // in-process: this test binary runs inside the lab's namespace
	dir := t.TempDir()
	cfg := Defaults()
	cfg.Net, cfg.Store = NetLab, filepath.Join(dir, "store")
	cfg.Script = "500ms start-partition isolate n1\n1s stop-partition\n"
	cfg.NodeCmd = bin + DefaultNodeCmd[len("{self}"):]
	cfg.Requests, cfg.Rate, cfg.Seed, cfg.HasSeed = 40, 20, 1, true

	before := nftTables(t)
	broke := make(chan string, 1)
	go func() { // delete the run's table as soon as it exists
		c, err := nftables.New()
		if err != nil {
			broke <- err.Error()
			return
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			tables, _ := c.ListTables()
			for _, tb := range tables {
				if strings.HasPrefix(tb.Name, "lab") && !strings.Contains(","+before+",", ","+tb.Name+",") {
					c.DelTable(tb)
					if err := c.Flush(); err != nil {
						broke <- err.Error()
						return
					}
					broke <- ""
					return
				}
			}
		}
		broke <- "the run's table never appeared"
	}()
	var out bytes.Buffer
	o, err := Run(t.Context(), cfg, &out)
	if msg := <-broke; msg != "" {
		t.Fatalf("could not break the lab: %s", msg)
	}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if got := o.Result.Valid; got != checker.Unknown {
		t.Errorf("a run whose faults were not installed: %s, want unknown\n%s", got, out.String())
	}
	r := readRun(t, cfg.Store)
	var notInstalled int
	for _, op := range r.ops {
		if op.Process == histories.Nemesis && strings.HasPrefix(op.Error, histories.NotInstalled) {
			notInstalled++
		}
	}
	if notInstalled == 0 {
		t.Errorf("no nemesis op says its fault was not installed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "failed to install") {
		t.Errorf("the summary does not say why the run is unknown:\n%s", out.String())
	}
}
