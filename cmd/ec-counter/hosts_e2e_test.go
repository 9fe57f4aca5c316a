package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// and locks in each host's dir (the executable cache and the port locks
// aside), and tables.
func hostsLeftovers(t *testing.T, hostsFile string) []string {
	t.Helper()
	var left []string
	dir := filepath.Dir(hostsFile)
	hosts, _ := filepath.Glob(filepath.Join(dir, "host*"))
	for _, h := range hosts {
		entries, _ := os.ReadDir(filepath.Join(h, "work"))
		for _, e := range entries {
			if e.Name() != "bin" && e.Name() != "ports" {
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

// watchers lists the command lines of the node watchers of runs on the
// test hosts of dir (this machine's processes: the hosts share them).
func watchers(dir string) []string {
	var found []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if s := string(b); err == nil && strings.Contains(s, "sleep 0.05") && strings.Contains(s, dir) {
			found = append(found, strings.ReplaceAll(s, "\x00", " "))
		}
	}
	return found
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
		args := append([]string{"test", "--nemesis", "none", "--hosts", hostsFile, "--store", store, "--seed", "1", "--converge-timeout", "4s", "--bug", c.bug}, c.args...)
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
	// The nodes' watchers end with the harness's SSH connection: no loop
	// left forking sleep until the next run.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		w := watchers(filepath.Dir(hostsFile))
		if len(w) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' watchers outlived the harness by 5s: %q", w)
		}
	}
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

// waitForOps waits until the latest run in store has recorded an ok op:
// its cluster is up and its clients are running.
func waitForOps(t *testing.T, store string, out *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if run, err := filepath.EvalSymlinks(filepath.Join(store, "latest")); err == nil {
			if b, _ := os.ReadFile(filepath.Join(run, runstore.HistoryFile)); strings.Contains(string(b), `"type":"ok"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never recorded an ok op:\n%s", out.String())
		}
	}
}

// Two runs on the same hosts at once: the second used to find its nodes
// dead ("address in use") but the first run's answering its health
// checks, and both runs ended INVALID. The second is refused; the first
// stays valid. So is a run whose ports another process holds.
func TestHostsConcurrentRunIsRefused(t *testing.T) {
	hostsFile, hf := labhosts.Up(t, 3)
	storeA, storeB := t.TempDir(), t.TempDir()
	first := exec.Command(buildEcCounter(t), "test", "--hosts", hostsFile, "--store", storeA, "--seed", "1", "--nemesis", "partition,kill")
	var outA bytes.Buffer
	first.Stdout, first.Stderr = &outA, &outA
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitForOps(t, storeA, &outA)
	code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", storeB, "--seed", "2", "--nemesis", "partition")
	if code != exitUsage || !strings.Contains(out, "port 8080 on "+hf.Hosts[0].NodeAddr+" is held by a live run ecc_") || strings.Contains(out, "cluster up") {
		t.Errorf("a second run on the same hosts: exit %d, want %d, refused before its nodes start\n%s", code, exitUsage, out)
	}
	if code, out := ecCounter(t, "doctor", "--hosts", hostsFile); code != exitInvalid || !strings.Contains(out, "IN USE") {
		t.Errorf("doctor during a run: exit %d, want %d with its ports IN USE\n%s", code, exitInvalid, out)
	}
	err := first.Wait()
	if err != nil || !strings.Contains(outA.String(), "VALID") {
		t.Errorf("the first run: %v, want valid\n%s", err, outA.String())
	}

	// A process that is not a run's, on the first host's HTTP port.
	h1 := hf.Hosts[0]
	ns := fmt.Sprintf("ecch-%s-1", strings.Split(h1.Address, ".")[2])
	stranger := exec.Command("ip", "netns", "exec", ns, buildEcCounter(t), "node", "--name", "stranger",
		"--http", h1.NodeAddr+":8080", "--gossip", h1.NodeAddr+":7946", "--data-dir", t.TempDir())
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stranger.Process.Kill()
		stranger.Wait()
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + h1.NodeAddr + ":8080/v1/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stranger node never answered")
		}
	}
	code, out = ecCounter(t, "test", "--hosts", hostsFile, "--store", storeB, "--nemesis", "kill")
	want := fmt.Sprintf("tcp port 8080 on %s is in use by another process (pid %d: ", h1.NodeAddr, stranger.Process.Pid)
	if code != exitUsage || !strings.Contains(out, want) || strings.Contains(out, "cluster up") {
		t.Errorf("a run whose port another process holds: exit %d, want %d saying %q\n%s", code, exitUsage, want, out)
	}
	if left := hostsLeftovers(t, hostsFile); len(left) > 0 {
		t.Errorf("refused runs left on the hosts: %v", left)
	}
}

// A node that answers its health check must prove it is this run's: a
// node given another admin token (a decoy, as another run's node would
// be) is refused, not tested.
func TestHostsNodeMustProveItIsTheRuns(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	decoy := `sh -c 'echo decoy >"$1.decoy"; exec "$0" node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file "$1.decoy"' {self} {admin_token_file}`
	code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", t.TempDir(), "--nemesis", "kill", "--requests", "20", "--node-cmd", decoy)
	if code != exitCrashed || !strings.Contains(out, "refuses this run's admin token (HTTP 401): it is another process, not this run's node") {
		t.Errorf("decoy nodes: exit %d, want %d saying they are not the run's\n%s", code, exitCrashed, out)
	}
}

// Every word of --node-cmd reaches the node as it is on SSH hosts too: a
// word starting with # used to turn the rest of the wrapper into a
// comment, and the nodes were reported killed by a signal.
func TestHostsNodeCmdWordsAreQuoted(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	cmd := `sh -c 'test "$1" = "#x" && test "$2" = "#not a comment" && test "$3" = "it'"'"'s \$HOME \` + "`id\\`" + `" && shift 3 && exec "$0" "$@"' {self} '#x' '#not a comment' "it's \$HOME ` + "`id`" + `" node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file {admin_token_file}`
	code, out := ecCounter(t, "test", "--hosts", hostsFile, "--store", t.TempDir(), "--nemesis", "partition,kill", "--requests", "20", "--node-cmd", cmd)
	if code != 0 {
		t.Errorf("--node-cmd with #, quotes, $ and backquotes in its words: exit %d, want 0\n%s", code, out)
	}
}

// cleanup --hosts with dir = "/" used to say it removed a dead run's
// files while its nodes ran on (it looked for "//ecc_..."). The test
// hosts share this machine's file system: the run's files go to / and
// are removed by the test.
func TestHostsCleanupAtRootKillsTheNodes(t *testing.T) {
	hostsFile, _ := labhosts.Up(t, 3)
	base, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(filepath.Dir(hostsFile), "root.toml")
	lines := strings.Split(string(base), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "dir = ") {
			lines[i] = `dir = "/"`
		}
	}
	if err := os.WriteFile(root, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, portsErr := os.Stat("/ports")
	before, _ := filepath.Glob("/ecc_*")
	t.Cleanup(func() {
		after, _ := filepath.Glob("/ecc_*")
		for _, p := range after {
			if !slices.Contains(before, p) {
				os.RemoveAll(p)
			}
		}
		if os.IsNotExist(portsErr) {
			os.RemoveAll("/ports")
		}
	})
	// The node command names this binary where it is: the hosts share
	// this machine's files, and nothing is uploaded to /bin.
	nodeCmd := buildEcCounter(t) + " node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file {admin_token_file}"
	store := t.TempDir()
	cmd := exec.Command(buildEcCounter(t), "test", "--hosts", root, "--store", store, "--nemesis", "kill", "--requests", "400", "--node-cmd", nodeCmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForOps(t, store, &out)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	runs, _ := filepath.Glob("/ecc_*")
	var tag string
	for _, p := range runs {
		if st, err := os.Stat(p); err == nil && st.IsDir() && !slices.Contains(before, p) {
			tag = filepath.Base(p)
		}
	}
	if tag == "" {
		t.Fatalf("no run directory in /: %v\n%s", runs, out.String())
	}
	code, cleanup := ecCounter(t, "cleanup", "--hosts", root)
	if code != 0 || !strings.Contains(cleanup, "removed process") || !strings.Contains(cleanup, "removed files /"+tag) {
		t.Errorf("cleanup: exit %d, want 0, having removed the dead run's processes and files\n%s", code, cleanup)
	}
	if ps, err := exec.Command("pgrep", "-af", "/"+tag+"/").Output(); err == nil {
		t.Errorf("the dead run's processes outlived cleanup:\n%s", ps)
	}
	if _, err := os.Stat("/" + tag); !os.IsNotExist(err) {
		t.Errorf("/%s left (%v)", tag, err)
	}
}
