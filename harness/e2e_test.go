package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/labtest"
	"github.com/ec-counter/ec-counter/runstore"
)

// binaries builds ec-counter and the minimal second node implementation
// once per test process.
var binaries = struct {
	once            sync.Once
	dir             string
	ecCounter, mini string
	err             error
}{}

func buildBinaries(t testing.TB) (ecCounter, mini string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts real clusters; skipped with -short")
	}
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "ec-counter-e2e-")
		if binaries.err != nil {
			return
		}
		binaries.ecCounter = filepath.Join(binaries.dir, "ec-counter")
		binaries.mini = filepath.Join(binaries.dir, "minimalnode")
		for _, b := range [][2]string{
			{binaries.ecCounter, "github.com/ec-counter/ec-counter/cmd/ec-counter"},
			{binaries.mini, "./testdata/minimalnode"},
		} {
			out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
			if err != nil {
				binaries.err = errors.New("go build " + b[1] + ": " + err.Error() + "\n" + string(out))
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.ecCounter, binaries.mini
}

// TestMain runs the tests inside the lab's private namespaces where this
// machine allows (labtest.Main): in-process runs then use the lab (--net
// auto), and the ec-counter commands the tests start make their own.
func TestMain(m *testing.M) {
	code := labtest.Main(m)
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// runCLI runs ec-counter with args and returns its exit code and output.
func runCLI(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = labtest.Env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	// Not t.Fatal: runCLI is also called from the goroutines of parallelRuns.
	return -1, fmt.Sprintf("could not run %s %v: %v", bin, args, err)
}

// wrappedNodeCmd starts each built-in node through a shell that outlives
// it, so a node is not the harness's own child.
const wrappedNodeCmd = `sh -c '{self} node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file {admin_token_file}; echo wrapper done'`

// runningCLI is an ec-counter command a test started in the background;
// its output is collected safely while it runs.
type runningCLI struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *runningCLI) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

// output returns what the command printed so far.
func (r *runningCLI) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// startCLI starts ec-counter with args in the background, in a private
// namespace of its own (see labtest.Env).
func startCLI(t *testing.T, bin string, args ...string) *runningCLI {
	t.Helper()
	r := &runningCLI{cmd: exec.Command(bin, args...)}
	r.cmd.Env = labtest.Env()
	r.cmd.Stdout, r.cmd.Stderr = r, r
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitOutput waits until the command has printed text; after 20 s it kills
// the command and fails the test.
func (r *runningCLI) waitOutput(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.output(), text) {
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			t.Fatalf("%q never printed:\n%s", text, r.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storedRun is what a test reads back from a run directory.
type storedRun struct {
	dir     string
	ops     []histories.Op
	results map[string]any
	record  map[string]any
}

func readRun(t *testing.T, root string) storedRun {
	t.Helper()
	r, err := loadRun(root)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// loadRun reads store/latest back; it is safe in any goroutine.
func loadRun(root string) (storedRun, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(root, runstore.LatestLink))
	if err != nil {
		return storedRun{}, fmt.Errorf("store/latest: %w", err)
	}
	r := storedRun{dir: dir}
	if r.ops, err = histories.ReadFile(filepath.Join(dir, runstore.HistoryFile)); err != nil {
		return r, err
	}
	for file, dst := range map[string]*map[string]any{runstore.ResultsFile: &r.results, runstore.RecordFile: &r.record} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal(b, dst); err != nil {
			return r, fmt.Errorf("%s: %w", file, err)
		}
	}
	return r, nil
}

// countOps counts ops by type and f.
func countOps(ops []histories.Op) map[string]int {
	n := map[string]int{}
	for _, op := range ops {
		n[string(op.Type)+" "+op.F]++
	}
	return n
}

// nodeProcesses lists the pids of live processes whose command line
// mentions marker (a run's store path is in every node's arguments).
func nodeProcesses(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) || !bytes.Contains(cmdline, []byte(" node ")) && !bytes.Contains(cmdline, []byte("\x00node\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue // a zombie is dead already
		}
		pids = append(pids, pid)
	}
	return pids
}

func TestDefaultRunStoresAValidRun(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	start := time.Now()
	code, out := runCLI(t, bin, "test", "--store", root)
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	t.Logf("default run took %s", elapsed)
	for _, want := range []string{"seed:", "faults:  the default kinds this network can inject: partition, delay, loss, kill, pause", "nemesis: ", "replay:", "stored:", "VALID"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	r := readRun(t, root)
	n := countOps(r.ops)
	// The clients' 500, and a read of each node the nemesis restarted.
	if got := n["invoke get"] + n["invoke set"]; got < 500 || got > 500+n["info restart"]*3 {
		t.Errorf("%d get/set invokes, want 500 (5 clients x 100) and a read per restart (%d)", got, n["info restart"])
	}
	completions := n["ok get"] + n["fail get"] + n["info get"] + n["ok set"] + n["fail set"] + n["info set"]
	if completions != n["invoke get"]+n["invoke set"] {
		t.Errorf("%d get/set completions, want one per invoke", completions)
	}
	// The default run injects faults: nemesis ops in the history, the
	// default kinds in run.json, and the replay names them.
	faults := 0
	for _, op := range r.ops {
		if op.Process == histories.Nemesis {
			faults++
		}
	}
	if faults == 0 {
		t.Errorf("the default run injected no fault:\n%s", out)
	}
	if cfg, _ := r.record["config"].(map[string]any); cfg["nemesis_default"] != true || cfg["nemesis"] == nil {
		t.Errorf("run.json's config does not record the default kinds: %v", r.record["config"])
	}
	if replay, _ := r.record["replay"].(string); !strings.Contains(replay, "--nemesis partition,delay,loss,kill,pause") {
		t.Errorf("the replay does not pin the default kinds: %s", replay)
	}
	if n["ok final-get"] < 3 {
		t.Errorf("%d ok final reads, want at least one per node", n["ok final-get"])
	}
	if r.results["valid"] != true {
		t.Errorf("results.json valid = %v, want true", r.results["valid"])
	}
	for i, op := range r.ops {
		if op.Index != int64(i) {
			t.Fatalf("op %d has index %d: indices must be dense", i, op.Index)
		}
		if i > 0 && op.Time < r.ops[i-1].Time {
			t.Fatalf("op %d goes back in time", i)
		}
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if st, err := os.Stat(filepath.Join(r.dir, "nodes", name+".log")); err != nil || st.Size() == 0 {
			t.Errorf("node log %s missing or empty: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.dir, runstore.HarnessLog)); err != nil {
		t.Error(err)
	}
	if r.record["replay"] == nil || r.record["seed"] == nil {
		t.Errorf("run.json lacks replay or seed: %v", r.record)
	}
	if pids := nodeProcesses(t, root); len(pids) > 0 {
		t.Errorf("node processes left behind: %v", pids)
	}
}

func TestLargerClusterPasses(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--nodes", "5", "--clients", "10", "--rate", "40")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readRun(t, root)
	n := countOps(r.ops)
	if got := n["invoke get"] + n["invoke set"]; got != 1000 {
		t.Errorf("%d invokes, want 1000", got)
	}
	nodes := map[string]bool{}
	for _, op := range r.ops {
		if op.F == histories.FFinalGet {
			nodes[op.Node] = true
		}
	}
	if len(nodes) != 5 {
		t.Errorf("final reads cover %d nodes, want 5", len(nodes))
	}
}

// TestCheckRejectsEditedHistory re-checks a stored run, then the same
// history with one read edited to go down.
func TestCheckRejectsEditedHistory(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	if code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--rate", "50", "--seed", "7"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	r := readRun(t, root)
	if code, out := runCLI(t, bin, "check", r.dir); code != 0 {
		t.Fatalf("check of a stored valid run: exit %d\n%s", code, out)
	}
	// Find a positive ok read after an earlier positive ok read of the same
	// process, and make it go down to 0... below its predecessor.
	last := map[histories.Process]int64{}
	edited := -1
	for i := range r.ops {
		op := &r.ops[i]
		if op.Type != histories.OK || op.F != histories.FGet {
			continue
		}
		v, _ := op.Int()
		if prev, ok := last[op.Process]; ok && prev > 1 && v >= prev {
			op.Value = histories.IntValue(prev - 1)
			edited = i
			break
		}
		last[op.Process] = v
	}
	if edited < 0 {
		t.Fatal("no read to edit")
	}
	bad := filepath.Join(t.TempDir(), "history.jsonl")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := histories.Encode(f, r.ops); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out := runCLI(t, bin, "check", bad)
	if code != 1 {
		t.Fatalf("check of an edited history: exit %d, want 1\n%s", code, out)
	}
	if want := "op " + strconv.Itoa(edited); !strings.Contains(out, want) {
		t.Errorf("explanation does not name the edited op (%q):\n%s", want, out)
	}
}

func TestNodeCmdRunsAnotherImplementation(t *testing.T) {
	bin, mini := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	tmpl := mini + " -id {name} -listen {http} -peer-http {peer_http} -dir {data_dir}"
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--rate", "50", "--node-cmd", tmpl)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readRun(t, root)
	if r.results["valid"] != true {
		t.Errorf("valid = %v", r.results["valid"])
	}
	log, err := os.ReadFile(filepath.Join(r.dir, "nodes", "n1.log"))
	if err != nil || !strings.Contains(string(log), "minimalnode n1") {
		t.Errorf("n1 was not run by minimalnode: %v %q", err, log)
	}
}

func TestConfigFileAndFlagOverride(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	conf := filepath.Join(dir, "config.toml")
	os.WriteFile(conf, []byte("num_servers = 2\nnum_clients = 3\nrequests = 20\nrate = 100.0\nname = \"from-file\"\n"), 0o644)
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--config", conf, "--store", root, "--requests", "10")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	r := readRun(t, root)
	n := countOps(r.ops)
	if got := n["invoke get"] + n["invoke set"]; got != 30 {
		t.Errorf("%d invokes, want 3 clients x 10 requests (flag overrides file)", got)
	}
	if !strings.Contains(r.dir, "from-file") {
		t.Errorf("run stored in %s, want under from-file/", r.dir)
	}
	os.WriteFile(conf, []byte("num_servres = 2\n"), 0o644)
	if code, out := runCLI(t, bin, "test", "--config", conf, "--store", root); code != 254 || !strings.Contains(out, "num_servres") {
		t.Errorf("unknown key: exit %d, want 254 naming the key:\n%s", code, out)
	}
}

func TestBadUsageExits254(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.jsonl")
	os.WriteFile(garbage, []byte(`{"index":0,"time":1,"type":"invoke","process":0,"f":"get","node":"n1"}`+"\nnot json\n"), 0o644)
	root := filepath.Join(dir, "store")
	for _, args := range [][]string{
		{"test", "--store", root, "--nodes", "0"},
		{"test", "--store", root, "--nodes", "three"},
		{"test", "--store", root, "--no-such-flag"},
		{"test", "--store", root, "--node-cmd", "x {nmae}"},
		{"test", "--store", root, "--bug", "no-such-bug"},
		{"check"},
		{"check", "/no/such/run"},
		{"check", garbage},
		{"client", "--server", "nohost"},
		{"no-such-command"},
	} {
		if code, out := runCLI(t, bin, args...); code != 254 {
			t.Errorf("%v: exit %d, want 254\n%s", args, code, out)
		}
	}
	if _, err := os.Stat(root); err == nil {
		t.Error("a rejected command created the store")
	}
}

// TestKilledHarnessLeavesNoNodes SIGKILLs the harness mid-run: the nodes'
// parent-death signal must end them all.
func TestKilledHarnessLeavesNoNodes(t *testing.T) {
	testInterruptedHarness(t, syscall.SIGKILL)
}

// TestInterruptedHarnessStopsNodes sends SIGINT as Ctrl-C does.
func TestInterruptedHarnessStopsNodes(t *testing.T) {
	testInterruptedHarness(t, syscall.SIGINT)
}

func testInterruptedHarness(t *testing.T, sig syscall.Signal) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	cmd := exec.Command(bin, "test", "--nemesis", "none", "--store", root, "--requests", "1000")
	cmd.Env = labtest.Env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the client phase runs: the history has ops.
	deadline := time.Now().Add(20 * time.Second)
	for {
		dir, err := filepath.EvalSymlinks(filepath.Join(root, runstore.LatestLink))
		if err == nil {
			if st, err := os.Stat(filepath.Join(dir, runstore.HistoryFile)); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("client phase never started:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(nodeProcesses(t, root)); n != 3 {
		t.Fatalf("%d node processes running, want 3", n)
	}
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	if sig == syscall.SIGINT {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 255 {
			t.Errorf("interrupted harness: %v, want exit 255\n%s", err, out.String())
		}
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		pids := nodeProcesses(t, root)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node processes still alive 2 s after %v of the harness: %v", sig, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The history written so far is intact and readable.
	r, err := filepath.EvalSymlinks(filepath.Join(root, runstore.LatestLink))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := histories.ReadFile(filepath.Join(r, runstore.HistoryFile))
	if err != nil && !errors.Is(err, histories.ErrTruncated) {
		t.Fatal(err)
	}
	if len(ops) == 0 {
		t.Error("history lost")
	}
	if sig == syscall.SIGINT {
		// The report waits for serve: an interrupted run's user is
		// waiting for the prompt (docs/store-and-exit-codes.md "Exit codes").
		if _, err := os.Stat(filepath.Join(r, "report.html")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("an interrupted run wrote its report: %v", err)
		}
		if !strings.Contains(out.String(), "report.html not written (interrupted)") {
			t.Errorf("an interrupted run does not say its report is left for later:\n%s", out.String())
		}
	}
}

// TestStandaloneClient runs `ec-counter client` against a real node and
// checks the history it prints.
func TestStandaloneClient(t *testing.T) {
	bin, _ := buildBinaries(t)
	cl := startTestCluster(t, bin, 1, NetLoopback)
	cmd := exec.Command(bin, "client", "--server", cl.specs[0].Addrs.HTTP, "--requests", "100", "--seed", "1")
	cmd.Env = labtest.Env()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ops, err := histories.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	n := countOps(ops)
	if n["invoke get"]+n["invoke set"] != 100 || n["ok get"]+n["ok set"] != 100 {
		t.Errorf("ops %v: want 100 invokes, all ok", n)
	}
	if res := checker.Check(ops); res.Checks.Linearizable.Valid != checker.Valid || res.Checks.Session.Valid != checker.Valid {
		t.Errorf("standalone client's history is not valid: %+v", res.Checks)
	}
}

// TestWrappedNodesAreStopped runs each node through a shell wrapper that
// outlives it: stopping a node must stop its whole process group, so no
// node is left listening after the run, and the run is still valid.
func TestWrappedNodesAreStopped(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--node-cmd", wrappedNodeCmd, "--requests", "20", "--rate", "50")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if pids := nodeProcesses(t, root); len(pids) > 0 {
		t.Errorf("node processes left after the run: %v", pids)
	}
}

// TestNodeThatExitsSaysSo: a node command that exits at once is reported
// as having exited on its own, with its status, not as a node that ignored
// SIGTERM.
func TestNodeThatExitsSaysSo(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	code, out := runCLI(t, bin, "test", "--store", root, "--node-cmd", "/bin/false")
	if code != 255 || !strings.Contains(out, "exited on its own (exit status 1)") || strings.Contains(out, "did not exit cleanly") {
		t.Errorf("exit %d, want 255 and the node's own exit:\n%s", code, out)
	}
}

// TestInterruptsEndEveryPhase sends SIGINT during start-up (nodes that
// never become ready) and during the planning and first requests of the
// largest run allowed: each ends within 5 s, as interrupted (255).
func TestInterruptsEndEveryPhase(t *testing.T) {
	bin, _ := buildBinaries(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"start-up", []string{"--node-cmd", "sleep 100"}, "interrupted"},
		{"a huge run", []string{"--clients", "10", "--requests", "1000000", "--rate", "0"}, "interrupted"},
	} {
		root := filepath.Join(t.TempDir(), "store")
		run := startCLI(t, bin, append([]string{"test", "--nemesis", "none", "--store", root}, tc.args...)...)
		time.Sleep(time.Second)
		start := time.Now()
		run.cmd.Process.Signal(syscall.SIGINT)
		err := run.cmd.Wait()
		took := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 255 || !strings.Contains(run.output(), tc.want) {
			t.Errorf("%s: %v, want exit 255 saying %q:\n%s", tc.name, err, tc.want, run.output())
		}
		if took > 5*time.Second {
			t.Errorf("%s: SIGINT took %s to end the run, want under 5 s", tc.name, took)
		}
		if pids := nodeProcesses(t, root); len(pids) > 0 {
			t.Errorf("%s: node processes left: %v", tc.name, pids)
		}
	}
}

// TestHundredNodes runs the default workload (30 requests per client) on
// 100 nodes, the most this 2-core machine is known to hold: the cluster
// must start, converge and pass.
func TestHundredNodes(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--nodes", "100", "--clients", "100", "--requests", "30", "--seed", "1")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	r := readRun(t, root)
	finals := map[string]bool{}
	for _, op := range r.ops {
		if op.F == histories.FFinalGet && op.Type == histories.OK {
			finals[op.Node] = true
		}
	}
	if len(finals) != 100 {
		t.Errorf("final reads answered by %d nodes, want 100", len(finals))
	}
}
