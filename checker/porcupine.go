package checker

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ec-counter/ec-counter/histories"
)

// pInput is a porcupine operation's input: a read, or a set of arg. The
// output is the int64 the op observed: a read's value, a set's current.
type pInput struct {
	set bool
	arg int64
}

// maxRegister is the porcupine model of one server: an int64 counter,
// starting at 0, that gossip may raise at any moment. A read of x is legal
// iff x ≥ the counter, and leaves the counter at x (gossip may have raised
// it); an ok set of v with current c is legal iff c ≥ max(counter, v), and
// leaves the counter at c.
func maxRegister() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return int64(0) },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(int64), input.(pInput), output.(int64)
			if in.set && out < in.arg {
				return false, s
			}
			return out >= s, out
		},
		Hash: func(state any) uint64 { return uint64(state.(int64)) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(pInput), output.(int64)
			if in.set {
				return fmt.Sprintf("set %d → %d", in.arg, out)
			}
			return fmt.Sprintf("get → %d", out)
		},
		DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
		DescribeOperationMetadata: func(meta any) string {
			s, _ := meta.(string)
			return s
		},
	}
}

// porcupineOps converts the ok ops among calls (all on one server) into
// porcupine operations. Failed ops had no effect, and a set that ended in
// info may apply at any time or never, which gossip could do as well: both
// are left out, and never given an infinite return time. Clients are
// numbered densely, in order of first appearance.
func porcupineOps(calls []*call) []porcupine.Operation {
	clients := make(map[int]int)
	out := make([]porcupine.Operation, 0, len(calls))
	for _, cl := range calls {
		if cl.status != statusOK {
			continue
		}
		p := int(cl.inv.Process)
		id, ok := clients[p]
		if !ok {
			id = len(clients)
			clients[p] = id
		}
		out = append(out, porcupine.Operation{
			ClientId: id,
			Input:    pInput{set: cl.kind == kindSet, arg: cl.arg},
			Call:     cl.start,
			Output:   cl.out,
			Return:   cl.end,
			Metadata: fmt.Sprintf("%s, ops %d→%d, process %d on %s", cl.inv.F, cl.inv.Index, cl.done.Index, p, cl.nodeName),
		})
	}
	return out
}

// CheckServerPorcupine checks with porcupine that the client ops on one
// server form a linearizable max register whose value gossip may raise: the
// model Check's linearizable sweep decides in linear time, here searched
// exhaustively, which is exponential in the worst case. A timeout of 0 means
// none; when it expires the result is porcupine.Unknown. It returns an error
// if ops is malformed (see Validate) or never mentions node.
func CheckServerPorcupine(ops []histories.Op, node string, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo, error) {
	var k Checker
	var calls []*call
	k.keep = func(c *call) {
		if c.nodeName == node {
			calls = append(calls, c)
		}
	}
	for i := range ops {
		if err := k.Add(ops[i]); err != nil {
			return porcupine.Unknown, porcupine.LinearizationInfo{}, err
		}
	}
	if _, ok := k.nodeIDs[node]; !ok {
		return porcupine.Unknown, porcupine.LinearizationInfo{}, fmt.Errorf("no client op in the history went to node %q", node)
	}
	slices.SortFunc(calls, func(a, b *call) int { return cmp.Compare(a.inv.Index, b.inv.Index) })
	res, info := porcupine.CheckOperationsVerbose(maxRegister(), porcupineOps(calls), timeout)
	return res, info, nil
}

// htmlWindow is how many of the server's ops before the violating one
// WriteLinearHTML shows.
const htmlWindow = 20

// linearWindow is the first violation of the sweep and the ops around it
// that WriteLinearHTML shows: the ok ops on its server that completed last
// before it (up to htmlWindow), those that were still running when it
// completed, and the op whose value it missed.
type linearWindow struct {
	v     violation
	calls []*call
}

func newLinearWindow(v violation, recent []*call) *linearWindow {
	w := &linearWindow{v: v, calls: slices.Clone(recent)}
	if by := v.cause.by; by != nil && !slices.Contains(w.calls, by) {
		w.calls = append(w.calls, by)
	}
	return w
}

// add takes an op that completed after the violation into the window if it
// overlapped the violating op.
func (w *linearWindow) add(c *call) {
	r := w.v.read
	if c != r && c.node == r.node && c.start <= r.end && c.status == statusOK {
		w.calls = append(w.calls, c)
	}
}

// WriteLinearHTML finds the first linearizability violation of the sweep
// (the one whose read completed first) in ops and writes porcupine's HTML
// visualization of it to w (see Checker.WriteLinearHTML). It returns false,
// writing nothing, when there is no violation, and an error when ops is
// malformed or w fails.
func WriteLinearHTML(ops []histories.Op, w io.Writer) (bool, error) {
	var k Checker
	for i := range ops {
		if err := k.Add(ops[i]); err != nil {
			return false, err
		}
	}
	return k.WriteLinearHTML(w)
}

// WriteLinearHTML writes porcupine's HTML visualization of the first
// linearizability violation among the ops added so far (the one whose read
// completed first): the ok ops on that server that completed last before
// it (up to 20) and those still running when it completed, through the
// violating op itself, plus the op whose value it missed. It returns false,
// writing nothing, when there is no violation, and an error when the
// history is malformed or w fails.
func (k *Checker) WriteLinearHTML(w io.Writer) (bool, error) {
	if k.err != nil {
		return false, k.err
	}
	win := k.lin.first
	if win == nil {
		return false, nil
	}
	calls := slices.Clone(win.calls)
	slices.SortFunc(calls, func(a, b *call) int { return cmp.Compare(a.inv.Index, b.inv.Index) })
	r := win.v.read
	model := maxRegister()
	_, info := porcupine.CheckOperationsVerbose(model, porcupineOps(calls), 10*time.Second)
	info.AddAnnotations([]porcupine.Annotation{{
		Tag:             "checker",
		Start:           r.start,
		End:             r.end,
		Description:     fmt.Sprintf("op %d: %d < %d", r.done.Index, r.out, win.v.cause.val),
		Details:         win.v.explain().Message,
		BackgroundColor: "#ffb3b3",
	}})
	if err := porcupine.Visualize(model, info, w); err != nil {
		return true, fmt.Errorf("write linearizability visualization: %w", err)
	}
	return true, nil
}
