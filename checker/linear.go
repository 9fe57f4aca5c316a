package checker

import (
	"fmt"
	"strconv"
)

// A server is a linearizable max register whose value gossip may raise at
// any moment. Call the value an ok op observed its output (a read's value, a
// set's current). A history of one server is linearizable if and only if no
// output is below 0 (the initial value), no ok set's output is below its own
// value, and no output is below the output of an ok op on the same server
// that completed before it was invoked. An ok set's "applied": true is a
// claim that it raised the counter, so its value must exceed every output
// and value of ok ops on that server that completed before it was invoked
// (and 0); the sweep checks that claim too. The sweep bounds later ops by an ok
// set's value as well as its output, which only matters once the set itself
// is a violation. Sets that failed or ended in info bound nothing, since they
// may never apply (and gossip could apply them as well as anything).
//
// Proof sketch: if the condition holds, order the ok ops by output, breaking
// ties by invoke time. An op that precedes another in real time completed
// before the other was invoked, so it has a lower output, or an equal one and
// an earlier invoke: the order is a linearization in which the counter never
// goes down, with gossip raising it between ops where needed. Conversely, in
// any linearization the counter never goes down, so an op that precedes
// another cannot observe more.

// violation is an ok op that observed less than it must have, or an ok set
// that claimed to raise a counter already at or above its value.
type violation struct {
	read  int   // the call that observed too little
	cause int   // the call whose bound it missed, or causeOwnValue, causeInitial
	min   int64 // the least value the read could have observed
	// applied marks a set whose "applied": true is false: cause had
	// already completed with min ≥ the set's value.
	applied bool
}

// The causes of a violation that are not another op.
const (
	causeOwnValue = -1 // a set's current was below its own value
	causeInitial  = -2 // a value was below 0, the counter's initial value
)

// mark is the largest bound seen so far, and the call that set it.
type mark struct {
	val  int64
	call int32
	ok   bool
}

// max returns the larger of two marks, a on a tie.
func (a mark) max(b mark) mark {
	if !a.ok || (b.ok && b.val > a.val) {
		return b
	}
	return a
}

// sweepNode is the sweep's state for one server. Completions at the time of
// the latest one are held apart in pend: an op invoked at that same time is
// concurrent with them (intervals are closed), so they do not bound it.
type sweepNode struct {
	done   mark // the largest bound of ops completed before pendAt
	pend   mark // the largest bound of ops completed at pendAt
	pendAt int64
}

// settle moves the completions before time t into done.
func (n *sweepNode) settle(t int64) {
	if n.pend.ok && n.pendAt < t {
		n.done = n.done.max(n.pend)
		n.pend = mark{}
	}
}

// complete records an op that completed at time t with bound b.
func (n *sweepNode) complete(t int64, b mark) {
	n.settle(t)
	if !n.pend.ok {
		n.pendAt = t
	}
	n.pend = n.pend.max(b)
}

// sweep finds every ok op that observed a value below the largest bound on
// its server that had completed before it was invoked. It walks the history
// once, in order (which validation guarantees is time order), so it is linear
// in the length of the history. It also returns the number of reads judged.
func sweep(h *history) (found []violation, reads int) {
	nodes := make([]sweepNode, len(h.nodes))
	for n := range nodes {
		nodes[n].done = mark{val: 0, call: causeInitial, ok: true}
	}
	before := make([]mark, len(h.calls)) // the bound in force when each call was invoked
	for i, c32 := range h.callOf {
		if c32 < 0 {
			continue
		}
		c := int(c32)
		cl := &h.calls[c]
		n := &nodes[cl.node]
		if i == cl.inv {
			n.settle(cl.start)
			before[c] = n.done
			continue
		}
		if cl.status != statusOK {
			continue
		}
		reads++
		need := mark{}
		if cl.kind == kindSet {
			need = mark{val: cl.arg, call: causeOwnValue, ok: true}
		}
		need = need.max(before[c])
		if need.ok && cl.out < need.val {
			found = append(found, violation{read: c, cause: int(need.call), min: need.val})
		} else if b := before[c]; cl.kind == kindSet && cl.applied && b.ok && b.val >= cl.arg {
			found = append(found, violation{read: c, cause: int(b.call), min: b.val, applied: true})
		}
		n.complete(cl.end, mark{val: cl.bound(), call: c32, ok: true})
	}
	return found, reads
}

// linearizable runs the per-server linearizability sweep.
func linearizable(h *history) (ReadCheck, []Anomaly) {
	col := collector{check: checkLinearizable}
	found, reads := sweep(h)
	lies := 0
	for _, v := range found {
		if v.applied {
			lies++
		}
		col.add(func() Anomaly { return h.explainViolation(v) })
	}
	bad := fmt.Sprintf("%d of %s saw a value below one that had already completed on their server", col.count-lies, count(reads, "read"))
	if lies > 0 {
		bad += fmt.Sprintf(`; %s answered "applied": true though the counter was already at or above its value`, count(lies, "set"))
	}
	verdict := col.verdict(
		fmt.Sprintf("on each of %s, all %s saw at least every value that had completed on that server before they were invoked, and no set claimed to apply without raising the counter",
			count(len(h.nodes), "server"), count(reads, "read")), bad)
	if reads == 0 {
		verdict.Explanation = noReads
	}
	return ReadCheck{Verdict: verdict, Reads: reads}, col.list
}

func (h *history) explainViolation(v violation) Anomaly {
	r := &h.calls[v.read]
	node := h.nodes[r.node]
	if v.applied {
		a := Anomaly{
			Ops:      h.refs(v.read),
			Expected: fmt.Sprintf(`"applied": false: the counter on %s was already ≥ %d`, node, r.arg),
		}
		if v.cause == causeInitial {
			a.Message = fmt.Sprintf(`On %s, %s set %d and answered "applied": true, but the counter starts at 0: a set of %d cannot raise it.`,
				node, h.describe(v.read), r.arg, r.arg)
			return a
		}
		a.Message = fmt.Sprintf(`On %s, %s set %d and answered "applied": true, but %s had already completed with %d at t=%s, before the set was invoked at t=%s: the set cannot have raised the counter.`,
			node, h.describe(v.read), r.arg, h.describe(v.cause), v.min, preciseTime(h.calls[v.cause].end), preciseTime(r.start))
		a.Ops = []OpRef{h.refs(v.cause)[0], h.ref(r.inv), h.refs(v.read)[0]}
		return a
	}
	switch v.cause {
	case causeInitial:
		return Anomaly{
			Message: fmt.Sprintf("On %s, %s %s %d, below 0, the value every counter starts at.",
				node, h.describe(v.read), readVerb(r), r.out),
			Ops:      h.refs(v.read),
			Expected: "a value ≥ 0",
		}
	case causeOwnValue:
		return Anomaly{
			Message: fmt.Sprintf("On %s, %s set %d but returned current %d: the counter after a set cannot be below the value set.",
				node, h.describe(v.read), r.arg, r.out),
			Ops:      h.refs(v.read),
			Expected: fmt.Sprintf("current ≥ %d", r.arg),
		}
	}
	return Anomaly{
		Message: fmt.Sprintf("On %s, %s %s %d, but %s had already completed with %d at t=%s, before the read was invoked at t=%s: the counter went down.",
			node, h.describe(v.read), readVerb(r), r.out, h.describe(v.cause), v.min,
			preciseTime(h.calls[v.cause].end), preciseTime(r.start)),
		Ops:      []OpRef{h.refs(v.cause)[0], h.ref(r.inv), h.refs(v.read)[0]},
		Expected: fmt.Sprintf("a value ≥ %d on %s", v.min, node),
	}
}

// preciseTime renders nanoseconds since the run started as seconds to the
// microsecond, for explanations that hinge on which of two close ops came
// first.
func preciseTime(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) + "s"
}
