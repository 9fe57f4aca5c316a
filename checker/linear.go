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

// causeKind says what bound a mark holds.
type causeKind uint8

const (
	causeNone     causeKind = iota // no bound
	causeOp                        // the bound of an op, by
	causeInitial                   // 0, the counter's initial value
	causeOwnValue                  // a set's own value
)

// mark is the largest bound seen so far, and where it came from.
type mark struct {
	val   int64
	cause causeKind
	by    *call // the op, for causeOp
}

func (a mark) ok() bool { return a.cause != causeNone }

// max returns the larger of two marks, a on a tie.
func (a mark) max(b mark) mark {
	if !a.ok() || (b.ok() && b.val > a.val) {
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
	// recent are the latest ok ops completed on the server, for
	// WriteLinearHTML's window.
	recent []*call
}

// settle moves the completions before time t into done.
func (n *sweepNode) settle(t int64) {
	if n.pend.ok() && n.pendAt < t {
		n.done = n.done.max(n.pend)
		n.pend = mark{}
	}
}

// complete records an op that completed at time t with bound b.
func (n *sweepNode) complete(t int64, b mark) {
	n.settle(t)
	if !n.pend.ok() {
		n.pendAt = t
	}
	n.pend = n.pend.max(b)
}

// linearCheck finds every ok op that observed a value below the largest
// bound on its server that had completed before it was invoked. It walks
// the history once, in order (which validation guarantees is time order), so
// it is linear in the length of the history.
type linearCheck struct {
	col   collector
	nodes []sweepNode
	reads int
	lies  int // sets that claimed "applied" without raising the counter
	// first is the first violation, with the window WriteLinearHTML shows.
	first *linearWindow
}

// violation is an ok op that observed less than it must have, or an ok set
// that claimed to raise a counter already at or above its value.
type violation struct {
	read  *call // the op that observed too little
	cause mark  // the bound it missed
	// applied marks a set whose "applied": true is false: cause had
	// already completed with a bound ≥ the set's value.
	applied bool
}

func (l *linearCheck) addNode() {
	l.nodes = append(l.nodes, sweepNode{done: mark{val: 0, cause: causeInitial}})
}

func (l *linearCheck) invoked(c *call) {
	n := &l.nodes[c.node]
	n.settle(c.start)
	c.before = n.done
}

func (l *linearCheck) read(c *call) {
	l.reads++
	n := &l.nodes[c.node]
	need := mark{}
	if c.kind == kindSet {
		need = mark{val: c.arg, cause: causeOwnValue}
	}
	need = need.max(c.before)
	var v *violation
	if need.ok() && c.out < need.val {
		v = &violation{read: c, cause: need}
	} else if b := c.before; c.kind == kindSet && c.applied && b.ok() && b.val >= c.arg {
		v = &violation{read: c, cause: b, applied: true}
		l.lies++
	}
	c.before = mark{} // no longer needed: let the op it names go
	n.complete(c.end, mark{val: c.bound(), cause: causeOp, by: c})
	if len(n.recent) == htmlWindow+1 {
		copy(n.recent, n.recent[1:])
		n.recent = n.recent[:htmlWindow]
	}
	n.recent = append(n.recent, c)
	if v != nil {
		l.col.add(func() Anomaly { return v.explain() })
		if l.first == nil {
			l.first = newLinearWindow(*v, n.recent)
		}
	}
	if l.first != nil {
		l.first.add(c)
	}
}

func (l *linearCheck) result(servers int) (ReadCheck, []Anomaly) {
	l.col.check = checkLinearizable
	bad := fmt.Sprintf("%d of %s saw a value below one that had already completed on their server", l.col.count-l.lies, count(l.reads, "read"))
	if l.lies > 0 {
		bad += fmt.Sprintf(`; %s answered "applied": true though the counter was already at or above its value`, count(l.lies, "set"))
	}
	verdict := l.col.verdict(
		fmt.Sprintf("on each of %s, all %s saw at least every value that had completed on that server before they were invoked, and no set claimed to apply without raising the counter",
			count(servers, "server"), count(l.reads, "read")), bad)
	if l.reads == 0 {
		verdict.Explanation = noReads
	}
	return ReadCheck{Verdict: verdict, Reads: l.reads}, l.col.list
}

func (v violation) explain() Anomaly {
	r := v.read
	node := r.nodeName
	if v.applied {
		a := Anomaly{
			Ops:      refs(r),
			Expected: fmt.Sprintf(`"applied": false: the counter on %s was already ≥ %d`, node, r.arg),
		}
		if v.cause.cause == causeInitial {
			a.Message = fmt.Sprintf(`On %s, %s set %d and answered "applied": true, but the counter starts at 0: a set of %d cannot raise it.`,
				node, r.describe(), r.arg, r.arg)
			return a
		}
		c := v.cause.by
		a.Message = fmt.Sprintf(`On %s, %s set %d and answered "applied": true, but %s had already completed with %d at t=%s, before the set was invoked at t=%s: the set cannot have raised the counter.`,
			node, r.describe(), r.arg, c.describe(), v.cause.val, preciseTime(c.end), preciseTime(r.start))
		a.Ops = []OpRef{refs(c)[0], ref(&r.inv), refs(r)[0]}
		return a
	}
	switch v.cause.cause {
	case causeInitial:
		return Anomaly{
			Message: fmt.Sprintf("On %s, %s %s %d, below 0, the value every counter starts at.",
				node, r.describe(), readVerb(r), r.out),
			Ops:      refs(r),
			Expected: "a value ≥ 0",
		}
	case causeOwnValue:
		return Anomaly{
			Message: fmt.Sprintf("On %s, %s set %d but returned current %d: the counter after a set cannot be below the value set.",
				node, r.describe(), r.arg, r.out),
			Ops:      refs(r),
			Expected: fmt.Sprintf("current ≥ %d", r.arg),
		}
	}
	c := v.cause.by
	return Anomaly{
		Message: fmt.Sprintf("On %s, %s %s %d, but %s had already completed with %d at t=%s, before the read was invoked at t=%s: the counter went down.",
			node, r.describe(), readVerb(r), r.out, c.describe(), v.cause.val,
			preciseTime(c.end), preciseTime(r.start)),
		Ops:      []OpRef{refs(c)[0], ref(&r.inv), refs(r)[0]},
		Expected: fmt.Sprintf("a value ≥ %d on %s", v.cause.val, node),
	}
}

// preciseTime renders nanoseconds since the run started as seconds to the
// microsecond, for explanations that hinge on which of two close ops came
// first.
func preciseTime(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) + "s"
}
