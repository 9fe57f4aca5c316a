package nemesis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseSchedule reads a scripted schedule in the format of SCHEDULE.md
// (docs/faults.md "Scripted schedules") for a cluster of nodes. Symbolic
// targets (one, minority, majority, all) and unspecified partition choices
// are resolved here, with random choices drawn from seed, so the returned
// schedule is concrete: its String reads back as the same schedule.
//
// ParseSchedule follows which nodes the schedule has killed and paused, so
// "restart all" means the nodes killed and not yet restarted, and naming a
// node that cannot take an action (restarting a node that is not killed,
// pausing a killed one) is an error. Errors name the line and what is wrong.
func ParseSchedule(r io.Reader, nodes []string, seed uint64) (Schedule, error) {
	idx, err := indexNodes(nodes)
	if err != nil {
		return nil, err
	}
	p := &parser{
		nodes:  nodes,
		idx:    idx,
		rng:    rand.New(rand.NewPCG(seed, parseStream)),
		killed: map[string]bool{},
		paused: map[string]bool{},
	}
	var s Schedule
	var prev time.Duration
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		st, ok, err := p.step(fields, prev)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		prev = st.At
		if ok {
			s = append(s, st)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read schedule: %w", err)
	}
	return s, nil
}

// parser holds ParseSchedule's state: the cluster, the seeded rng and the
// nodes the steps so far leave killed or paused.
type parser struct {
	nodes          []string
	idx            map[string]int
	rng            *rand.Rand
	killed, paused map[string]bool
}

// step parses one line's fields into a step; ok is false for a step that
// resolves to nothing to do ("restart all" with no node killed).
func (p *parser) step(fields []string, prev time.Duration) (st Step, ok bool, err error) {
	if len(fields) < 2 {
		return st, false, fmt.Errorf("want a time and an action, like \"2s kill n1\", got %q", strings.Join(fields, " "))
	}
	at, err := time.ParseDuration(fields[0])
	if err != nil || at < 0 || at > maxScheduleTime {
		return st, false, fmt.Errorf("bad time %q: want a duration from the start, like 0s, 1.5s, 500ms or 1m30s, at most %s", fields[0], maxScheduleTime)
	}
	if at%time.Millisecond != 0 {
		return st, false, fmt.Errorf("time %q: steps are timed in whole milliseconds", fields[0])
	}
	if at < prev {
		return st, false, fmt.Errorf("time %s goes backwards: the step before is at %s", at, prev)
	}
	st = Step{At: at, Action: fields[1]}
	args := fields[2:]
	noArgs := func() error {
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", st.Action, strings.Join(args, " "))
		}
		return nil
	}
	switch st.Action {
	case FStartPartition:
		st.Partition, err = p.partition(args)
	case FStopPartition, FStopLink:
		err = noArgs()
	case FStartLink:
		st.Link, st.Nodes, err = p.link(args)
	case FKill, FCrash, FPause:
		st.Nodes, err = p.stopNodes(st.Action, args)
	case FRestart, FResume:
		st.Nodes, err = p.startNodes(st.Action, args)
		if err == nil && len(st.Nodes) == 0 {
			return st, false, nil
		}
	default:
		return st, false, fmt.Errorf("unknown action %q (want one of %s)", st.Action, strings.Join(actions(), ", "))
	}
	if err != nil {
		return st, false, fmt.Errorf("%s: %w", st.Action, err)
	}
	return st, true, nil
}

// partition parses start-partition's arguments: a shape with optional
// concrete groups, or explicit groups, and optionally "oneway".
func (p *parser) partition(args []string) (Partition, error) {
	oneway := false
	var rest []string
	for _, a := range args {
		if a == "oneway" || a == "one-way" {
			oneway = true
		} else {
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return Partition{}, fmt.Errorf("want a shape (%s) or groups like n1,n2|n3", strings.Join(shapes(), ", "))
	}
	shape, spec := rest[0], strings.Join(rest[1:], "")
	if base, ok := strings.CutSuffix(shape, onewaySuffix); ok && slices.Contains(shapes(), base) {
		shape, oneway = base, true
	}
	if !slices.Contains(shapes(), shape) {
		shape, spec = shapeGroups, strings.Join(rest, "")
		if !strings.Contains(spec, "|") {
			return Partition{}, fmt.Errorf("unknown shape %q: want %s, or groups like n1,n2|n3",
				rest[0], strings.Join(shapes(), ", "))
		}
	}
	if oneway && shape == shapeRing {
		return Partition{}, errors.New("majorities-ring has no one-way variant")
	}
	if spec == "" {
		name := shape
		if oneway {
			name += onewaySuffix
		}
		return NewPartition(name, p.nodes, p.rng)
	}
	part := Partition{Shape: shape, OneWay: oneway}
	for _, g := range strings.Split(spec, "|") {
		var group []string
		for _, name := range strings.Split(g, ",") {
			if name == "" {
				continue
			}
			if _, ok := p.idx[name]; !ok {
				return Partition{}, fmt.Errorf("unknown node %q (nodes: %s)", name, strings.Join(p.nodes, ","))
			}
			group = append(group, name)
		}
		part.Groups = append(part.Groups, group)
	}
	if shape == shapeIsolate && len(part.Groups) == 1 && len(part.Groups[0]) == 1 {
		part.Groups = append(part.Groups, without(p.nodes, part.Groups[0][0]))
	}
	if err := part.check(p.idx); err != nil {
		return Partition{}, err
	}
	return part, nil
}

// link parses start-link's key=value arguments.
func (p *parser) link(args []string) (LinkFault, []string, error) {
	var f LinkFault
	target := "all"
	seen := map[string]bool{}
	last := ""
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok && last == "nodes" { // "nodes=n1, n3"
			target += "," + a
			continue
		}
		last = key
		if !ok || val == "" {
			return f, nil, fmt.Errorf("want key=value arguments (delay=200ms jitter=50ms loss=10%% nodes=all), got %q", a)
		}
		if seen[key] {
			return f, nil, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "delay":
			f.Delay, err = parseDelay(val)
		case "jitter":
			f.Jitter, err = parseDelay(val)
		case "loss":
			f.Loss, err = parseLoss(val)
		case "nodes":
			target = val
		default:
			return f, nil, fmt.Errorf("unknown argument %q (want delay, jitter, loss or nodes)", key)
		}
		if err != nil {
			return f, nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := f.check(); err != nil {
		return f, nil, err
	}
	nodes, err := resolveTarget(target, p.nodes, p.idx, p.rng)
	if err != nil {
		return f, nil, fmt.Errorf("nodes: %w", err)
	}
	return f, nodes, nil
}

// parseDelay parses a delay in whole milliseconds.
func parseDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxDelay {
		return 0, fmt.Errorf("bad duration %q: want e.g. 200ms or 1s, at most %s", s, maxDelay)
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("duration %q: delays are whole milliseconds", s)
	}
	return d, nil
}

// maxScheduleTime bounds a step's offset: a day.
const maxScheduleTime = 24 * time.Hour

// parseLoss parses a probability given as a percentage ("10%") or a
// fraction ("0.1").
func parseLoss(s string) (float64, error) {
	num, pct := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(num, 64)
	if pct {
		v /= 100
	}
	if err != nil || !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("bad loss %q: want a percentage like 10%% or a fraction like 0.1, between 0 and 1", s)
	}
	return v, nil
}

// stopNodes resolves the target of kill, crash or pause among the nodes
// that can take it, and notes them killed (a crash kills) or paused.
func (p *parser) stopNodes(action string, args []string) ([]string, error) {
	target := strings.Join(args, ",")
	var eligible []string
	for _, n := range p.nodes {
		if !p.killed[n] && !p.paused[n] {
			eligible = append(eligible, n)
		}
	}
	nodes, err := resolveTarget(target, eligible, p.idx, p.rng)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		switch {
		case p.killed[n]:
			return nil, fmt.Errorf("%s is already killed at this point", n)
		case p.paused[n] && action == FPause:
			return nil, fmt.Errorf("%s is already paused at this point", n)
		}
	}
	for _, n := range nodes {
		if action != FPause {
			p.killed[n] = true
			delete(p.paused, n) // SIGKILL ends a stopped process too
		} else {
			p.paused[n] = true
		}
	}
	return nodes, nil
}

// startNodes resolves the target of restart or resume, "all" or node names,
// among the nodes killed or paused, and notes them running.
func (p *parser) startNodes(action string, args []string) ([]string, error) {
	down, state := p.killed, "killed"
	if action == FResume {
		down, state = p.paused, "paused"
	}
	target := strings.Join(args, ",")
	var nodes []string
	switch target {
	case "all":
		for _, n := range p.nodes {
			if down[n] {
				nodes = append(nodes, n)
			}
		}
	case "", "one", "minority", "majority":
		return nil, fmt.Errorf("want all or node names, like n1,n3, got %q", target)
	default:
		var err error
		if nodes, err = parseNames(target, p.idx); err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if !down[n] {
				return nil, fmt.Errorf("%s is not %s at this point", n, state)
			}
		}
	}
	for _, n := range nodes {
		delete(down, n)
	}
	return nodes, nil
}
