package checker

import (
	"fmt"
	"math"
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

// call is one client op: its invoke and, unless the history ends first, its
// completion.
type call struct {
	inv    int // position of the invoke in the history
	done   int // position of the completion; -1 while pending
	start  int64
	end    int64 // completion time; math.MaxInt64 while pending
	kind   kind
	status status
	node   int   // index into history.nodes
	arg    int64 // a set's value
	out    int64 // an ok get's value, an ok set's current
	// applied is an ok set's claim that it raised the counter.
	applied bool
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

// history is a validated history, with its client ops paired up.
type history struct {
	ops     []histories.Op
	calls   []call  // client ops in invoke order
	callOf  []int32 // for each position in ops, its call, or -1 for nemesis ops
	nodes   []string
	sets    map[int64]int // a set's value -> its call
	nemesis map[string]int
	// notInstalled lists the nemesis ops whose fault the network failed
	// to inject.
	notInstalled []int64
	pending      int
}

// historyError is a reason why a history cannot be checked, at the op at
// position pos (or -1).
type historyError struct {
	pos int
	msg string
}

func (e *historyError) Error() string { return e.msg }

// Validate reports the first reason why ops is not a well-formed history
// (README "Histories") that the checkers can decide on: indices that are not dense,
// ops out of time order, a completion without an invoke, a second invoke by
// a process whose op is still pending, an unknown client f, a missing node,
// a value that is not an integer where one is required (an ok set must also
// carry its current), or two sets of the same value. Check reports
// such a history as unknown, with this reason as an anomaly of check
// "history". An invoke left without completion at the end of a history
// (a crashed run) is not an error: it is treated as info.
func Validate(ops []histories.Op) error {
	_, err := parse(ops)
	return err
}

// parse validates ops and pairs up its client ops.
func parse(ops []histories.Op) (*history, error) {
	h := &history{
		ops:     ops,
		callOf:  make([]int32, len(ops)),
		calls:   make([]call, 0, len(ops)/2+1),
		sets:    make(map[int64]int, len(ops)/4),
		nemesis: make(map[string]int),
	}
	if len(ops) > math.MaxInt32 {
		return nil, &historyError{-1, fmt.Sprintf("the history has %d ops, more than this checker handles", len(ops))}
	}
	nodeIDs := make(map[string]int)
	open := make(map[histories.Process]int) // process -> its pending call
	fail := func(i int, format string, args ...any) (*history, error) {
		return nil, &historyError{i, fmt.Sprintf("op %d: ", ops[i].Index) + fmt.Sprintf(format, args...)}
	}
	for i := range ops {
		op := &ops[i]
		h.callOf[i] = -1
		if op.Index != int64(i) {
			return nil, &historyError{i, fmt.Sprintf("the op at position %d has index %d: indices must be dense, 0 to n-1 in order", i, op.Index)}
		}
		if !op.Type.Valid() {
			return fail(i, "unknown type %q", op.Type)
		}
		if i > 0 && op.Time < ops[i-1].Time {
			return fail(i, "time %s is earlier than op %d's %s: ops must be in the order they happened",
				histories.FormatTime(op.Time), ops[i-1].Index, histories.FormatTime(ops[i-1].Time))
		}
		if op.Process == histories.Nemesis {
			h.nemesis[op.F]++
			if strings.HasPrefix(op.Error, histories.NotInstalled) {
				h.notInstalled = append(h.notInstalled, op.Index)
			}
			continue
		}
		if op.Process < 0 {
			return fail(i, "invalid process %d", int(op.Process))
		}
		var k kind
		switch op.F {
		case histories.FGet:
			k = kindGet
		case histories.FSet:
			k = kindSet
		case histories.FFinalGet:
			k = kindFinalGet
		default:
			return fail(i, "client process %s has unknown f %q (want get, set or final-get)", op.Process, op.F)
		}
		if op.Type == histories.Invoke {
			if j, busy := open[op.Process]; busy {
				return fail(i, "process %s invoked %s while its op %d was still pending: a process must wait for each op to complete",
					op.Process, op.F, ops[h.calls[j].inv].Index)
			}
			if op.Node == "" {
				return fail(i, "%s invoke of process %s names no node", op.F, op.Process)
			}
			c := call{inv: i, done: -1, start: op.Time, end: math.MaxInt64, kind: k}
			id, ok := nodeIDs[op.Node]
			if !ok {
				id = len(h.nodes)
				nodeIDs[op.Node] = id
				h.nodes = append(h.nodes, op.Node)
			}
			c.node = id
			if k == kindSet {
				v, ok := op.Int()
				if !ok {
					return fail(i, "set invoke has value %s, not an integer", valueText(op))
				}
				if j, dup := h.sets[v]; dup {
					return fail(i, "set %d was already written by op %d: set values must be unique within a run",
						v, ops[h.calls[j].inv].Index)
				}
				c.arg = v
				h.sets[v] = len(h.calls)
			}
			open[op.Process] = len(h.calls)
			h.callOf[i] = int32(len(h.calls))
			h.calls = append(h.calls, c)
			continue
		}
		j, busy := open[op.Process]
		if !busy {
			return fail(i, "%s completion of process %s has no pending invoke", op.Type, op.Process)
		}
		delete(open, op.Process)
		c := &h.calls[j]
		inv := &ops[c.inv]
		if op.F != inv.F {
			return fail(i, "%s completion of process %s does not match its invoke, op %d, which was a %s", op.F, op.Process, inv.Index, inv.F)
		}
		if op.Node != "" && op.Node != inv.Node {
			return fail(i, "completion on node %s of process %s does not match its invoke, op %d, on %s", op.Node, op.Process, inv.Index, inv.Node)
		}
		c.done, c.end = i, op.Time
		h.callOf[i] = int32(j)
		switch op.Type {
		case histories.Fail:
			c.status = statusFail
		case histories.Info:
			c.status = statusInfo
		case histories.OK:
			c.status = statusOK
			if k == kindSet {
				if v, ok := op.Int(); len(op.Value) > 0 && (!ok || v != c.arg) {
					return fail(i, "ok set has value %s, but its invoke, op %d, set %d", valueText(op), inv.Index, c.arg)
				}
				if op.Current == nil {
					return fail(i, "ok set carries no current value")
				}
				c.out = *op.Current
				c.applied = op.Applied != nil && *op.Applied
			} else {
				v, ok := op.Int()
				if !ok {
					return fail(i, "ok %s has value %s, not an integer", op.F, valueText(op))
				}
				c.out = v
			}
		}
	}
	h.pending = len(open)
	return h, nil
}

func valueText(op *histories.Op) string {
	if len(op.Value) == 0 {
		return "null"
	}
	return string(op.Value)
}

// inv and done return a call's invoke and completion ops.
func (h *history) inv(c int) *histories.Op { return &h.ops[h.calls[c].inv] }

func (h *history) done(c int) *histories.Op {
	if d := h.calls[c].done; d >= 0 {
		return &h.ops[d]
	}
	return h.inv(c)
}

// describe names a call for an explanation: its completion, and when it was
// invoked, e.g. "op 5 (process 1, ok get 5 on n1, t=0.006s, invoked as op 4
// at t=0.005s)".
func (h *history) describe(c int) string {
	cl := &h.calls[c]
	if cl.done < 0 {
		return h.inv(c).Describe() + ", never completed"
	}
	d := h.done(c).Describe()
	return fmt.Sprintf("%s, invoked as op %d at t=%s)", d[:len(d)-1], h.inv(c).Index, histories.FormatTime(cl.start))
}

// ref returns the op at position i as an anomaly names it.
func (h *history) ref(i int) OpRef {
	op := &h.ops[i]
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

// refs names a call's completion (or its invoke, while pending) in an
// anomaly.
func (h *history) refs(cs ...int) []OpRef {
	out := make([]OpRef, 0, len(cs))
	for _, c := range cs {
		d := h.calls[c].done
		if d < 0 {
			d = h.calls[c].inv
		}
		out = append(out, h.ref(d))
	}
	return out
}
