package nemesis

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The nemesis's history fs (docs/histories-and-checks.md "Histories"), which are also the actions of a
// schedule's steps.
const (
	FStartPartition = "start-partition" // cut the network (Step.Partition)
	FStopPartition  = "stop-partition"  // heal the partition in force
	FStartLink      = "start-link"      // degrade the links of Step.Nodes (Step.Link)
	FStopLink       = "stop-link"       // remove the link fault in force
	FKill           = "kill"            // SIGKILL Step.Nodes
	FCrash          = "crash"           // SIGKILL Step.Nodes and lose their unsynced writes
	FRestart        = "restart"         // start the killed Step.Nodes again
	FPause          = "pause"           // SIGSTOP Step.Nodes
	FResume         = "resume"          // SIGCONT the paused Step.Nodes
)

// actions lists the step actions in the order they are documented.
func actions() []string {
	return []string{FStartPartition, FStopPartition, FStartLink, FStopLink, FKill, FCrash, FRestart, FPause, FResume}
}

// Step is one timed action of a schedule. Steps are concrete: every target
// is resolved to node names, so a schedule prints and replays exactly.
type Step struct {
	At     time.Duration // offset from the start of Nemesis.Run
	Action string        // one of the F constants
	// Nodes are the nodes acted on by kill, crash, restart, pause and resume, and
	// for start-link the nodes whose links (to and from every peer) are
	// degraded. They are listed in cluster order.
	Nodes     []string
	Partition Partition // for start-partition
	Link      LinkFault // for start-link
}

// String renders s as a line of the schedule format, e.g.
// "1.5s  start-partition  isolate n1".
func (s Step) String() string {
	var args string
	switch s.Action {
	case FStartPartition:
		args = s.Partition.String()
	case FStartLink:
		args = s.Link.String() + " nodes=" + strings.Join(s.Nodes, ",")
	case FKill, FCrash, FRestart, FPause, FResume:
		args = strings.Join(s.Nodes, ",")
	}
	return strings.TrimRight(fmt.Sprintf("%-9s %-16s %s", s.At, s.Action, args), " ")
}

// Schedule is a sequence of steps in time order. Steps with the same At run
// in order.
type Schedule []Step

// String renders s in the schedule format that ParseSchedule reads, one
// step a line.
func (s Schedule) String() string {
	var b strings.Builder
	for _, st := range s {
		b.WriteString(st.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// NetworkFaults reports whether s starts any network fault (a partition
// or a link fault), which needs a Network that can install it.
func (s Schedule) NetworkFaults() bool {
	for _, st := range s {
		if st.Action == FStartPartition || st.Action == FStartLink {
			return true
		}
	}
	return false
}

// check verifies that s is well formed over nodes: times never go back,
// actions are known, nodes exist, partitions and link faults are valid.
func (s Schedule) check(nodes []string) error {
	idx, err := indexNodes(nodes)
	if err != nil {
		return err
	}
	var prev time.Duration
	for i, st := range s {
		if err := st.check(idx, prev); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st, err)
		}
		prev = st.At
	}
	return nil
}

func (s Step) check(idx map[string]int, prev time.Duration) error {
	if s.At < prev {
		return fmt.Errorf("time %s is before the previous step's %s", s.At, prev)
	}
	for _, n := range s.Nodes {
		if _, ok := idx[n]; !ok {
			return fmt.Errorf("unknown node %q (nodes: %s)", n, strings.Join(clusterOrder(idx), ","))
		}
	}
	switch s.Action {
	case FStartPartition:
		return s.Partition.check(idx)
	case FStartLink:
		if len(s.Nodes) == 0 {
			return errors.New("start-link needs nodes")
		}
		return s.Link.check()
	case FStopPartition, FStopLink:
		return nil
	case FKill, FCrash, FRestart, FPause, FResume:
		if len(s.Nodes) == 0 {
			return fmt.Errorf("%s needs nodes", s.Action)
		}
		return nil
	}
	return fmt.Errorf("unknown action %q (want one of %s)", s.Action, strings.Join(actions(), ", "))
}

// Generate derives a schedule from seed: after a clean warm-up of about a quarter interval,
// faults start and stop alternately, each fault lasting about interval and
// followed by about interval of clean running (every span jittered by ±25%),
// until duration; a fault still running at duration stops then. Each fault
// window takes the next of kinds in a seeded shuffle, reshuffled every
// round, so every kind gets a window before any gets a second; then its
// shape, targets and parameters. When fewer windows than kinds fit at that
// pace, the clean stretches shrink to about a quarter interval; kinds that
// still do not fit are left out, and Unused names them. The same arguments
// always give the same schedule.
//
// Kinds are "partition" (any shape the cluster size allows, with equal
// odds), a shape name ("isolate", "halves", "random-halves", "bridge",
// "majorities-ring", or one with a "-oneway" suffix), "delay", "loss",
// "link" (counts as both delay and loss), "kill", "pause", and "all" (all
// of partition, delay, loss, kill and pause); Describe lists them. No kinds
// give an empty schedule.
func Generate(seed uint64, kinds []string, interval, duration time.Duration, nodes []string) (Schedule, error) {
	idx, err := indexNodes(nodes)
	if err != nil {
		return nil, err
	}
	gens, err := expandKinds(kinds, len(nodes))
	if err != nil {
		return nil, err
	}
	if len(gens) == 0 {
		return nil, nil
	}
	if interval <= 0 {
		return nil, fmt.Errorf("nemesis interval must be positive, got %s", interval)
	}
	s, err := generate(seed, gens, interval, duration, nodes, idx, 1)
	if err != nil || windows(s) >= len(gens) {
		return s, err
	}
	// Too short for every kind at the usual pace: shorten the clean
	// stretches to a quarter, so that more kinds fit.
	return generate(seed, gens, interval, duration, nodes, idx, 0.25)
}

// generate lays out fault windows of about interval each, separated by
// clean stretches of about interval·clean, as Generate describes.
func generate(seed uint64, gens []string, interval, duration time.Duration, nodes []string, idx map[string]int, clean float64) (Schedule, error) {
	rng := rand.New(rand.NewPCG(seed, generateStream))
	span := func() time.Duration {
		d := time.Duration(float64(interval) * (0.75 + 0.5*rng.Float64())).Round(time.Millisecond)
		return max(d, time.Millisecond)
	}
	var s Schedule
	// Kinds take turns: each round is a seeded shuffle of them all, so a
	// run with at least as many windows as kinds injects every one.
	var round []int
	// A short warm-up lets the clients start before the first fault.
	for start := (span() / 4).Round(time.Millisecond); start < duration; {
		length := span()
		stop := min(start+length, duration)
		if len(round) == 0 {
			round = rng.Perm(len(gens))
		}
		kind := gens[round[0]]
		round = round[1:]
		first, last, err := window(kind, nodes, idx, rng)
		if err != nil {
			return nil, err
		}
		first.At, last.At = start, stop
		s = append(s, first, last)
		gap := time.Duration(float64(span()) * clean).Round(time.Millisecond)
		start = stop + max(gap, time.Millisecond)
	}
	return s, nil
}

// windows counts the fault windows of a generated schedule.
func windows(s Schedule) int { return len(s) / 2 }

// generateStream and parseStream are the PCG streams of Generate's and
// ParseSchedule's random choices.
const (
	generateStream = 0x6e656d65736973 // "nemesis"
	parseStream    = 0x7363686564756c // "schedul"
)

// Unused returns the kinds (as --nemesis takes them) that no fault window
// of s injects, in the order given: a partition window counts for
// "partition" and for its shape, a link window for "link" and for "delay"
// or "loss" as it has them, kill and pause windows for their kind.
func Unused(kinds []string, s Schedule) []string {
	used := map[string]bool{}
	for _, st := range s {
		switch st.Action {
		case FStartPartition:
			used["partition"] = true
			shape := st.Partition.Shape
			if st.Partition.OneWay {
				shape += onewaySuffix
			}
			used[shape] = true
		case FStartLink:
			used["link"] = true
			used["delay"] = used["delay"] || st.Link.Delay > 0 || st.Link.Jitter > 0
			used["loss"] = used["loss"] || st.Link.Loss > 0
		case FKill, FCrash, FPause:
			used[st.Action] = true
		}
	}
	var out []string
	for _, k := range kinds {
		k = strings.ToLower(strings.TrimSpace(k))
		ks := []string{k}
		if k == "all" {
			ks = allKinds()
		}
		for _, k := range ks {
			if k != "" && !used[k] && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// CrashKinds reports whether kinds (as --nemesis takes them) include crash,
// which needs the data directories on a power-loss file system.
func CrashKinds(kinds []string) bool {
	return slices.ContainsFunc(kinds, func(k string) bool { return strings.ToLower(strings.TrimSpace(k)) == FCrash })
}

// Crashes reports whether s crashes a node.
func (s Schedule) Crashes() bool {
	return slices.ContainsFunc(s, func(st Step) bool { return st.Action == FCrash })
}

// NetworkKinds reports whether kinds (as --nemesis takes them) include a
// network fault: a partition of any shape, delay, loss or link. Such a
// request needs a Network that can install it, whatever the seed draws.
func NetworkKinds(kinds []string) bool {
	for _, k := range kinds {
		k = strings.ToLower(strings.TrimSpace(k))
		if k != "" && k != FKill && k != FCrash && k != FPause {
			return true
		}
	}
	return false
}

// allKinds is what --nemesis all means.
func allKinds() []string { return []string{"partition", "delay", "loss", FKill, FPause} }

// DefaultKinds are the kinds a run injects when its user names none: every
// kind of all, and crash; the harness leaves out those its network cannot
// inject for its nodes.
func DefaultKinds() []string { return append(allKinds(), FCrash) }

// expandKinds turns user-facing kinds into the window kinds Generate draws
// from: "link" into delay and loss; they are checked against the cluster
// size.
func expandKinds(kinds []string, n int) ([]string, error) {
	var out []string
	add := func(k string) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, k := range kinds {
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "":
		case "all":
			more, err := expandKinds(allKinds(), n)
			if err != nil {
				return nil, err
			}
			for _, m := range more {
				add(m)
			}
		case "partition":
			if n < 2 {
				return nil, fmt.Errorf("nemesis partition needs at least 2 nodes, have %d", n)
			}
			add(k)
		case "link":
			add("delay")
			add("loss")
		case "delay", "loss", FKill, FCrash, FPause:
			add(k)
		default:
			base, oneway := strings.CutSuffix(k, onewaySuffix)
			if !slices.Contains(shapes(), base) || (oneway && base == shapeRing) {
				return nil, fmt.Errorf("unknown nemesis kind %q (see --nemesis list)", k)
			}
			if n < minNodes(base) {
				return nil, fmt.Errorf("nemesis %s needs at least %d nodes, have %d", k, minNodes(base), n)
			}
			add(k)
		}
	}
	return out, nil
}

// window makes the start and stop steps of one generated fault window.
func window(kind string, nodes []string, idx map[string]int, rng *rand.Rand) (first, last Step, err error) {
	delays := [...]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	losses := [...]float64{0.1, 0.2, 0.3, 0.5}
	targets := [...]string{"one", "minority", "majority", "all"}
	target := func() []string {
		// Every node is up at a window's start, so any target resolves.
		ns, _ := resolveTarget(targets[rng.IntN(len(targets))], nodes, idx, rng)
		return ns
	}
	switch kind {
	case "delay":
		d := delays[rng.IntN(len(delays))]
		j := (d * time.Duration(rng.IntN(3)) / 4).Round(time.Millisecond) // 0, d/4 or d/2
		return Step{Action: FStartLink, Link: LinkFault{Delay: d, Jitter: j}, Nodes: target()},
			Step{Action: FStopLink}, nil
	case "loss":
		l := losses[rng.IntN(len(losses))]
		return Step{Action: FStartLink, Link: LinkFault{Loss: l}, Nodes: target()},
			Step{Action: FStopLink}, nil
	case FKill, FCrash:
		ns := target()
		return Step{Action: kind, Nodes: ns}, Step{Action: FRestart, Nodes: ns}, nil
	case FPause:
		ns := target()
		return Step{Action: FPause, Nodes: ns}, Step{Action: FResume, Nodes: ns}, nil
	}
	if kind == "partition" { // any shape the cluster size allows
		var all []string
		for _, sh := range shapes() {
			if len(nodes) >= minNodes(sh) {
				all = append(all, sh)
				if sh != shapeRing {
					all = append(all, sh+onewaySuffix)
				}
			}
		}
		kind = all[rng.IntN(len(all))]
	}
	p, err := NewPartition(kind, nodes, rng)
	if err != nil {
		return first, last, err
	}
	return Step{Action: FStartPartition, Partition: p}, Step{Action: FStopPartition}, nil
}

// resolveTarget resolves a target, "one", "minority", "majority", "all" or
// comma-separated node names, to nodes among eligible (listed in cluster
// order), taking random choices from rng. Minority and majority count the
// whole cluster of len(idx) nodes: a minority is ⌊(n-1)/2⌋ nodes but at
// least one, a majority ⌊n/2⌋+1.
func resolveTarget(target string, eligible []string, idx map[string]int, rng *rand.Rand) ([]string, error) {
	n := len(idx)
	var k int
	switch target {
	case "":
		return nil, errors.New("missing target (want one, minority, majority, all or node names like n1,n3)")
	case "all":
		return sortCluster(slices.Clone(eligible), idx), nil
	case "one":
		k = 1
	case "minority":
		k = max(1, (n-1)/2)
	case "majority":
		k = n/2 + 1
	default:
		names, err := parseNames(target, idx)
		if err != nil {
			return nil, err
		}
		return names, nil
	}
	if len(eligible) < k {
		return nil, fmt.Errorf("%s of %d nodes is %d, but only %d can be chosen (%s)",
			target, n, k, len(eligible), strings.Join(eligible, ","))
	}
	perm := rng.Perm(len(eligible))
	out := make([]string, k)
	for i := range out {
		out[i] = eligible[perm[i]]
	}
	return sortCluster(out, idx), nil
}

// parseNames parses comma-separated node names, which must exist and be
// distinct; it returns them in cluster order.
func parseNames(s string, idx map[string]int) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := idx[name]; !ok {
			return nil, fmt.Errorf("unknown node %q (nodes: %s)", name, strings.Join(clusterOrder(idx), ","))
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("node %s named twice", name)
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no node names in %q", s)
	}
	return sortCluster(out, idx), nil
}

// indexNodes maps each node to its position, rejecting an empty list and
// duplicates.
func indexNodes(nodes []string) (map[string]int, error) {
	if len(nodes) == 0 {
		return nil, errors.New("no nodes")
	}
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if n == "" {
			return nil, errors.New("empty node name")
		}
		if _, dup := idx[n]; dup {
			return nil, fmt.Errorf("node %s listed twice", n)
		}
		idx[n] = i
	}
	return idx, nil
}

// sortCluster sorts nodes in cluster order, in place, and returns them.
func sortCluster(nodes []string, idx map[string]int) []string {
	slices.SortFunc(nodes, func(a, b string) int { return idx[a] - idx[b] })
	return nodes
}

// clusterOrder returns the nodes of idx in cluster order.
func clusterOrder(idx map[string]int) []string {
	out := make([]string, 0, len(idx))
	for n := range idx {
		out = append(out, n)
	}
	return sortCluster(out, idx)
}

// Describe returns one line per fault kind and partition shape, for
// "ec-counter test --nemesis list".
func Describe() []string {
	return []string{
		"partition               a random partition shape from those below, then heal it",
		"  isolate               one random node cut off from all others, both ways",
		"  halves                the first ⌊n/2⌋ nodes cut off from the rest (minority | majority)",
		"  random-halves         a random ⌊n/2⌋ nodes cut off from the rest",
		"  bridge                two random halves cut apart; one node in between sees both (n ≥ 3)",
		"  majorities-ring       every node sees a majority, no two nodes the same one (Jepsen's ring; n ≥ 3)",
		"  isolate-oneway        one-way variants: the first group drops the others' traffic,",
		"  halves-oneway           which still hear it; likewise random-halves-oneway and",
		"  bridge-oneway           bridge-oneway (one half drops the other half's traffic)",
		"delay                   delay 50-500ms ± jitter on the links of one, a minority, a majority or all nodes",
		"loss                    lose 10-50% of packets and streams on the links of one, a minority, a majority or all nodes",
		"link                    delay or loss",
		"kill                    SIGKILL one, a minority, a majority or all nodes, then restart them",
		"crash                   kill as above, and lose what they had not fsynced, as in a power cut (needs the lab)",
		"pause                   SIGSTOP one, a minority, a majority or all nodes, then SIGCONT them",
		"all                     partition, delay, loss, kill and pause (add crash by name)",
	}
}
