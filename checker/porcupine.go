package checker

import (
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

// porcupineOps converts the ok ops of calls (all on one server) into
// porcupine operations. Failed ops had no effect, and a set that ended in
// info may apply at any time or never, which gossip could do as well: both
// are left out, and never given an infinite return time. Clients are
// numbered densely, in order of first appearance.
func (h *history) porcupineOps(calls []int) []porcupine.Operation {
	clients := make(map[int]int)
	out := make([]porcupine.Operation, 0, len(calls))
	for _, c := range calls {
		cl := &h.calls[c]
		if cl.status != statusOK {
			continue
		}
		p := int(h.inv(c).Process)
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
			Metadata: fmt.Sprintf("%s, ops %d→%d, process %d on %s", h.ops[cl.inv].F, h.ops[cl.inv].Index, h.done(c).Index, p, h.nodes[cl.node]),
		})
	}
	return out
}

// serverCalls returns the calls on node n, in invoke order.
func (h *history) serverCalls(n int) []int {
	var out []int
	for c := range h.calls {
		if h.calls[c].node == n {
			out = append(out, c)
		}
	}
	return out
}

func (h *history) nodeID(node string) (int, bool) {
	for n, name := range h.nodes {
		if name == node {
			return n, true
		}
	}
	return 0, false
}

// CheckServerPorcupine checks with porcupine that the client ops on one
// server form a linearizable max register whose value gossip may raise: the
// model Check's linearizable sweep decides in linear time, here searched
// exhaustively, which is exponential in the worst case. A timeout of 0 means
// none; when it expires the result is porcupine.Unknown. It returns an error
// if ops is malformed (see Validate) or never mentions node.
func CheckServerPorcupine(ops []histories.Op, node string, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo, error) {
	h, err := parse(ops)
	if err != nil {
		return porcupine.Unknown, porcupine.LinearizationInfo{}, err
	}
	n, ok := h.nodeID(node)
	if !ok {
		return porcupine.Unknown, porcupine.LinearizationInfo{}, fmt.Errorf("no client op in the history went to node %q", node)
	}
	res, info := porcupine.CheckOperationsVerbose(maxRegister(), h.porcupineOps(h.serverCalls(n)), timeout)
	return res, info, nil
}

// htmlWindow is how many of the server's ops before the violating one
// WriteLinearHTML shows.
const htmlWindow = 20

// WriteLinearHTML finds the first linearizability violation of the sweep
// (the one whose read completed first) and writes porcupine's HTML
// visualization of it to w: the ops on that server overlapping the 20
// before the violating read through the read itself, plus the op whose
// value the read missed. It returns false, writing nothing, when there is no
// violation, and an error when ops is malformed or w fails.
func WriteLinearHTML(ops []histories.Op, w io.Writer) (bool, error) {
	h, err := parse(ops)
	if err != nil {
		return false, err
	}
	found, _ := sweep(h)
	if len(found) == 0 {
		return false, nil
	}
	v := found[0]
	r := &h.calls[v.read]
	server := h.serverCalls(r.node)
	var eligible []int // the ops porcupine sees, in invoke order
	for _, c := range server {
		if h.calls[c].status == statusOK {
			eligible = append(eligible, c)
		}
	}
	at := slices.Index(eligible, v.read)
	from := h.calls[eligible[max(at-htmlWindow, 0)]].start
	var window []int
	for _, c := range eligible {
		cl := &h.calls[c]
		if c == v.cause || (cl.start <= r.end && cl.end >= from) {
			window = append(window, c)
		}
	}
	model := maxRegister()
	pops := h.porcupineOps(window)
	_, info := porcupine.CheckOperationsVerbose(model, pops, 10*time.Second)
	info.AddAnnotations([]porcupine.Annotation{{
		Tag:             "checker",
		Start:           r.start,
		End:             r.end,
		Description:     fmt.Sprintf("op %d: %d < %d", h.done(v.read).Index, r.out, v.min),
		Details:         h.explainViolation(v).Message,
		BackgroundColor: "#ffb3b3",
	}})
	if err := porcupine.Visualize(model, info, w); err != nil {
		return true, fmt.Errorf("write linearizability visualization: %w", err)
	}
	return true, nil
}
