package checker

import (
	"fmt"
	"strings"

	"github.com/ec-counter/ec-counter/histories"
)

// kind is the f of a client op.
type kind uint8

const (
	kindGet kind = iota
	kindSet
	kindFinalGet
)

// status is how a client op ended.
type status uint8

const (
	statusPending status = iota // invoked, never completed: treated as info
	statusOK
	statusFail
	statusInfo
)

// call is one client op: its invoke and, once it completes, its completion.
// A Checker keeps a call only while it is pending or some check still needs
// it (the largest value a server has shown, a session's last read, an
// anomaly to explain), so memory grows with processes, servers and pending
// ops, not with the history.
type call struct {
	inv    histories.Op
	done   histories.Op // zero while pending
	start  int64
	end    int64 // completion time; meaningless while pending
	kind   kind
	status status
	node   int   // index into Checker.nodes
	arg    int64 // a set's value
	out    int64 // an ok get's value, an ok set's current
	// applied is an ok set's claim that it raised the counter.
	applied bool
	// before is the bound in force on its server when it was invoked
	// (the linearizability sweep's).
	before mark
	// nodeName is the name of its server, for explanations.
	nodeName string
}

// isRead reports whether c observed the counter: an ok get or final-get, or
// an ok set, whose current is the counter it left behind.
func (c *call) isRead() bool { return c.status == statusOK }

// bound is the value an ok op proves the counter had reached on its node by
// the time it completed.
func (c *call) bound() int64 {
	if c.kind == kindSet {
		return max(c.arg, c.out)
	}
	return c.out
}

// last returns a call's completion, or its invoke while pending.
func (c *call) last() *histories.Op {
	if c.status == statusPending {
		return &c.inv
	}
	return &c.done
}

// describe names a call for an explanation: its completion, and when it was
// invoked, e.g. "op 5 (process 1, ok get 5 on n1, t=0.006s, invoked as op 4
// at t=0.005s)".
func (c *call) describe() string {
	if c.status == statusPending {
		return c.inv.Describe() + ", never completed"
	}
	d := c.done.Describe()
	return fmt.Sprintf("%s, invoked as op %d at t=%s)", d[:len(d)-1], c.inv.Index, histories.FormatTime(c.start))
}

// ref returns an op as an anomaly names it.
func ref(op *histories.Op) OpRef {
	return OpRef{
		Index:   op.Index,
		Process: op.Process,
		Node:    op.Node,
		Time:    op.Time,
		F:       op.F,
		Type:    op.Type,
		Value:   op.Value,
		Current: op.Current,
	}
}

// refs names calls' completions (or their invokes, while pending) in an
// anomaly.
func refs(cs ...*call) []OpRef {
	out := make([]OpRef, 0, len(cs))
	for _, c := range cs {
		out = append(out, ref(c.last()))
	}
	return out
}

// historyError is a reason why a history cannot be checked, at op (or none).
type historyError struct {
	op  *OpRef
	msg string
}

func (e *historyError) Error() string { return e.msg }

// Validate reports the first reason why ops is not a well-formed history
// (docs/histories-and-checks.md "Histories") that the checkers can decide on: indices that are not dense,
// ops out of time order, a completion without an invoke, a second invoke by
// a process whose op is still pending, an unknown client f, a missing node,
// a value that is not an integer where one is required (an ok set must also
// carry its current), or two sets of the same value. Check reports
// such a history as unknown, with this reason as an anomaly of check
// "history". An invoke left without completion at the end of a history
// (a crashed run) is not an error: it is treated as info.
func Validate(ops []histories.Op) error {
	var c Checker
	for i := range ops {
		if err := c.Add(ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// pair validates op, the next op of the history, and pairs it with its
// invoke: it returns the call op invokes or completes, and nil for a
// nemesis op.
func (k *Checker) pair(op *histories.Op) (*call, error) {
	i := k.ops
	fail := func(format string, args ...any) (*call, error) {
		r := ref(op)
		return nil, &historyError{&r, fmt.Sprintf("op %d: ", op.Index) + fmt.Sprintf(format, args...)}
	}
	if op.Index != i {
		r := ref(op)
		return nil, &historyError{&r, fmt.Sprintf("the op at position %d has index %d: indices must be dense, 0 to n-1 in order", i, op.Index)}
	}
	if !op.Type.Valid() {
		return fail("unknown type %q", op.Type)
	}
	if i > 0 && op.Time < k.lastTime {
		return fail("time %s is earlier than op %d's %s: ops must be in the order they happened",
			histories.FormatTime(op.Time), i-1, histories.FormatTime(k.lastTime))
	}
	if op.Process == histories.Nemesis {
		return nil, nil
	}
	if op.Process < 0 {
		return fail("invalid process %d", int(op.Process))
	}
	var f kind
	switch op.F {
	case histories.FGet:
		f = kindGet
	case histories.FSet:
		f = kindSet
	case histories.FFinalGet:
		f = kindFinalGet
	default:
		return fail("client process %s has unknown f %q (want get, set or final-get)", op.Process, op.F)
	}
	if op.Type == histories.Invoke {
		if c, busy := k.open[op.Process]; busy {
			return fail("process %s invoked %s while its op %d was still pending: a process must wait for each op to complete",
				op.Process, op.F, c.inv.Index)
		}
		if op.Node == "" {
			return fail("%s invoke of process %s names no node", op.F, op.Process)
		}
		c := &call{inv: *op, start: op.Time, kind: f, node: k.nodeID(op.Node), nodeName: op.Node}
		if f == kindSet {
			v, ok := op.Int()
			if !ok {
				return fail("set invoke has value %s, not an integer", valueText(op))
			}
			if s, dup := k.values[v]; dup {
				return fail("set %d was already written by op %d: set values must be unique within a run", v, s.inv)
			}
			c.arg = v
		}
		k.open[op.Process] = c
		return c, nil
	}
	c, busy := k.open[op.Process]
	if !busy {
		return fail("%s completion of process %s has no pending invoke", op.Type, op.Process)
	}
	if op.F != c.inv.F {
		return fail("%s completion of process %s does not match its invoke, op %d, which was a %s", op.F, op.Process, c.inv.Index, c.inv.F)
	}
	if op.Node != "" && op.Node != c.inv.Node {
		return fail("completion on node %s of process %s does not match its invoke, op %d, on %s", op.Node, op.Process, c.inv.Index, c.inv.Node)
	}
	st := statusOK
	switch op.Type {
	case histories.Fail:
		st = statusFail
	case histories.Info:
		st = statusInfo
	case histories.OK:
		if f == kindSet {
			if v, ok := op.Int(); len(op.Value) > 0 && (!ok || v != c.arg) {
				return fail("ok set has value %s, but its invoke, op %d, set %d", valueText(op), c.inv.Index, c.arg)
			}
			if op.Current == nil {
				return fail("ok set carries no current value")
			}
			c.out = *op.Current
			c.applied = op.Applied != nil && *op.Applied
		} else {
			v, ok := op.Int()
			if !ok {
				return fail("ok %s has value %s, not an integer", op.F, valueText(op))
			}
			c.out = v
		}
	}
	delete(k.open, op.Process)
	c.done, c.end, c.status = *op, op.Time, st
	return c, nil
}

// nodeID returns the index of a server's name, adding it when new.
func (k *Checker) nodeID(name string) int {
	if len(k.nodes) <= 8 { // cheaper than hashing the name
		for id, n := range k.nodes {
			if n == name {
				return id
			}
		}
	}
	id, ok := k.nodeIDs[name]
	if !ok {
		id = len(k.nodes)
		k.nodeIDs[name] = id
		k.nodes = append(k.nodes, name)
		k.conv.addNode()
		k.stats.byNode = append(k.stats.byNode, Counts{})
		k.lin.addNode()
	}
	return id
}

func valueText(op *histories.Op) string {
	if len(op.Value) == 0 {
		return "null"
	}
	return string(op.Value)
}

// isNotInstalled reports whether a nemesis op says its fault was not
// installed.
func isNotInstalled(op *histories.Op) bool {
	return strings.HasPrefix(op.Error, histories.NotInstalled)
}
