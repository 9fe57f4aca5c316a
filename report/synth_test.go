package report

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

// synth describes a synthetic run.
type synth struct {
	seed    uint64
	nodes   int
	clients int
	ops     int  // about how many ops before the final reads
	faults  bool // run a nemesis: partitions, kills, pauses, link faults
	bug     bool // one read on n1 returns 0 late in the run: a linearizability anomaly
}

// simClient is a client of the simulation.
type simClient struct {
	proc  histories.Process
	node  int
	at    int64 // time of its next event
	busy  bool
	done  histories.Op
	index int // in the heap
}

type clientHeap []*simClient

func (h clientHeap) Len() int           { return len(h) }
func (h clientHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h clientHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index, h[j].index = i, j }
func (h *clientHeap) Push(x any)        { c := x.(*simClient); c.index = len(*h); *h = append(*h, c) }
func (h *clientHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// history simulates a cluster of gossiping max-counter servers under
// clients (client i bound to node i mod nodes) and, if asked, a nemesis,
// and records a well-formed history: correct by construction unless bug is
// set. Every op takes effect at its invoke.
func (s synth) history() []histories.Op {
	rng := rand.New(rand.NewPCG(s.seed, 7))
	var ops []histories.Op
	emit := func(op histories.Op, t int64) {
		if n := len(ops); n > 0 && t < ops[n-1].Time {
			t = ops[n-1].Time
		}
		op.Index, op.Time = int64(len(ops)), t
		ops = append(ops, op)
	}
	name := func(i int) string { return fmt.Sprintf("n%d", i+1) }
	counter := make([]int64, s.nodes)
	killed := make([]bool, s.nodes)
	paused := make([]bool, s.nodes)
	isolated := -1
	nextProc := histories.Process(s.clients)
	var sets int64
	h := &clientHeap{}
	for i := range s.clients {
		heap.Push(h, &simClient{proc: histories.Process(i), node: i % s.nodes, at: int64(rng.IntN(2_000_000))})
	}
	const ms = int64(time.Millisecond)
	nextGossip := 3 * ms
	gossip := func(now int64) {
		for ; nextGossip <= now; nextGossip += 2*ms + rng.Int64N(3*ms) {
			from, to := rng.IntN(s.nodes), rng.IntN(s.nodes)
			if from == to || paused[from] || paused[to] || killed[from] || killed[to] ||
				(isolated >= 0 && (from == isolated) != (to == isolated)) {
				continue
			}
			counter[to] = max(counter[to], counter[from])
		}
	}
	// The nemesis cycles through its faults every period.
	// about a dozen faults over the run: a client does an op every ~3ms
	period := max(20*ms, int64(s.ops/2/s.clients)*3*ms/12)
	nextFault := period
	faultOn := false
	step := 0
	var faultNode int
	var faultValue any // the value of the fault's start op, and of its stop op (docs/histories-and-checks.md "Histories")
	nemesis := func(now int64) {
		if !s.faults {
			return
		}
		for nextFault <= now {
			t := nextFault
			nextFault += period + rng.Int64N(period/2)
			if !faultOn {
				faultNode = rng.IntN(s.nodes)
				x := name(faultNode)
				switch step % 4 {
				case 0:
					isolated = faultNode
					others := []string{}
					for j := range s.nodes {
						if j != faultNode {
							others = append(others, name(j))
						}
					}
					grudge := map[string][]string{x: others}
					for _, o := range others {
						grudge[o] = []string{x}
					}
					faultValue = grudge
					emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: "start-partition", Value: histories.JSONValue(grudge)}, t)
				case 1:
					killed[faultNode] = true
					faultValue = []string{x}
					emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: "kill", Value: histories.JSONValue(faultValue)}, t)
				case 2:
					paused[faultNode] = true
					faultValue = []string{x}
					emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: "pause", Value: histories.JSONValue(faultValue)}, t)
				case 3:
					faultValue = map[string]any{"delay_ms": 50, "jitter_ms": 10, "loss": 0.1, "nodes": []string{x}}
					emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: "start-link", Value: histories.JSONValue(faultValue)}, t)
				}
			} else {
				f := [...]string{"stop-partition", "restart", "resume", "stop-link"}[step%4]
				switch step % 4 {
				case 0:
					isolated = -1
				case 1:
					killed[faultNode] = false
				case 2:
					paused[faultNode] = false
				}
				emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: f, Value: histories.JSONValue(faultValue)}, t)
				step++
			}
			faultOn = !faultOn
		}
	}
	bugDone := false
	for len(ops) < s.ops {
		c := (*h)[0]
		now := c.at
		gossip(now)
		nemesis(now)
		if c.busy {
			emit(c.done, now)
			c.busy = false
			if c.done.Type == histories.Info {
				c.proc = nextProc
				nextProc++
			}
			c.at = now + 200_000 + rng.Int64N(4*ms)
			heap.Fix(h, c.index)
			continue
		}
		x := name(c.node)
		inv := histories.Op{Type: histories.Invoke, Process: c.proc, Node: x}
		done := histories.Op{Process: c.proc, Node: x}
		latency := 150_000 + int64(rng.ExpFloat64()*float64(700_000))
		if rng.IntN(50) == 0 {
			latency *= 20
		}
		if rng.IntN(2) == 0 {
			inv.F, done.F = histories.FGet, histories.FGet
			switch {
			case killed[c.node]:
				done.Type, done.Error, latency = histories.Fail, "connection refused", 100_000
			case paused[c.node]:
				done.Type, done.Error, latency = histories.Fail, "timeout after 1s", 200*ms
			default:
				done.Type = histories.OK
				v := counter[c.node]
				if s.bug && !bugDone && c.node == 0 && len(ops) > s.ops/2 && v > 0 {
					v, bugDone = 0, true // a stale read
				}
				done.Value = histories.IntValue(v)
			}
		} else {
			sets++
			v := sets*int64(s.clients) + int64(c.proc)%int64(s.clients)
			if len(ops) > s.ops*9/10 && rng.IntN(30) == 0 {
				v = math.MaxInt64 - sets // beyond 2^53
			}
			inv.F, done.F = histories.FSet, histories.FSet
			inv.Value, done.Value = histories.IntValue(v), histories.IntValue(v)
			switch {
			case killed[c.node]:
				done.Type, done.Error, latency = histories.Fail, "connection refused", 100_000
			case paused[c.node]:
				done.Type, done.Error, latency = histories.Info, "timeout after 1s", 200*ms
				if rng.IntN(2) == 0 {
					counter[c.node] = max(counter[c.node], v)
				}
			default:
				applied := v > counter[c.node]
				counter[c.node] = max(counter[c.node], v)
				cur := counter[c.node]
				done.Type, done.Applied, done.Current = histories.OK, &applied, &cur
			}
		}
		emit(inv, now)
		c.busy, c.done, c.at = true, done, now+latency
		heap.Fix(h, c.index)
	}
	// Complete what is pending, heal, and read until the servers agree.
	for h.Len() > 0 {
		c := heap.Pop(h).(*simClient)
		if c.busy {
			emit(c.done, c.at)
		}
	}
	now := ops[len(ops)-1].Time + ms
	if s.faults && faultOn {
		f := [...]string{"stop-partition", "restart", "resume", "stop-link"}[step%4]
		emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: f, Value: histories.JSONValue(faultValue)}, now)
		isolated, killed[faultNode], paused[faultNode] = -1, false, false
	}
	top := slices.Max(counter)
	for {
		for j := range s.nodes {
			p := nextProc + histories.Process(j)
			now += 100_000 + rng.Int64N(200_000)
			emit(histories.Op{Type: histories.Invoke, Process: p, F: histories.FFinalGet, Node: name(j)}, now)
			now += 100_000 + rng.Int64N(300_000)
			emit(histories.Op{Type: histories.OK, Process: p, F: histories.FFinalGet, Node: name(j), Value: histories.IntValue(counter[j])}, now)
		}
		if slices.Min(counter) == top {
			return ops
		}
		for j := range counter {
			if counter[j] < top {
				counter[j] = top
				break
			}
		}
		now += 50 * ms
	}
}

// writeRun stores a synthetic run as the harness would, under
// store/name/<stamp>, and returns its directory. With crashed, the run
// has no results.json, its run.json records an error, and its history
// ends in a truncated line.
func writeRun(t testing.TB, root, name string, at time.Time, s synth, crashed bool) string {
	t.Helper()
	run, err := runstore.Create(root, name, at)
	if err != nil {
		t.Fatal(err)
	}
	ops := s.history()
	f, err := os.Create(run.File(runstore.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := histories.Encode(f, ops); err != nil {
		t.Fatal(err)
	}
	if crashed {
		f.WriteString(`{"index":` + fmt.Sprint(len(ops)) + `,"time":`)
	}
	f.Close()
	rec := map[string]any{
		"name": name, "seed": s.seed, "version": "(devel)",
		"config": map[string]any{"name": name, "nodes": s.nodes, "clients": s.clients, "requests": s.ops / 2 / s.clients,
			"rate": 0, "request_timeout": int64(time.Second), "converge_timeout": int64(10 * time.Second), "store": root},
		"replay": fmt.Sprintf("ec-counter test --seed %d --name %s", s.seed, name),
		"start":  at.UTC(),
	}
	if s.faults {
		rec["config"].(map[string]any)["nemesis"] = []string{"partition", "kill", "pause", "link"}
		rec["nemesis_schedule"] = "400ms  start-partition  isolate n1\n800ms  stop-partition"
	}
	if s.bug {
		rec["config"].(map[string]any)["bug"] = "stale-read"
	}
	end := at.Add(time.Duration(ops[len(ops)-1].Time) + 200*time.Millisecond)
	if crashed {
		rec["error"] = "start cluster: node n2 exited: signal: killed"
		rec["end"] = end.UTC()
	} else {
		res := checker.Check(ops)
		writeJSONFile(t, run.File(runstore.ResultsFile), res)
		rec["end"] = end.UTC()
		rec["valid"] = res.Valid
		rec["timings"] = map[string]int64{"startup_ns": 600e6, "clients_ns": ops[len(ops)-1].Time, "convergence_ns": 52e6,
			"shutdown_ns": 30e6, "checking_ns": 20e6, "total_ns": end.Sub(at).Nanoseconds()}
	}
	writeJSONFile(t, run.File(runstore.RecordFile), rec)
	os.WriteFile(run.File(runstore.HarnessLog), []byte("run "+string(run)+"\n"), 0o644)
	for i := range s.nodes {
		os.WriteFile(run.NodeLog(fmt.Sprintf("n%d", i+1)), []byte("node log\n"), 0o644)
	}
	os.WriteFile(run.File("admin-token"), []byte("secret-admin-token\n"), 0o600)
	return string(run)
}

func writeJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSynthHistoryIsChecked(t *testing.T) {
	good := synth{seed: 1, nodes: 3, clients: 6, ops: 3000, faults: true}.history()
	if err := checker.Validate(good); err != nil {
		t.Fatalf("synthetic history is malformed: %v", err)
	}
	if r := checker.Check(good); r.Valid != checker.Valid {
		var b []byte
		b, _ = json.MarshalIndent(r.Anomalies, "", " ")
		t.Fatalf("synthetic history without bug is %s: %s", r.Valid, b)
	}
	bad := synth{seed: 1, nodes: 3, clients: 6, ops: 3000, faults: true, bug: true}.history()
	if r := checker.Check(bad); r.Valid != checker.Invalid {
		t.Fatalf("synthetic history with bug is %s, want invalid", r.Valid)
	}
}
