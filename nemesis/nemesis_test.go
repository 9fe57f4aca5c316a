package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/lab"
)

// fakeNode is a node's admin API on a real HTTP server, decoding fault sets
// as strictly as the node does.
type fakeNode struct {
	name  string
	token string
	srv   *httptest.Server

	mu       sync.Mutex
	adminOff bool     // answer 404, as a node without --admin-token-file
	faults   string   // the current fault set, canonical JSON
	puts     []string // every accepted PUT body, canonical JSON
	auths    []string // every Authorization header received
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	fail := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, "{\"error\":%q}\n", msg)
	}
	switch {
	case r.URL.Path != "/v1/admin/faults":
		fail(http.StatusNotFound, "not found")
		return
	case f.adminOff:
		fail(http.StatusNotFound, "admin API is off (no --admin-token-file)")
		return
	case r.Header.Get("Authorization") != "Bearer "+f.token:
		fail(http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			fail(http.StatusBadRequest, "content type "+ct)
			return
		}
		body, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var fs api.FaultSet
		if err := dec.Decode(&fs); err != nil || fs.Links == nil {
			fail(http.StatusBadRequest, fmt.Sprintf("invalid fault set %s: %v", body, err))
			return
		}
		for peer, l := range fs.Links {
			for _, d := range []*api.DirFaults{l.In, l.Out} {
				if d != nil && (d.DelayMS < 0 || d.JitterMS < 0 || d.Loss < 0 || d.Loss > 1) {
					fail(http.StatusBadRequest, "bad link "+peer)
					return
				}
			}
		}
		canon, _ := json.Marshal(fs)
		f.faults = string(canon)
		f.puts = append(f.puts, f.faults)
	default:
		fail(http.StatusMethodNotAllowed, "method")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, f.faults+"\n")
}

func (f *fakeNode) state() (faults string, puts []string, auths []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults, append([]string(nil), f.puts...), append([]string(nil), f.auths...)
}

// fakeCluster runs no processes: it tracks their states, and a restart
// clears the node's faults as a fresh process would.
type fakeCluster struct {
	token string
	names []string
	nodes map[string]*fakeNode

	mu      sync.Mutex
	procs   map[string]string // running, killed, paused
	calls   []string
	failing map[string]error // node → error of its next process call
}

func newFakeCluster(t *testing.T, n int) *fakeCluster {
	t.Helper()
	c := &fakeCluster{
		token:   "s3cret",
		names:   testNodes(n),
		nodes:   map[string]*fakeNode{},
		procs:   map[string]string{},
		failing: map[string]error{},
	}
	for _, name := range c.names {
		f := &fakeNode{name: name, token: c.token, faults: emptySet}
		f.srv = httptest.NewServer(f)
		t.Cleanup(f.srv.Close)
		c.nodes[name] = f
		c.procs[name] = "running"
	}
	return c
}

func (c *fakeCluster) Nodes() []string               { return c.names }
func (c *fakeCluster) GossipAddr(node string) string { return testGossip(node) }

// admin returns the loopback network for the fake nodes: their admin API,
// with the cluster's token.
func (c *fakeCluster) admin() *lab.AdminAPI {
	addrs := map[string]string{}
	for name, f := range c.nodes {
		addrs[name] = f.srv.Listener.Addr().String()
	}
	return lab.NewAdminAPI(c.token, addrs)
}

func (c *fakeCluster) proc(call, node, from, to string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call+" "+node)
	if err := c.failing[node]; err != nil {
		delete(c.failing, node)
		return err
	}
	if from != "" && c.procs[node] != from && !(call == "kill" && c.procs[node] == "paused") {
		return fmt.Errorf("%s %s: node is %s", call, node, c.procs[node])
	}
	c.procs[node] = to
	if call == "restart" {
		f := c.nodes[node]
		f.mu.Lock()
		f.faults = emptySet
		f.mu.Unlock()
	}
	return nil
}

func (c *fakeCluster) Kill(_ context.Context, node string) error {
	return c.proc("kill", node, "running", "killed")
}
func (c *fakeCluster) Crash(_ context.Context, node string) (CrashLoss, error) {
	if err := c.proc("crash", node, "running", "killed"); err != nil {
		return CrashLoss{}, err
	}
	return CrashLoss{Writes: len(node), Bytes: 8, Entries: 1}, nil
}
func (c *fakeCluster) Restart(_ context.Context, node string) error {
	return c.proc("restart", node, "killed", "running")
}
func (c *fakeCluster) Pause(_ context.Context, node string) error {
	return c.proc("pause", node, "running", "paused")
}
func (c *fakeCluster) Resume(_ context.Context, node string) error {
	return c.proc("resume", node, "paused", "running")
}

func (c *fakeCluster) faults(node string) string {
	f, _, _ := c.nodes[node].state()
	return f
}

// recorder collects the nemesis's ops as "f value-json", followed by
// " error: problem" if the op has a problem.
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) record(f string, v any, problem string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	op := f + " " + string(b)
	if problem != "" {
		op += " error: " + problem
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

func parseSched(t *testing.T, text string, nodes []string) Schedule {
	t.Helper()
	s, err := ParseSchedule(strings.NewReader(text), nodes, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkOps(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const (
	drop  = `{"in":{"drop":true}}`
	slow  = `{"out":{"delay_ms":100}}`
	both  = `{"in":{"drop":true},"out":{"delay_ms":100}}`
	links = `{"links":{%s}}`
)

func set(entries ...string) string { return fmt.Sprintf(links, strings.Join(entries, ",")) }

func link(node, faults string) string { return fmt.Sprintf("%q:%s", testGossip(node), faults) }

func TestRunAppliesFaults(t *testing.T) {
	c := newFakeCluster(t, 3)
	var rec recorder
	var logs bytes.Buffer
	n := New(c, c.admin(), rec.record, func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) })
	s := parseSched(t, `
0s     start-partition  isolate n1
0s     start-link       delay=100ms nodes=n2
10ms   kill             n3
20ms   restart          n3
30ms   pause            n2
40ms   stop-partition
50ms   resume           n2
60ms   stop-link
`, c.names)

	// Step by step, checking every node's faults after each.
	want := []map[string]string{
		{ // isolate n1
			"n1": set(link("n2", drop), link("n3", drop)),
			"n2": set(link("n1", drop)),
			"n3": set(link("n1", drop)),
		},
		{ // + delay on n2's links, composed with the partition
			"n1": set(link("n2", both), link("n3", drop)),
			"n2": set(link("n1", both), link("n3", slow)),
			"n3": set(link("n1", drop), link("n2", slow)),
		},
		nil, // kill n3: nothing changes on the others
		{ // restart n3: its faults are applied again
			"n3": set(link("n1", drop), link("n2", slow)),
		},
		nil, // pause n2
		{ // stop-partition: n2 is paused and keeps its faults
			"n1": set(link("n2", slow)),
			"n2": set(link("n1", both), link("n3", slow)),
			"n3": set(link("n2", slow)),
		},
		{ // resume n2: it catches up
			"n2": set(link("n1", slow), link("n3", slow)),
		},
		{"n1": emptySet, "n2": emptySet, "n3": emptySet},
	}
	for i, st := range s {
		st.At = 0
		if err := n.Run(context.Background(), Schedule{st}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for node, f := range want[i] {
			if got := c.faults(node); got != f {
				t.Errorf("after %q: %s holds %s, want %s", st, node, got, f)
			}
		}
	}
	checkOps(t, rec.take(), []string{
		`start-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`,
		`start-link {"delay_ms":100,"jitter_ms":0,"loss":0,"nodes":["n2"]}`,
		`kill ["n3"]`,
		`restart ["n3"]`,
		`pause ["n2"]`,
		`stop-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]} error: unreachable: n2`,
		`resume ["n2"]`,
		`stop-link {"delay_ms":100,"jitter_ms":0,"loss":0,"nodes":["n2"]}`,
	})
	for _, name := range c.names {
		_, puts, auths := c.nodes[name].state()
		for _, a := range auths {
			if a != "Bearer s3cret" {
				t.Errorf("%s got Authorization %q", name, a)
			}
		}
		if len(puts) == 0 || len(auths) != len(puts) {
			t.Errorf("%s: %d PUTs, %d requests", name, len(puts), len(auths))
		}
	}
	// n3 was killed during the link fault's start and got nothing while
	// dead: its PUTs are the partition, the re-application, the heals.
	_, puts, _ := c.nodes["n3"].state()
	if len(puts) != 5 {
		t.Errorf("n3 PUTs: %q", puts)
	}
	stats := n.Stats()
	if stats.Ops[FKill] != 1 || stats.Ops[FStartPartition] != 1 || stats.Unreachable != 1 || stats.Failed != 0 {
		t.Errorf("stats %+v", stats)
	}
	if got := stats.String(); got != "start-partition 1, stop-partition 1, start-link 1, stop-link 1, kill 1, restart 1, pause 1, resume 1; 1 unreachable" {
		t.Errorf("stats %q", got)
	}
	// What the history no longer holds is logged: the partition's shape
	// and groups, the re-applied faults.
	for _, want := range []string{
		"cannot set the faults of n2: paused",
		`nemesis: start-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]} (isolate n1)`,
		`nemesis: restart ["n3"] (reapplied: n3)`,
		`nemesis: stop-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]} (isolate n1) error: unreachable: n2`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestRunUnreachableGoesOn(t *testing.T) {
	c := newFakeCluster(t, 5)
	c.nodes["n2"].adminOff = true // a custom node without an admin API
	c.nodes["n3"].srv.Close()     // a node that does not answer at all
	var rec recorder
	n := New(c, c.admin(), rec.record, t.Logf)
	s := parseSched(t, "0s start-partition halves\n0s kill n4\n0s stop-partition\n", c.names)
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{
		`start-partition {"n1":["n3","n4","n5"],"n2":["n3","n4","n5"],"n3":["n1","n2"],"n4":["n1","n2"],"n5":["n1","n2"]} error: unreachable: n2,n3`,
		`kill ["n4"]`,
		// n2 refused (404) and holds nothing, so it needs nothing now; n3
		// may hold the partition, so it is tried again.
		`stop-partition {"n1":["n3","n4","n5"],"n2":["n3","n4","n5"],"n3":["n1","n2"],"n4":["n1","n2"],"n5":["n1","n2"]} error: unreachable: n3`,
	})
	if got := c.faults("n1"); got != emptySet {
		t.Errorf("n1 holds %s after the heal", got)
	}
	if st := n.Stats(); st.Unreachable != 3 {
		t.Errorf("stats %+v", st)
	}
	// Heal cannot clear n3, which may still hold the partition.
	err := n.Heal(context.Background())
	if err == nil || !strings.Contains(err.Error(), "could not clear the faults of n3") {
		t.Errorf("Heal = %v", err)
	}
}

func TestRunWrongToken(t *testing.T) {
	c := newFakeCluster(t, 3)
	c.token = "wrong"
	var rec recorder
	n := New(c, c.admin(), rec.record, nil)
	if err := n.Run(context.Background(), parseSched(t, "0s start-partition isolate n2", c.names)); err != nil {
		t.Fatal(err)
	}
	ops := rec.take()
	if len(ops) != 1 || !strings.HasSuffix(ops[0], `} error: unreachable: n1,n2,n3`) {
		t.Errorf("ops %q", ops)
	}
	// 401 means nothing was applied: Heal has nothing it must clear.
	if err := n.Heal(context.Background()); err != nil {
		t.Errorf("Heal: %v", err)
	}
}

func TestProcessFailure(t *testing.T) {
	c := newFakeCluster(t, 3)
	c.failing["n2"] = errors.New("no such process")
	var rec recorder
	var logs bytes.Buffer
	n := New(c, c.admin(), rec.record, func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) })
	s := parseSched(t, "0s kill n1,n2\n0s pause n3\n", c.names)
	s = append(s,
		Step{Action: FPause, Nodes: []string{"n3"}},   // paused already: skipped
		Step{Action: FRestart, Nodes: []string{"n2"}}, // its kill failed: skipped
	)
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{
		`kill ["n1"] error: failed: n2 (no such process)`,
		`pause ["n3"]`,
		`pause []`,
		`restart []`,
	})
	// Skipped nodes are no problem: they are only logged.
	for _, want := range []string{`nemesis: pause [] (skipped: n3)`, `nemesis: restart [] (skipped: n2)`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if st := n.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{`resume ["n3"]`, `restart ["n1"]`})
}

// TestCrash records what each crashed node lost, restarts crashed nodes
// like killed ones, and never crashes a node that is down.
func TestCrash(t *testing.T) {
	c := newFakeCluster(t, 3)
	c.failing["n3"] = errors.New("no such process")
	var rec recorder
	n := New(c, c.admin(), rec.record, nil)
	s := parseSched(t, "0s crash n1,n3\n0s kill n2\n", c.names)
	s = append(s, Step{Action: FCrash, Nodes: []string{"n2"}}) // killed already: skipped
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{
		`crash {"nodes":["n1"],"lost":{"n1":{"writes":2,"bytes":8,"entries":1}}} error: failed: n3 (no such process)`,
		`kill ["n2"]`,
		`crash {"nodes":[],"lost":{}}`,
	})
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{`restart ["n1","n2"]`})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs["n1"] != "running" || c.procs["n2"] != "running" {
		t.Errorf("after the heal: %v", c.procs)
	}
}

func TestHeal(t *testing.T) {
	c := newFakeCluster(t, 5)
	var rec recorder
	n := New(c, c.admin(), rec.record, nil)
	s := parseSched(t, `
0s start-partition bridge n1,n2|n3|n4,n5
0s start-link loss=20% nodes=n5
0s kill n1
0s pause n2,n4
`, c.names)
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	rec.take()
	_, before, _ := c.nodes["n3"].state()
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), []string{
		`resume ["n2","n4"]`,
		`restart ["n1"]`,
		`stop-partition {"n1":["n4","n5"],"n2":["n4","n5"],"n4":["n1","n2"],"n5":["n1","n2"]}`,
		`stop-link {"delay_ms":0,"jitter_ms":0,"loss":0.2,"nodes":["n5"]}`,
	})
	for _, name := range c.names {
		if got := c.faults(name); got != emptySet {
			t.Errorf("%s holds %s after Heal", name, got)
		}
		if c.procs[name] != "running" {
			t.Errorf("%s is %s after Heal", name, c.procs[name])
		}
		// Every node is sent an empty set, needed or not.
		if _, puts, _ := c.nodes[name].state(); puts[len(puts)-1] != emptySet {
			t.Errorf("%s's last PUT is %s", name, puts[len(puts)-1])
		}
	}
	if _, after, _ := c.nodes["n3"].state(); len(after) != len(before)+1 {
		t.Errorf("the bridge node n3 got %d PUTs in Heal, want 1", len(after)-len(before))
	}
	// A second Heal records nothing and succeeds.
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOps(t, rec.take(), nil)
}

func TestRunTiming(t *testing.T) {
	c := newFakeCluster(t, 3)
	var mu sync.Mutex
	var at []time.Duration
	start := time.Now()
	n := New(c, c.admin(), func(string, any, string) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Since(start))
		return nil
	}, nil)
	s := parseSched(t, "0s pause n1\n50ms resume n1\n100ms pause n1\n100ms resume n1\n", c.names)
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if len(at) != 4 {
		t.Fatalf("%d ops", len(at))
	}
	for i, st := range s {
		if at[i] < st.At {
			t.Errorf("step %q ran at %s", st, at[i])
		}
	}
	if at[3] > 2*time.Second {
		t.Errorf("run took %s", at[3])
	}
}

func TestRunStopsWithContext(t *testing.T) {
	c := newFakeCluster(t, 3)
	var rec recorder
	n := New(c, c.admin(), rec.record, nil)
	s := parseSched(t, "0s start-partition isolate n1\n1h stop-partition\n", c.names)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, s) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if ops := rec.take(); len(ops) != 1 {
		t.Errorf("ops %q", ops)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after Run, %d before", g, before)
	}
	// An ended context stops Run before any step.
	if err := n.Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with an ended context = %v", err)
	}
}

func TestRunRejectsBadSchedule(t *testing.T) {
	c := newFakeCluster(t, 3)
	var rec recorder
	n := New(c, c.admin(), rec.record, nil)
	for _, s := range []Schedule{
		{{Action: FKill, Nodes: []string{"n9"}}},
		{{Action: "explode"}},
		{{At: time.Second, Action: FStopLink}, {Action: FStopLink}},
		{{Action: FStartPartition, Partition: Partition{Shape: "isolate", Groups: [][]string{{"n1"}}}}},
		{{Action: FStartLink, Nodes: []string{"n1"}}},
	} {
		if err := n.Run(context.Background(), s); err == nil {
			t.Errorf("Run(%v) accepted", s)
		}
	}
	if ops := rec.take(); len(ops) != 0 {
		t.Errorf("ops %q", ops)
	}
}

// TestRecordTo checks the ops as the history holds them (docs/histories-and-checks.md "Histories"): a
// partition's value is its grudge, a process action's the nodes acted on,
// a link fault's the fault; problems are the op's error.
func TestRecordTo(t *testing.T) {
	c := newFakeCluster(t, 3)
	c.nodes["n3"].srv.Close() // does not answer
	c.failing["n2"] = errors.New("boom")
	var buf bytes.Buffer
	w := histories.NewWriter(&buf, time.Now())
	n := New(c, c.admin(), RecordTo(w), nil)
	s := parseSched(t, `
0s start-partition isolate n1
0s kill n1,n2
0s restart n1
0s start-link delay=20ms jitter=5ms loss=10% nodes=n1
0s stop-link
0s stop-partition
`, c.names)
	if err := n.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ops, err := histories.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ f, value, err string }{
		{FStartPartition, `{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`, "unreachable: n3"},
		{FKill, `["n1"]`, "failed: n2 (boom)"},
		{FRestart, `["n1"]`, ""}, // re-applied, which is no problem
		{FStartLink, `{"delay_ms":20,"jitter_ms":5,"loss":0.1,"nodes":["n1"]}`, "unreachable: n3"},
		{FStopLink, `{"delay_ms":20,"jitter_ms":5,"loss":0.1,"nodes":["n1"]}`, "unreachable: n3"},
		{FStopPartition, `{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`, "unreachable: n3"},
	}
	if len(ops) != len(want) {
		t.Fatalf("ops %v", ops)
	}
	for i, w := range want {
		op := ops[i]
		if op.Index != int64(i) || op.Type != histories.Info || op.Process != histories.Nemesis || op.F != w.f ||
			string(op.Value) != w.value || op.Error != w.err {
			t.Errorf("op %d: %s value %s error %q, want %s value %s error %q", i, op.Describe(), op.Value, op.Error, w.f, w.value, w.err)
		}
	}
}

// slowRestartCluster takes a while to restart a node, and gives up if its
// context ends meanwhile, as a real restart waiting for health would.
type slowRestartCluster struct{ *fakeCluster }

func (c slowRestartCluster) Restart(ctx context.Context, node string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(300 * time.Millisecond):
	}
	return c.fakeCluster.Restart(ctx, node)
}

// TestRunFinishesTheStepUnderWay: when the client phase ends (Run's ctx is
// cancelled) during a restart, the restart still completes, so Heal finds
// nothing half started.
func TestRunFinishesTheStepUnderWay(t *testing.T) {
	c := slowRestartCluster{newFakeCluster(t, 3)}
	rec := &recorder{}
	n := New(c, c.admin(), rec.record, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := n.Run(ctx, parseSched(t, "0s kill n1\n10ms restart n1\n5s kill n2\n", c.names))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	ops := rec.take()
	if len(ops) != 2 || ops[1] != `restart ["n1"]` {
		t.Fatalf("ops %q: want the restart under way completed", ops)
	}
	if err := n.Heal(context.Background()); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	if got := c.procs["n1"]; got != "running" {
		t.Errorf("n1 is %s, want running", got)
	}
}

// kernelNetwork stands for the lab: faults outside the nodes, kept per node
// whatever the processes do; SetFaults of a node in fail returns an error.
type kernelNetwork struct {
	mu     sync.Mutex
	faults map[string]string
	calls  int
	fail   map[string]bool
}

func (k *kernelNetwork) InNode() bool { return false }

func (k *kernelNetwork) SetFaults(_ context.Context, node string, fs api.FaultSet) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.fail[node] {
		return errors.New("netlink: operation not permitted")
	}
	b, err := encode(fs)
	k.faults[node] = b
	return err
}

func (k *kernelNetwork) get(node string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.faults[node]; ok {
		return f
	}
	return emptySet
}

// TestFaultsOutsideTheNodes: with a network whose faults are kernel rules,
// a killed or paused node's faults still change, a restart re-applies
// nothing, and a failure is recorded as not installed.
func TestFaultsOutsideTheNodes(t *testing.T) {
	c := newFakeCluster(t, 3)
	k := &kernelNetwork{faults: map[string]string{}, fail: map[string]bool{}}
	var rec recorder
	n := New(c, k, rec.record, nil)
	steps := parseSched(t, `
0s  kill             n3
0s  pause            n2
0s  start-partition  isolate n1
0s  stop-partition
0s  restart          n3
0s  resume           n2
`, c.names)
	run := func(st Step) {
		t.Helper()
		st.At = 0
		if err := n.Run(context.Background(), Schedule{st}); err != nil {
			t.Fatal(err)
		}
	}
	run(steps[0])
	run(steps[1])
	run(steps[2]) // n3 killed and n2 paused get their grudge all the same
	for node, want := range map[string]string{
		"n1": set(link("n2", drop), link("n3", drop)),
		"n2": set(link("n1", drop)),
		"n3": set(link("n1", drop)),
	} {
		if got := k.get(node); got != want {
			t.Errorf("%s holds %s, want %s", node, got, want)
		}
	}
	run(steps[3]) // healed while n3 is down: its rules go too
	if got := k.get("n3"); got != emptySet {
		t.Errorf("n3 keeps %s after the heal", got)
	}
	before := k.calls
	run(steps[4])
	run(steps[5])
	if k.calls != before {
		t.Errorf("restart and resume re-applied faults (%d calls): kernel rules never left", k.calls-before)
	}
	checkOps(t, rec.take(), []string{
		`kill ["n3"]`,
		`pause ["n2"]`,
		`start-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`,
		`stop-partition {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}`,
		`restart ["n3"]`,
		`resume ["n2"]`,
	})

	// The network fails: the op says so, with the word the checker reads.
	k.fail["n2"] = true
	run(parseSched(t, "0s start-partition isolate n1", c.names)[0])
	ops := rec.take()
	if len(ops) != 1 || !strings.HasSuffix(ops[0], "error: "+histories.NotInstalled+": n2") {
		t.Errorf("ops %q, want a start-partition whose error is %q", ops, histories.NotInstalled+": n2")
	}
}
