package checker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ec-counter/ec-counter/histories"
)

// clusterHistory generates a realistic history of about n ops, correct by
// construction: clients bound to servers (client i to server i mod nodes)
// with overlapping requests, half of them sets of unique values (a few
// negative, so never applied), some failing or ending in info; servers that
// gossip their counters to each other at random; nemesis ops; and final
// reads in rounds until every server agrees.
func clusterHistory(seed uint64, clients, nodes, n int) []histories.Op {
	ops := make([]histories.Op, 0, n+8*nodes)
	genCluster(seed, clients, nodes, n, func(op histories.Op) { ops = append(ops, op) })
	return ops
}

// genCluster generates clusterHistory's ops one at a time, handing each to
// out, so that histories larger than memory can be written.
func genCluster(seed uint64, clients, nodes, n int, out func(histories.Op)) {
	rng := rand.New(rand.NewPCG(seed, 42))
	now := int64(0)
	emitted := 0
	emit := func(op histories.Op) {
		op.Index, op.Time = int64(emitted), now
		emitted++
		out(op)
	}
	counter := make([]int64, nodes)
	name := func(i int) string { return fmt.Sprintf("n%d", i+1) }
	type client struct {
		process  histories.Process
		busy     bool
		done     histories.Op
		finishAt int64
	}
	cs := make([]client, clients)
	for i := range cs {
		cs[i].process = histories.Process(i)
	}
	next := histories.Process(clients)
	sets := int64(0)
	budget := n - 6*nodes // leave room for the final reads
	for emitted < budget {
		now += 1 + rng.Int64N(2000)
		switch r := rng.IntN(100); {
		case r < 8: // gossip from one server to another
			from, to := rng.IntN(nodes), rng.IntN(nodes)
			counter[to] = max(counter[to], counter[from])
			continue
		case r < 9 && emitted > 0:
			f := []string{"start-partition", "stop-partition", "kill", "restart"}[rng.IntN(4)]
			emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: f,
				Value: histories.JSONValue(map[string][]string{name(0): {name(1)}})})
			continue
		}
		// Complete whichever client is due, or start a new request.
		i := rng.IntN(clients)
		c := &cs[i]
		node := i % nodes
		if c.busy {
			if now < c.finishAt {
				continue
			}
			emit(c.done)
			c.busy = false
			if c.done.Type == histories.Info {
				c.process = next
				next++
			}
			continue
		}
		c.busy, c.finishAt = true, now+rng.Int64N(50_000)
		inv := histories.Op{Type: histories.Invoke, Process: c.process, Node: name(node)}
		done := histories.Op{Process: c.process, Node: name(node)}
		// The op takes effect now, at its invoke: a valid linearization point.
		if rng.IntN(2) == 0 {
			inv.F, done.F = histories.FGet, histories.FGet
			done.Type = histories.OK
			if rng.IntN(20) == 0 {
				done.Type = histories.Fail
			} else {
				done.Value = histories.IntValue(counter[node])
			}
		} else {
			sets++
			v := sets*int64(clients) + int64(i)
			if rng.IntN(50) == 0 {
				v = math.MinInt64 + v
			}
			inv.F, done.F = histories.FSet, histories.FSet
			inv.Value, done.Value = histories.IntValue(v), histories.IntValue(v)
			switch r := rng.IntN(100); {
			case r < 3:
				done.Type = histories.Fail
			case r < 6:
				done.Type = histories.Info
				if rng.IntN(2) == 0 {
					counter[node] = max(counter[node], v)
				}
			default:
				done.Type = histories.OK
				applied := v > counter[node]
				counter[node] = max(counter[node], v)
				cur := counter[node]
				done.Applied, done.Current = &applied, &cur
			}
		}
		emit(inv)
		c.done = done
	}
	// Let every pending request complete, then heal and read until agreed.
	for i := range cs {
		if cs[i].busy {
			now += 1 + rng.Int64N(1000)
			emit(cs[i].done)
		}
	}
	now += 1000
	emit(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: "stop-partition", Value: histories.JSONValue(nil)})
	top := slices.Max(counter)
	for round := 0; ; round++ {
		for j := range nodes {
			p := next + histories.Process(j)
			now += 1 + rng.Int64N(1000)
			emit(histories.Op{Type: histories.Invoke, Process: p, F: histories.FFinalGet, Node: name(j)})
			now += 1 + rng.Int64N(1000)
			emit(histories.Op{Type: histories.OK, Process: p, F: histories.FFinalGet, Node: name(j),
				Value: histories.IntValue(counter[j])})
		}
		if slices.Min(counter) == top {
			return
		}
		for j := range counter { // gossip spreads the maximum, a server at a time
			if counter[j] < top {
				counter[j] = top
				break
			}
		}
		now += 50_000_000
	}
}

// serverHistory generates a random history of 3 to maxOps ops on one server, "n1": a few
// processes with overlapping ops, whose outputs come from a correct max
// register with gossip, and then, more often than not, one output is
// perturbed, so that linearizable and non-linearizable histories both abound. With ties, times are
// coarse, so that completions and invokes often share a timestamp.
func serverHistory(rng *rand.Rand, ties bool, maxOps int) []histories.Op {
	type op struct {
		slot      int
		set       bool
		arg       int64
		typ       histories.Type // how it ends
		call, ret int            // positions of its events; ret < 0 while pending
		lin       float64        // its linearization point
		out       int64
	}
	procs := 2 + rng.IntN(3)
	total := 3 + rng.IntN(maxOps-2)
	var all []*op
	busy := make([]*op, procs)
	type event struct {
		o      *op
		invoke bool
	}
	var events []event
	for len(all) < total || slices.ContainsFunc(busy, func(o *op) bool { return o != nil }) {
		p := rng.IntN(procs)
		if o := busy[p]; o != nil {
			if len(all) == total && rng.IntN(12) == 0 {
				busy[p] = nil // left pending: the history ends first
				o.ret = -1
				continue
			}
			o.ret = len(events)
			events = append(events, event{o, false})
			busy[p] = nil
			continue
		}
		if len(all) == total {
			continue
		}
		o := &op{slot: p, call: len(events), set: rng.IntN(2) == 0}
		o.arg = int64(1 + rng.IntN(20))
		for slices.ContainsFunc(all, func(x *op) bool { return x.set && x.arg == o.arg }) {
			o.arg = int64(1 + rng.IntN(40))
		}
		switch r := rng.IntN(100); {
		case !o.set && r < 15, o.set && r < 15:
			o.typ = histories.Fail
		case o.set && r < 30:
			o.typ = histories.Info
		default:
			o.typ = histories.OK
		}
		all = append(all, o)
		busy[p] = o
		events = append(events, event{o, true})
	}
	// Outputs of a correct max register: take effect at a random point of
	// each op's interval, with gossip raising the counter now and then.
	for _, o := range all {
		end := float64(o.ret)
		if o.ret < 0 {
			end = float64(len(events))
		}
		o.lin = float64(o.call) + rng.Float64()*(end-float64(o.call))
	}
	order := slices.Clone(all)
	slices.SortFunc(order, func(a, b *op) int {
		if a.lin < b.lin {
			return -1
		}
		return 1
	})
	state := int64(0)
	for _, o := range order {
		if rng.IntN(5) == 0 {
			state += int64(rng.IntN(5))
		}
		if o.set && (o.typ == histories.OK || (o.typ == histories.Info && rng.IntN(2) == 0)) {
			state = max(state, o.arg)
		}
		o.out = state
	}
	if rng.IntN(5) < 4 { // perturb one output
		var oks []*op
		for _, o := range all {
			if o.typ == histories.OK && o.ret >= 0 {
				oks = append(oks, o)
			}
		}
		if len(oks) > 0 {
			o := oks[rng.IntN(len(oks))]
			switch rng.IntN(4) {
			case 0:
				o.out = 0
			case 1:
				o.out--
			case 2:
				o.out = oks[rng.IntN(len(oks))].out
			default:
				o.out = int64(rng.IntN(25))
			}
		}
	}
	process := make([]histories.Process, procs)
	for i := range process {
		process[i] = histories.Process(i)
	}
	next := histories.Process(procs)
	ops := make([]histories.Op, 0, len(events))
	for step, e := range events {
		o := e.o
		t := int64(step) * 1000
		if ties {
			t = int64(step/2) * 1000
		}
		op := histories.Op{Index: int64(len(ops)), Time: t, Process: process[o.slot], F: histories.FGet, Node: "n1"}
		if o.set {
			op.F, op.Value = histories.FSet, histories.IntValue(o.arg)
		}
		if e.invoke {
			op.Type = histories.Invoke
			ops = append(ops, op)
			continue
		}
		op.Type = o.typ
		if o.typ == histories.OK {
			if o.set {
				// No "applied": porcupine's model has none, and the sweep
				// judges it only when stated.
				cur := o.out
				op.Current = &cur
			} else {
				op.Value = histories.IntValue(o.out)
			}
		}
		if o.typ == histories.Info {
			process[o.slot] = next
			next++
		}
		ops = append(ops, op)
	}
	return ops
}
