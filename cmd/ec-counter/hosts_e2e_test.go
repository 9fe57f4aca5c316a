package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/labhosts"
	"github.com/ec-counter/ec-counter/runstore"
)

// binary builds ec-counter once for the tests that run it as users do:
// on SSH hosts, the harness uploads its own executable.
var binary = struct {
	once sync.Once
	path string
	err  error
}{}

func buildEcCounter(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "ec-counter-hosts-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "ec-counter")
		if out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput(); err != nil {
			binary.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// ecCounter runs the binary and returns its exit code and output.
func ecCounter(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(buildEcCounter(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// readHistory reads a stored run's history.
func readHistory(t *testing.T, run string) []histories.Op {
	t.Helper()
	f, err := os.Open(filepath.Join(run, runstore.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := histories.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

// latest returns the store's latest run directory.
func latest(t *testing.T, store string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Join(store, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostsLeftovers lists what runs left on the test hosts: run directories
// and locks in each host's dir (the executable cache aside), and tables.
func hostsLeftovers(t *testing.T, hostsFile string) []string {
	t.Helper()
	var left []string
	dir := filepath.Dir(hostsFile)
	hosts, _ := filepath.Glob(filepath.Join(dir, "host*"))
	for _, h := range hosts {
		entries, _ := os.ReadDir(filepath.Join(h, "work"))
		for _, e := range entries {
			if e.Name() != "bin" {
				left = append(left, filepath.Join(h, "work", e.Name()))
			}
		}
	}
	list, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(list), "\n") {
		ns := strings.Fields(l + " x")[0]
		if !strings.HasPrefix(ns, "ecch-") {
			continue
		}
		out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "tables").Output()
		for _, tl := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.Contains(tl, "ecc_") {
				left = append(left, ns+": "+tl)
			}
		}
	}
	return left
}

func TestHostsChaosIsValid(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	store := t.TempDir()
	for _, seed := range []string{"1", "2"} {
		code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", store, "--seed", seed, "--nemesis", "partition,kill,pause,link", "--requests", "200")
		if code != 0 {
			t.Fatalf("seed %s: exit %d\n%s", seed, code, out)
		}
		run := latest(t, store)
		kinds := map[string]bool{}
		for _, op := range readHistory(t, run) {
			if op.Process == histories.Nemesis {
				kinds[op.F] = true
				if op.Error != "" {
					t.Errorf("seed %s: nemesis op %d failed: %s", seed, op.Index, op.Error)
				}
			}
		}
		for _, f := range []string{"start-partition", "stop-partition", "kill", "restart", "pause", "resume", "start-link", "stop-link"} {
			if !kinds[f] {
				t.Errorf("seed %s: no %s in the history (%v)", seed, f, kinds)
			}
		}
		for _, n := range []string{"n1", "n2", "n3"} {
			if b, err := os.ReadFile(filepath.Join(run, "nodes", n+".log")); err != nil || len(b) == 0 {
				t.Errorf("seed %s: %s's log not brought home (%v)", seed, n, err)
			}
			if _, err := os.Stat(filepath.Join(run, "data", n, "counter")); err != nil {
				t.Errorf("seed %s: %s's data not brought home: %v", seed, n, err)
			}
		}
		var rec runstore.Record
		b, _ := os.ReadFile(filepath.Join(run, runstore.RecordFile))
		if err := json.Unmarshal(b, &rec); err != nil || rec.Network != "hosts" || !strings.HasPrefix(rec.HostsTag, "ecc_") {
			t.Errorf("run.json: network %q, hosts tag %q, %v", rec.Network, rec.HostsTag, err)
		}
		if left := hostsLeftovers(t, hostsFile); len(left) > 0 {
			t.Errorf("seed %s left on the hosts: %v", seed, left)
		}
	}
}

func TestHostsBugsAreCaught(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	store := t.TempDir()
	long := filepath.Join(t.TempDir(), "long-partition.txt")
	if err := os.WriteFile(long, []byte("0.5s start-partition halves\n8s stop-partition\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bug  string
		args []string
	}{
		{"no-gossip", nil},
		{"no-rejoin", []string{"--nemesis-schedule", long, "--requests", "85"}},
	} {
		args := append([]string{"test", "--hosts", hostsFile, "--store", store, "--seed", "1", "--converge-timeout", "4s", "--bug", c.bug}, c.args...)
		code, out := ecCounter(t, args...)
		if code != 1 || !strings.Contains(out, "convergence   invalid") {
			t.Errorf("--bug %s: exit %d, want 1 with convergence invalid\n%s", c.bug, code, out)
		}
	}
	// The correct server passes the same long partition: the bug is what
	// the checker caught.
	if code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", store, "--seed", "1", "--nemesis-schedule", long, "--requests", "85"); code != 0 {
		t.Errorf("the correct server under the long partition: exit %d\n%s", code, out)
	}
}

// startMidFaults starts a run on the hosts of hostsFile whose schedule
// partitions n1 away, delays n3's links and pauses n2, and returns once
// the pause is in the history, with the command still running.
func startMidFaults(t *testing.T, hostsFile, store string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	sched := filepath.Join(t.TempDir(), "schedule.txt")
	if err := os.WriteFile(sched, []byte("0.5s start-partition isolate n1\n0.7s start-link delay=100ms nodes=n3\n1s pause n2\n30s stop-partition\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildEcCounter(t), "test", "--hosts", hostsFile, "--store", store, "--nemesis-schedule", sched, "--requests", "400")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if run, err := filepath.EvalSymlinks(filepath.Join(store, "latest")); err == nil {
			if b, _ := os.ReadFile(filepath.Join(run, runstore.HistoryFile)); strings.Contains(string(b), `"f":"pause"`) {
				return cmd, &out
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the partition and the pause never started:\n%s", out.String())
		}
	}
}

func TestHostsKilledHarnessIsSweptByTheNextRun(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	store := t.TempDir()
	cmd, _ := startMidFaults(t, hostsFile, store)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The delayer ends with the harness's SSH connection, and takes its
	// table with it; the rest stays for the next run's sweep.
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = hostsLeftovers(t, hostsFile)
		if !strings.Contains(strings.Join(left, " "), "_delay") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delayer's table outlived the harness: %v", left)
		}
	}
	if len(left) < 7 {
		t.Fatalf("a killed harness left only %v on the hosts, want 3 run directories, 3 locks and the partition's tables", left)
	}
	code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", store, "--nemesis", "partition")
	if code != 0 {
		t.Fatalf("the next run: exit %d\n%s", code, out)
	}
	for _, want := range []string{"a dead run's leftover removed: run ecc_", "removed: process", "ec-counter node --name n2", "removed: nftables table inet ecc_"} {
		if !strings.Contains(out, want) {
			t.Errorf("the next run does not say %q:\n%s", want, out)
		}
	}
	if left := hostsLeftovers(t, hostsFile); len(left) > 0 {
		t.Errorf("left on the hosts: %v", left)
	}
	if code, out := ecCounter(t, "cleanup", "--hosts", hostsFile); code != 0 || strings.Count(out, "nothing left by dead runs") != 3 {
		t.Errorf("cleanup after the sweep: exit %d\n%s", code, out)
	}
}

func TestHostsRefusedUpFront(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	base, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name, old, new string) string {
		t.Helper()
		s := strings.Replace(string(base), old, new, 1)
		if s == string(base) {
			t.Fatalf("%q not in the hosts file", old)
		}
		p := filepath.Join(filepath.Dir(hostsFile), name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := strings.SplitN(strings.SplitN(string(base), `address = "`, 2)[1], `"`, 2)[0]
	unreachable := variant("unreachable.toml", `address = "`+first+`"`, `address = "127.0.0.1"`+"\nport = 1\n"+`node_addr = "`+first+`"`)
	noNft := variant("no-nft.toml", "user = ", `nft = "/nonexistent/nft"`+"\nuser = ")
	store := t.TempDir()
	for _, c := range []struct {
		name, want string
		args       []string
	}{
		{"unreachable", "cannot reach it", []string{"--hosts", unreachable, "--nemesis", "kill"}},
		{"no nftables", "nftables: /nonexistent/nft is not installed", []string{"--hosts", noNft, "--nemesis", "partition"}},
		{"crash", "crash and the power-loss disk are not available", []string{"--hosts", hostsFile, "--nemesis", "crash"}},
		{"nodes", "lists 3 hosts", []string{"--hosts", hostsFile, "--nodes", "5"}},
	} {
		code, out := ecCounter(t, append([]string{"test", "--store", store}, c.args...)...)
		if code != exitUsage || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want %d saying %q\n%s", c.name, code, exitUsage, c.want, out)
		}
	}
	// No node ever started.
	logs, _ := filepath.Glob(filepath.Join(store, "*", "*", "nodes", "*.log"))
	if len(logs) > 0 {
		t.Errorf("refused runs started nodes: %v", logs)
	}
	if code, out := ecCounter(t, "doctor", "--hosts", noNft); code != 1 || !strings.Contains(out, "FAIL: nftables") {
		t.Errorf("doctor --hosts with a host without nftables: exit %d\n%s", code, out)
	}
	if code, out := ecCounter(t, "doctor", "--hosts", hostsFile); code != 0 || strings.Count(out, "  ok\n") != 3 {
		t.Errorf("doctor --hosts: exit %d\n%s", code, out)
	}
}

func TestHostsInterruptLeavesNothing(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	store := t.TempDir()
	cmd, out := startMidFaults(t, hostsFile, store)
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitCrashed || !strings.Contains(out.String(), "interrupted") {
		t.Errorf("Ctrl-C: %v, want exit %d saying interrupted\n%s", err, exitCrashed, out.String())
	}
	t.Logf("Ctrl-C to exit: %s", time.Since(start).Round(time.Millisecond))
	if left := hostsLeftovers(t, hostsFile); len(left) > 0 {
		t.Errorf("an interrupted run left on the hosts: %v", left)
	}
	if out, err := exec.Command("pgrep", "-af", filepath.Dir(hostsFile)).Output(); err == nil && strings.Contains(string(out), "ecc_") {
		t.Errorf("processes of the run left: %s", out)
	}
	run := latest(t, store)
	for _, n := range []string{"n1", "n2", "n3"} {
		if b, err := os.ReadFile(filepath.Join(run, "nodes", n+".log")); err != nil || len(b) == 0 {
			t.Errorf("%s's log not brought home after Ctrl-C (%v)", n, err)
		}
	}
}
