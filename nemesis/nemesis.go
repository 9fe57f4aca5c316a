package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/histories"
)

// Cluster is what the nemesis needs from the harness: the nodes, their
// gossip addresses, and control of their processes. The nemesis may call
// the process methods for different nodes concurrently.
type Cluster interface {
	// Nodes returns the node names, n1..nN, in cluster order.
	Nodes() []string
	// GossipAddr returns a node's gossip address ("ip:port"), by which
	// other nodes' fault sets name it.
	GossipAddr(node string) string
	// Kill sends the node SIGKILL and waits for it to exit.
	Kill(ctx context.Context, node string) error
	// Crash kills the node as Kill does, then discards every write and
	// directory change of its data directory not yet made durable by an
	// fsync, as a power cut would, and says what was lost. Restart starts
	// it again.
	Crash(ctx context.Context, node string) (CrashLoss, error)
	// Restart starts a killed node again, with the same name, addresses and
	// data directory, and waits until it is healthy (its HTTP API is up).
	Restart(ctx context.Context, node string) error
	// Pause sends the node SIGSTOP.
	Pause(ctx context.Context, node string) error
	// Resume sends the node SIGCONT.
	Resume(ctx context.Context, node string) error
}

// Network installs each node's share of the network faults: on the
// loopback network each node's admin API does, in the lab kernel rules on
// the router. The nemesis decides what and when; the network how. The
// nemesis may call SetFaults for different nodes concurrently.
type Network interface {
	// SetFaults replaces node's fault set (the admin API's body: "in"
	// faults on traffic from each peer, "out" on traffic to it). An error
	// with a method Unchanged() bool that returns true means the node kept
	// its previous faults; any other error leaves them unknown.
	SetFaults(ctx context.Context, node string, fs api.FaultSet) error
	// InNode reports whether faults live inside the node processes: then
	// a killed or paused node cannot be given faults, and a restarted one
	// starts with none. Faults outside the nodes (kernel rules) stay in
	// force whatever the processes do.
	InNode() bool
}

// Nemesis injects faults into a Cluster: it runs schedules, applies network
// faults through each node's admin API, drives process faults through the
// Cluster, and records each action as an info op of process nemesis.
//
// A Nemesis is safe for concurrent use, but actions run one at a time: call
// Heal after Run has returned.
type Nemesis struct {
	cluster Cluster
	network Network
	record  func(f string, value any, problem string) error
	logf    func(format string, args ...any)
	nodes   []string

	mu        sync.Mutex // held for a whole action; guards the fields below
	partition *Partition // the partition in force, or nil
	links     []string   // the link fault's target nodes, when one is in force
	faults    faultState
	killed    map[string]bool
	paused    map[string]bool
	// applied is each node's fault set as last known: absent means none,
	// unknownSet that a request may or may not have reached it.
	applied map[string]string

	statsMu sync.Mutex
	stats   Stats
}

// unknownSet marks a node whose faults are unknown.
const unknownSet = "unknown"

// New returns a nemesis for cluster, whose Nodes it reads once, that
// installs network faults through network. record is
// called for each action with the op's f, its value, which says what was
// actually done, and its problem, what went wrong ("" if nothing did; e.g.
// "unreachable: n2"); RecordTo writes them to a history. The values are
//
//   - start-partition, stop-partition: the grudge started or healed, like
//     {"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]} ({} for no partition);
//   - start-link, stop-link: the link fault started or removed,
//     {"delay_ms":200,"jitter_ms":50,"loss":0.1,"nodes":["n1"]};
//   - kill, restart, pause, resume: the nodes acted on, like ["n1","n2"].
//
// A problem with a node's network faults reads "unreachable: n2" when the
// faults live in the nodes (the node was down or did not answer), and
// "not installed: n2" (histories.NotInstalled) when the network itself
// failed to install them.
//
// logf, if not nil, receives a line per action, with what is not recorded
// (a partition's shape and groups, nodes skipped, faults re-applied), and
// one per problem.
func New(cluster Cluster, network Network, record func(f string, value any, problem string) error, logf func(format string, args ...any)) *Nemesis {
	if record == nil {
		record = func(string, any, string) error { return nil }
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Nemesis{
		cluster: cluster,
		network: network,
		record:  record,
		logf:    logf,
		nodes:   slices.Clone(cluster.Nodes()),
		killed:  map[string]bool{},
		paused:  map[string]bool{},
		applied: map[string]string{},
		stats:   Stats{Ops: map[string]int{}},
	}
}

// RecordTo returns a record function for New that appends each action to w
// as an info op of process nemesis, its problem as the op's error.
func RecordTo(w *histories.Writer) func(f string, value any, problem string) error {
	return func(f string, value any, problem string) error {
		_, err := w.Append(histories.Op{
			Type:    histories.Info,
			Process: histories.Nemesis,
			F:       f,
			Value:   histories.JSONValue(value),
			Error:   problem,
		})
		return err
	}
}

// Run performs each step of s at its offset from the time Run was called;
// a step that takes long delays those after it, and a step under way when
// ctx ends is finished before Run returns. A step that fails on some
// nodes (an unreachable admin API, a failed kill) is recorded as such and
// the run goes on. Run returns nil once every step has run, ctx.Err() if
// ctx ended first, or an error if s is invalid for the cluster or an action
// could not be recorded. It leaves no goroutine behind.
func (n *Nemesis) Run(ctx context.Context, s Schedule) error {
	if err := s.check(n.nodes); err != nil {
		return fmt.Errorf("nemesis schedule: %w", err)
	}
	start := time.Now()
	for _, st := range s {
		if d := time.Until(start.Add(st.At)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A step once begun runs to its end (each action has its own
		// timeouts): a restart cut short would leave a node half started.
		if err := n.do(context.WithoutCancel(ctx), st); err != nil {
			return err
		}
	}
	return nil
}

// Heal is the final phase of a run: it resumes every paused node, restarts
// every killed one, then removes every partition and link fault by sending
// every node an empty fault set, recording each action. It returns an error
// if it could not bring every node back, or could not clear a node that
// holds faults (after retries).
func (n *Nemesis) Heal(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	oldPartition, oldLinks, oldFaults := n.partition, n.links, n.faults
	n.partition, n.links, n.faults = nil, nil, faultState{}

	for _, f := range []string{FResume, FRestart} {
		down := n.paused
		if f == FRestart {
			down = n.killed
		}
		nodes := sortCluster(slices.Collect(maps.Keys(down)), n.index())
		if len(nodes) == 0 {
			continue
		}
		r := n.process(ctx, f, nodes, false) // clearAll follows
		for _, x := range sortCluster(slices.Collect(maps.Keys(r.failed)), n.index()) {
			errs = append(errs, fmt.Errorf("%s %s: %s", f, x, r.failed[x]))
		}
		if err := n.emitProcess(f, r); err != nil {
			errs = append(errs, err)
		}
	}

	unreachable, stuck := n.clearAll(ctx)
	if len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("could not clear the faults of %s", strings.Join(stuck, ", ")))
	}
	if oldPartition != nil {
		err := n.emit(FStopPartition, grudgeValue(oldFaults.grudge), n.problem(unreachable), oldPartition.String())
		if err != nil {
			errs = append(errs, err)
		}
	}
	if oldFaults.link != nil {
		v := newLinkValue(*oldFaults.link, oldLinks)
		if err := n.emit(FStopLink, v, n.problem(unreachable), ""); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nemesis heal: %w", errors.Join(errs...))
	}
	return nil
}

// clearAll sends every node an empty fault set, retrying for a while the
// nodes that may hold faults. It returns the nodes it could not reach and,
// among them, those that may still hold faults.
func (n *Nemesis) clearAll(ctx context.Context) (unreachable, stuck []string) {
	failed := map[string]bool{}
	targets := n.nodes
	for attempt := 1; ; attempt++ {
		for _, x := range targets {
			delete(failed, x)
		}
		for _, x := range n.applyFaults(ctx, targets, true) {
			failed[x] = true
		}
		stuck = stuck[:0]
		for _, x := range n.nodes {
			if failed[x] && n.appliedSet(x) != emptySet {
				stuck = append(stuck, x)
			}
		}
		if len(stuck) == 0 || attempt == 3 || !sleepCtx(ctx, 250*time.Millisecond) {
			break
		}
		targets = slices.Clone(stuck)
	}
	for _, x := range n.nodes {
		if failed[x] {
			unreachable = append(unreachable, x)
		}
	}
	return unreachable, stuck
}

// Stats counts what a Nemesis has done, for a run's summary.
type Stats struct {
	Ops         map[string]int // ops recorded, by f
	Unreachable int            // times a node could not be reached to change its faults
	Failed      int            // kill, restart, pause and resume calls that failed
}

// String summarizes s on one line, e.g.
// "start-partition 2, stop-partition 2, kill 1, restart 1; 1 unreachable".
func (s Stats) String() string {
	var parts []string
	for _, f := range actions() {
		if c := s.Ops[f]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f, c))
		}
	}
	out := strings.Join(parts, ", ")
	if out == "" {
		out = "no faults"
	}
	var extra []string
	if s.Unreachable > 0 {
		extra = append(extra, fmt.Sprintf("%d unreachable", s.Unreachable))
	}
	if s.Failed > 0 {
		extra = append(extra, fmt.Sprintf("%d failed", s.Failed))
	}
	if len(extra) > 0 {
		out += "; " + strings.Join(extra, ", ")
	}
	return out
}

// Stats returns a copy of the counts so far.
func (n *Nemesis) Stats() Stats {
	n.statsMu.Lock()
	defer n.statsMu.Unlock()
	s := n.stats
	s.Ops = maps.Clone(n.stats.Ops)
	return s
}

// The op values say what was done (see New): a partition's is its Grudge,
// a process action's the nodes acted on, a link fault's a linkValue. What
// went wrong is the op's problem, not part of its value.
type linkValue struct {
	DelayMS  int      `json:"delay_ms"`
	JitterMS int      `json:"jitter_ms"`
	Loss     float64  `json:"loss"`
	Nodes    []string `json:"nodes"`
}

func newLinkValue(f LinkFault, nodes []string) linkValue {
	if nodes == nil {
		nodes = []string{}
	}
	return linkValue{
		DelayMS:  int(f.Delay / time.Millisecond),
		JitterMS: int(f.Jitter / time.Millisecond),
		Loss:     f.Loss,
		Nodes:    nodes,
	}
}

// grudgeValue returns g as an op value: {} rather than null when empty.
func grudgeValue(g Grudge) Grudge {
	if g == nil {
		return Grudge{}
	}
	return g
}

// processResult is the outcome of a kill, restart, pause or resume.
type processResult struct {
	nodes       []string             // acted on successfully: the op's value
	lost        map[string]CrashLoss // crash: what each node lost
	skipped     []string             // already in the wanted state
	failed      map[string]string    // node → error
	reapplied   []string             // got the faults in force again
	unreachable []string             // could not get them
}

// problem describes the nodes whose faults could not be set, as an op's
// problem: "unreachable: n2,n3" (faults in the nodes), "not installed:
// n2,n3" (the network failed), or "" for none.
func (n *Nemesis) problem(nodes []string) string {
	if len(nodes) == 0 {
		return ""
	}
	if n.network.InNode() {
		return "unreachable: " + strings.Join(nodes, ",")
	}
	return histories.NotInstalled + ": " + strings.Join(nodes, ",")
}

// emitProcess records a process action: its nodes as the value, failures
// and unreachable nodes as the problem, skipped and re-applied nodes in
// the log only.
func (n *Nemesis) emitProcess(f string, r processResult) error {
	var problems, notes []string
	if len(r.failed) > 0 {
		var fs []string
		for _, x := range sortCluster(slices.Collect(maps.Keys(r.failed)), n.index()) {
			fs = append(fs, fmt.Sprintf("%s (%s)", x, r.failed[x]))
		}
		problems = append(problems, "failed: "+strings.Join(fs, ", "))
	}
	if p := n.problem(r.unreachable); p != "" {
		problems = append(problems, p)
	}
	if len(r.skipped) > 0 {
		notes = append(notes, "skipped: "+strings.Join(r.skipped, ","))
	}
	if len(r.reapplied) > 0 {
		notes = append(notes, "reapplied: "+strings.Join(r.reapplied, ","))
	}
	var value any = r.nodes
	if f == FCrash {
		value = crashValue{Nodes: r.nodes, Lost: r.lost}
	}
	return n.emit(f, value, strings.Join(problems, "; "), strings.Join(notes, "; "))
}

// CrashLoss is what a crash discarded of a node's data directory: the
// writes (and their bytes) no fsync had made durable, and the directory
// entries created, renamed or removed since their directory's last fsync.
type CrashLoss struct {
	Writes  int   `json:"writes"`
	Bytes   int64 `json:"bytes"`
	Entries int   `json:"entries"`
}

// crashValue is a crash op's value (docs/histories-and-checks.md "Histories"): the nodes crashed
// and what each lost.
type crashValue struct {
	Nodes []string             `json:"nodes"`
	Lost  map[string]CrashLoss `json:"lost"`
}

// do performs one step and records it.
func (n *Nemesis) do(ctx context.Context, st Step) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch st.Action {
	case FStartPartition:
		p := Partition{Shape: st.Partition.Shape, OneWay: st.Partition.OneWay}
		for _, g := range st.Partition.Groups {
			p.Groups = append(p.Groups, slices.Clone(g))
		}
		n.partition = &p
		n.faults.grudge = p.Grudge()
		un := n.applyFaults(ctx, n.nodes, false)
		return n.emit(FStartPartition, grudgeValue(n.faults.grudge), n.problem(un), p.String())
	case FStopPartition:
		v, note := grudgeValue(n.faults.grudge), "no partition in force"
		if p := n.partition; p != nil {
			note = p.String()
		}
		n.partition, n.faults.grudge = nil, nil
		un := n.applyFaults(ctx, n.nodes, false)
		return n.emit(FStopPartition, v, n.problem(un), note)
	case FStartLink:
		f := st.Link
		n.links = slices.Clone(st.Nodes)
		n.faults.link = &f
		n.faults.linkNodes = map[string]bool{}
		for _, x := range st.Nodes {
			n.faults.linkNodes[x] = true
		}
		un := n.applyFaults(ctx, n.nodes, false)
		return n.emit(FStartLink, newLinkValue(f, n.links), n.problem(un), "")
	case FStopLink:
		v, note := linkValue{Nodes: []string{}}, "no link fault in force"
		if f := n.faults.link; f != nil {
			v, note = newLinkValue(*f, n.links), ""
		}
		n.links, n.faults.link, n.faults.linkNodes = nil, nil, nil
		un := n.applyFaults(ctx, n.nodes, false)
		return n.emit(FStopLink, v, n.problem(un), note)
	case FKill, FCrash, FRestart, FPause, FResume:
		return n.emitProcess(st.Action, n.process(ctx, st.Action, st.Nodes, true))
	}
	return fmt.Errorf("nemesis: unknown action %q", st.Action) // check rejects it first
}

// emit records an action with its problem ("" if none) and counts it;
// note, if not empty, is logged but not recorded.
func (n *Nemesis) emit(f string, value any, problem, note string) error {
	b, _ := json.Marshal(value)
	line := fmt.Sprintf("nemesis: %s %s", f, b)
	if note != "" {
		line += " (" + note + ")"
	}
	if problem != "" {
		line += " error: " + problem
	}
	n.logf("%s", line)
	n.statsMu.Lock()
	n.stats.Ops[f]++
	n.statsMu.Unlock()
	if err := n.record(f, value, problem); err != nil {
		return fmt.Errorf("nemesis: record %s: %w", f, err)
	}
	return nil
}

// process kills, restarts, pauses or resumes nodes concurrently, skipping
// those already in the wanted state; with reapply, it sends the nodes it
// restarts or resumes the faults in force right after.
func (n *Nemesis) process(ctx context.Context, f string, nodes []string, reapply bool) processResult {
	v := processResult{nodes: []string{}}
	if f == FCrash {
		v.lost = map[string]CrashLoss{}
	}
	type result struct {
		node     string
		lost     CrashLoss
		fs       api.FaultSet // the faults to re-apply, when body is not ""
		body     string
		err      error
		applyErr error
	}
	var todo []*result
	for _, x := range nodes {
		var ok bool
		switch f {
		case FKill, FCrash:
			ok = !n.killed[x]
		case FRestart:
			ok = n.killed[x]
		case FPause:
			ok = !n.killed[x] && !n.paused[x]
		case FResume:
			ok = n.paused[x]
		}
		if !ok {
			v.skipped = append(v.skipped, x)
			continue
		}
		r := &result{node: x}
		// Faults in a node are lost with its process and cannot be
		// changed while it is paused; faults outside stay as they are.
		if reapply && (f == FRestart || f == FResume) && n.network.InNode() {
			have := emptySet // a restarted node starts with no faults
			if f == FResume {
				have = n.appliedSet(x)
			}
			if fs, want, err := n.desired(x); err == nil && want != have {
				r.fs, r.body = fs, want
			}
		}
		todo = append(todo, r)
	}
	var wg sync.WaitGroup
	for _, r := range todo {
		wg.Go(func() {
			switch f {
			case FKill:
				r.err = n.cluster.Kill(ctx, r.node)
			case FCrash:
				r.lost, r.err = n.cluster.Crash(ctx, r.node)
			case FRestart:
				r.err = n.cluster.Restart(ctx, r.node)
			case FPause:
				r.err = n.cluster.Pause(ctx, r.node)
			case FResume:
				r.err = n.cluster.Resume(ctx, r.node)
			}
			if r.err == nil && r.body != "" {
				r.applyErr = n.network.SetFaults(ctx, r.node, r.fs)
			}
		})
	}
	wg.Wait()
	for _, r := range todo {
		x := r.node
		if r.err != nil {
			if v.failed == nil {
				v.failed = map[string]string{}
			}
			v.failed[x] = r.err.Error()
			n.logf("nemesis: %s %s failed: %v", f, x, r.err)
			n.count(func(s *Stats) { s.Failed++ })
			continue
		}
		v.nodes = append(v.nodes, x)
		switch f {
		case FKill, FCrash:
			if f == FCrash {
				v.lost[x] = r.lost
			}
			n.killed[x] = true
			delete(n.paused, x)
			if n.network.InNode() {
				n.applied[x] = emptySet // the restarted process starts clean
			}
		case FRestart:
			delete(n.killed, x)
			if n.network.InNode() {
				n.applied[x] = emptySet
			}
		case FPause:
			n.paused[x] = true
		case FResume:
			delete(n.paused, x)
		}
		if r.body != "" {
			n.noteApplied(x, r.body, r.applyErr)
			if r.applyErr != nil {
				v.unreachable = append(v.unreachable, x)
			} else {
				v.reapplied = append(v.reapplied, x)
			}
		}
	}
	return v
}

// applyFaults sends the given nodes their fault sets in force, all at once;
// unless force is set, only to nodes whose faults differ from what they are
// known to hold. When faults live in the nodes, killed and paused nodes
// are not asked. It returns the nodes that needed a change and did not get
// it, in cluster order.
func (n *Nemesis) applyFaults(ctx context.Context, nodes []string, force bool) (unreachable []string) {
	type result struct {
		node, body string
		err        error
		sent       bool
	}
	results := make([]*result, 0, len(nodes))
	inNode := n.network.InNode()
	var wg sync.WaitGroup
	for _, x := range nodes {
		fs, body, err := n.desired(x)
		r := &result{node: x, body: body, err: err}
		results = append(results, r)
		switch {
		case err != nil:
		case !force && body == n.appliedSet(x):
		case inNode && n.killed[x]:
			r.err = errors.New("killed")
		case inNode && n.paused[x]:
			r.err = errors.New("paused")
		default:
			r.sent = true
			wg.Go(func() { r.err = n.network.SetFaults(ctx, x, fs) })
		}
	}
	wg.Wait()
	for _, r := range results {
		switch {
		case r.sent:
			n.noteApplied(r.node, r.body, r.err)
		case r.err != nil:
			n.logf("nemesis: cannot set the faults of %s: %v", r.node, r.err)
			n.count(func(s *Stats) { s.Unreachable++ })
		}
		if r.err != nil {
			unreachable = append(unreachable, r.node)
		}
	}
	return unreachable
}

// noteApplied updates what a node is known to hold after setting its
// faults to body returned err, counting and logging a failure.
func (n *Nemesis) noteApplied(node, body string, err error) {
	var un interface{ Unchanged() bool }
	switch {
	case err == nil:
		n.applied[node] = body
		return
	case errors.As(err, &un) && un.Unchanged(): // refused: the node kept its faults
	default:
		n.applied[node] = unknownSet
	}
	n.logf("nemesis: cannot set the faults of %s: %v", node, err)
	n.count(func(s *Stats) { s.Unreachable++ })
}

// desired returns the fault set node should hold now, and its encoding.
func (n *Nemesis) desired(node string) (api.FaultSet, string, error) {
	fs := n.faults.faultSet(node, n.nodes, n.cluster.GossipAddr)
	body, err := encode(fs)
	return fs, body, err
}

// appliedSet returns the encoded fault set node is known to hold.
func (n *Nemesis) appliedSet(node string) string {
	if s, ok := n.applied[node]; ok {
		return s
	}
	return emptySet
}

func (n *Nemesis) count(f func(*Stats)) {
	n.statsMu.Lock()
	f(&n.stats)
	n.statsMu.Unlock()
}

// index maps each node to its position in the cluster.
func (n *Nemesis) index() map[string]int {
	idx := make(map[string]int, len(n.nodes))
	for i, x := range n.nodes {
		idx[x] = i
	}
	return idx
}

// sleepCtx waits for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
