package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
)

// page is the JSON the report's script draws from. It is columnar, so that
// 100,000 ops stay a few megabytes and parse in milliseconds. Times are
// microseconds since the run started.
type page struct {
	Ops   int      `json:"ops"`   // ops in the history
	End   int64    `json:"end"`   // the time of the last op
	Nodes []string `json:"nodes"` // servers, in order of first appearance
	Fs    []string `json:"fs"`    // client fs
	Errs  []string `json:"errs"`  // distinct error strings
	// Lanes are the client processes, grouped by server: their labels and
	// each one's server (an index into Nodes).
	LaneProc []string `json:"laneProc"`
	LaneNode []int    `json:"laneNode"`
	Calls    calls    `json:"calls"`
	Nemesis  []nemOp  `json:"nemesis"`
	Windows  []window `json:"windows"`
	Conv     conv     `json:"conv"`
	// Anomalies holds each listed anomaly's op indices, in the order of
	// the page's anomaly list; Lost the indices of lost writes.
	Anomalies [][]int64 `json:"anomalies"`
	Lost      []int64   `json:"lost"`
}

// calls are the client ops, each an invoke with its completion, in invoke
// order, one column per field.
type calls struct {
	Inv  []int64 `json:"inv"`  // the invoke's index
	Cmp  []int64 `json:"cmp"`  // the completion's index; -1 while pending
	T0   []int64 `json:"t0"`   // invoke time
	T1   []int64 `json:"t1"`   // completion time; the history's end while pending
	Lane []int   `json:"lane"` // into page.LaneProc
	F    []int   `json:"f"`    // into page.Fs
	St   []int   `json:"st"`   // statusOK, statusFail, statusInfo or statusPending
	Node []int   `json:"node"` // into page.Nodes; -1 for none
	Val  intCol  `json:"val"`  // a set's argument, a read's result
	Cur  intCol  `json:"cur"`  // an ok set's current
	App  []int   `json:"app"`  // an ok set's applied: 1, 0, or -1 when absent
	Err  []int   `json:"err"`  // into page.Errs; -1 for none
}

// How a call ended, as the script knows it.
const (
	statusOK = iota
	statusFail
	statusInfo
	statusPending
)

// intCol is a column of optional int64s. It encodes each as a JSON number,
// or as a string beyond ±2^53 (where JavaScript numbers lose digits), or
// null.
type intCol struct {
	v  []int64
	ok []bool
}

func (c *intCol) add(v int64, ok bool) {
	c.v = append(c.v, v)
	c.ok = append(c.ok, ok)
}

// MarshalJSON encodes the column as an array.
func (c intCol) MarshalJSON() ([]byte, error) {
	const exact = 1 << 53
	b := make([]byte, 0, 2+8*len(c.v))
	b = append(b, '[')
	for i, v := range c.v {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case !c.ok[i]:
			b = append(b, "null"...)
		case v > exact || v < -exact:
			b = append(b, '"')
			b = strconv.AppendInt(b, v, 10)
			b = append(b, '"')
		default:
			b = strconv.AppendInt(b, v, 10)
		}
	}
	return append(b, ']'), nil
}

// nemOp is one nemesis op.
type nemOp struct {
	I     int64           `json:"i"`
	T     int64           `json:"t"`
	F     string          `json:"f"`
	Label string          `json:"label"`
	Error string          `json:"error,omitempty"` // what went wrong, e.g. "unreachable: n2"
	Value json.RawMessage `json:"value,omitempty"`
}

// window is a fault in force: from the op that started it to the op that
// ended it (or the end of the history).
type window struct {
	Kind  string `json:"kind"` // partition, link, kill, pause, or another fault's name
	Label string `json:"label"`
	T0    int64  `json:"t0"`
	T1    int64  `json:"t1"`
	I0    int64  `json:"i0"`
	I1    int64  `json:"i1"` // -1 when never ended
	Row   int    `json:"row"`
}

// conv is the convergence phase: from the first final read to the moment
// every server held the final value (-1 if they never did).
type conv struct {
	T0 int64 `json:"t0"` // -1 without final reads
	T1 int64 `json:"t1"`
}

func micros(ns int64) int64 { return ns / 1000 }

// buildPage turns a history and its results into the script's data.
func buildPage(ops []histories.Op, res *checker.Result, anomalies []checker.Anomaly) *page {
	p := &page{Ops: len(ops), Nemesis: []nemOp{}, Windows: []window{}, Anomalies: [][]int64{}, Lost: []int64{}, Conv: conv{T0: -1, T1: -1}}
	if len(ops) > 0 {
		p.End = micros(ops[len(ops)-1].Time)
	}
	nodeID := map[string]int{}
	fID := map[string]int{}
	errID := map[string]int{}
	intern := func(m map[string]int, list *[]string, s string) int {
		id, ok := m[s]
		if !ok {
			id = len(*list)
			m[s] = id
			*list = append(*list, s)
		}
		return id
	}
	p.Nodes, p.Fs, p.Errs = []string{}, []string{}, []string{}
	for _, f := range []string{histories.FGet, histories.FSet, histories.FFinalGet} {
		intern(fID, &p.Fs, f)
	}

	type procInfo struct {
		proc histories.Process
		node int
	}
	procs := map[histories.Process]*procInfo{}
	var procList []*procInfo
	var callProc []*procInfo
	open := map[histories.Process]int{} // process -> its pending call
	c := &p.Calls
	nem := newNemesisWindows()
	for i := range ops {
		op := &ops[i]
		t := micros(op.Time)
		if op.Process == histories.Nemesis {
			p.Nemesis = append(p.Nemesis, nemOp{I: op.Index, T: t, F: op.F, Label: nemesisLabel(op), Error: op.Error,
				Value: compactJSON(op.Value)})
			nem.add(op, t)
			continue
		}
		if op.Type == histories.Invoke {
			if j, busy := open[op.Process]; busy { // malformed: close the old call as pending
				c.St[j] = statusPending
				delete(open, op.Process)
			}
			node := -1
			if op.Node != "" {
				node = intern(nodeID, &p.Nodes, op.Node)
			}
			pi := procs[op.Process]
			if pi == nil {
				pi = &procInfo{proc: op.Process, node: node}
				procs[op.Process] = pi
				procList = append(procList, pi)
			}
			v, ok := int64(0), false
			if op.F == histories.FSet {
				v, ok = op.Int()
			}
			open[op.Process] = len(c.Inv)
			callProc = append(callProc, pi)
			c.Inv = append(c.Inv, op.Index)
			c.Cmp = append(c.Cmp, -1)
			c.T0 = append(c.T0, t)
			c.T1 = append(c.T1, p.End)
			c.Lane = append(c.Lane, 0)
			c.F = append(c.F, intern(fID, &p.Fs, op.F))
			c.St = append(c.St, statusPending)
			c.Node = append(c.Node, node)
			c.Val.add(v, ok)
			c.Cur.add(0, false)
			c.App = append(c.App, -1)
			c.Err = append(c.Err, -1)
			continue
		}
		j, busy := open[op.Process]
		if !busy {
			continue // a completion without invoke: the checker reports it
		}
		delete(open, op.Process)
		c.Cmp[j], c.T1[j] = op.Index, t
		switch op.Type {
		case histories.OK:
			c.St[j] = statusOK
		case histories.Fail:
			c.St[j] = statusFail
		default:
			c.St[j] = statusInfo
		}
		if v, ok := op.Int(); ok && !c.Val.ok[j] {
			c.Val.v[j], c.Val.ok[j] = v, true
		}
		if op.Current != nil {
			c.Cur.v[j], c.Cur.ok[j] = *op.Current, true
		}
		if op.Applied != nil {
			c.App[j] = 0
			if *op.Applied {
				c.App[j] = 1
			}
		}
		if op.Error != "" {
			c.Err[j] = intern(errID, &p.Errs, op.Error)
		}
	}
	p.Windows = nem.finish(p.End)

	// Servers in natural order (n2 before n10), whatever answered first.
	order := slices.Clone(p.Nodes)
	slices.SortFunc(order, naturalCompare)
	remap := make([]int, len(p.Nodes))
	for i, n := range order {
		remap[nodeID[n]] = i
	}
	p.Nodes = order
	for j, n := range c.Node {
		if n >= 0 {
			c.Node[j] = remap[n]
		}
	}
	for _, pi := range procList {
		if pi.node >= 0 {
			pi.node = remap[pi.node]
		}
	}

	// Lanes: processes grouped by server, in process order within one.
	slices.SortFunc(procList, func(a, b *procInfo) int {
		an, bn := a.node, b.node
		if an < 0 {
			an = len(p.Nodes)
		}
		if bn < 0 {
			bn = len(p.Nodes)
		}
		return cmp.Or(cmp.Compare(an, bn), cmp.Compare(a.proc, b.proc))
	})
	lane := make(map[*procInfo]int, len(procList))
	for i, pi := range procList {
		lane[pi] = i
		p.LaneProc = append(p.LaneProc, pi.proc.String())
		p.LaneNode = append(p.LaneNode, pi.node)
	}
	if p.LaneProc == nil {
		p.LaneProc, p.LaneNode = []string{}, []int{}
	}
	for j, pi := range callProc {
		c.Lane[j] = lane[pi]
	}
	if c.Inv == nil {
		*c = calls{Inv: []int64{}, Cmp: []int64{}, T0: []int64{}, T1: []int64{}, Lane: []int{}, F: []int{},
			St: []int{}, Node: []int{}, App: []int{}, Err: []int{}}
	}

	// The convergence phase starts with the first final read.
	for j, f := range c.F {
		if p.Fs[f] == histories.FFinalGet {
			p.Conv.T0 = c.T0[j]
			break
		}
	}
	if res != nil {
		if ttc := res.Checks.Convergence.TimeToConvergeNS; ttc != nil && p.Conv.T0 >= 0 {
			p.Conv.T1 = p.Conv.T0 + micros(*ttc)
		}
		for _, w := range res.Checks.Convergence.LostWrites {
			p.Lost = append(p.Lost, w.Index)
		}
	}
	for _, a := range anomalies {
		idx := make([]int64, len(a.Ops))
		for k, r := range a.Ops {
			idx[k] = r.Index
		}
		p.Anomalies = append(p.Anomalies, idx)
	}
	return p
}

// naturalCompare orders strings with their digit runs compared as numbers:
// n2 < n10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			ta, tb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := cmp.Or(cmp.Compare(len(ta), len(tb)), strings.Compare(ta, tb), cmp.Compare(len(da), len(db))); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// compactJSON returns v without insignificant space, or nil if it is not
// JSON.
func compactJSON(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return json.RawMessage(strconv.Quote(string(v)))
	}
	return b.Bytes()
}

// nemesisValue is the union of the values the nemesis records (see
// nemesis.New): a bare grudge for partitions, a link fault object, a bare
// node list for process actions; and of those older histories hold:
// objects with shape, groups and grudge, or with nodes and failed.
type nemesisValue struct {
	Shape    string              `json:"shape"`
	Groups   [][]string          `json:"groups"`
	OneWay   bool                `json:"oneway"`
	Grudge   map[string][]string `json:"grudge"`
	DelayMS  int                 `json:"delay_ms"`
	JitterMS int                 `json:"jitter_ms"`
	Loss     float64             `json:"loss"`
	Nodes    []string            `json:"nodes"`
	Failed   map[string]string   `json:"failed"`
}

func decodeNemesis(v json.RawMessage) nemesisValue {
	var nv nemesisValue
	if t := bytes.TrimLeft(v, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		// A bare node list: the nodes a process action acted on.
		if json.Unmarshal(v, &nv.Nodes) != nil {
			nv.Nodes = nil
		}
		return nv
	}
	if len(v) == 0 || json.Unmarshal(v, &nv) != nil {
		nv = nemesisValue{}
		// A bare grudge, as in docs/histories-and-checks.md "Histories"'s example.
		var g map[string][]string
		if json.Unmarshal(v, &g) == nil {
			nv.Grudge = g
		}
	}
	if nv.Shape == "" && len(nv.Groups) == 0 && nv.Grudge == nil && nv.Nodes == nil {
		var g map[string][]string
		if json.Unmarshal(v, &g) == nil && len(g) > 0 {
			nv.Grudge = g
		}
	}
	return nv
}

// nemesisLabel describes a nemesis op in a few words, without its error.
func nemesisLabel(op *histories.Op) string {
	nv := decodeNemesis(op.Value)
	switch op.F {
	case "start-partition":
		return "partition " + partitionLabel(nv)
	case "start-link":
		return "link " + linkLabel(nv)
	case "kill", "crash", "restart", "pause", "resume":
		s := op.F + " " + strings.Join(nv.Nodes, ",")
		if len(nv.Failed) > 0 {
			s += fmt.Sprintf(" (%d failed)", len(nv.Failed))
		}
		return strings.TrimSpace(s)
	}
	return op.F
}

func partitionLabel(nv nemesisValue) string {
	var parts []string
	if nv.Shape != "" {
		parts = append(parts, nv.Shape)
	}
	if len(nv.Groups) > 0 {
		gs := make([]string, len(nv.Groups))
		for i, g := range nv.Groups {
			gs[i] = strings.Join(g, ",")
		}
		sep := " | "
		if nv.OneWay {
			sep = " → "
		}
		parts = append(parts, strings.Join(gs, sep))
	} else if len(nv.Grudge) > 0 {
		keys := make([]string, 0, len(nv.Grudge))
		for k := range nv.Grudge {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, naturalCompare)
		var gs []string
		for _, k := range keys {
			if len(nv.Grudge[k]) > 0 {
				gs = append(gs, k+"✕"+strings.Join(nv.Grudge[k], ","))
			}
		}
		parts = append(parts, strings.Join(gs, " "))
	}
	return strings.Join(parts, ": ")
}

func linkLabel(nv nemesisValue) string {
	var parts []string
	if nv.DelayMS > 0 {
		d := fmt.Sprintf("delay %dms", nv.DelayMS)
		if nv.JitterMS > 0 {
			d += fmt.Sprintf("±%dms", nv.JitterMS)
		}
		parts = append(parts, d)
	}
	if nv.Loss > 0 {
		parts = append(parts, fmt.Sprintf("loss %g%%", 100*nv.Loss))
	}
	if len(nv.Nodes) > 0 {
		parts = append(parts, "on "+strings.Join(nv.Nodes, ","))
	}
	return strings.Join(parts, " ")
}

// nemesisWindows pairs the nemesis's ops into fault windows: start-X with
// stop-X, kill with restart and pause with resume of each node.
type nemesisWindows struct {
	open map[string]int // kind or kind/node -> index into out
	out  []window
}

func newNemesisWindows() *nemesisWindows {
	return &nemesisWindows{open: map[string]int{}}
}

func (n *nemesisWindows) start(key, kind, label string, op *histories.Op, t int64) {
	if j, ok := n.open[key]; ok { // a new fault replaces the one in force
		n.out[j].T1, n.out[j].I1 = t, op.Index
	}
	n.open[key] = len(n.out)
	n.out = append(n.out, window{Kind: kind, Label: label, T0: t, I0: op.Index, I1: -1})
}

func (n *nemesisWindows) stop(key string, op *histories.Op, t int64) {
	if j, ok := n.open[key]; ok {
		n.out[j].T1, n.out[j].I1 = t, op.Index
		delete(n.open, key)
	}
}

func (n *nemesisWindows) add(op *histories.Op, t int64) {
	f := op.F
	switch f {
	case "kill", "crash", "pause":
		nv := decodeNemesis(op.Value)
		nodes := nv.Nodes
		if nodes == nil {
			nodes = []string{""}
		}
		for _, x := range nodes {
			label := map[string]string{"kill": "killed", "crash": "crashed", "pause": "paused"}[f]
			n.start(f+"/"+x, f, strings.TrimSpace(label+" "+x), op, t)
		}
	case "restart", "resume":
		kinds := map[string][]string{"restart": {"kill", "crash"}, "resume": {"pause"}}[f]
		nv := decodeNemesis(op.Value)
		nodes := nv.Nodes
		for _, kind := range kinds {
			if nodes == nil && len(nv.Failed) == 0 {
				// Unknown targets: end every window of the kind.
				for key := range n.open {
					if strings.HasPrefix(key, kind+"/") {
						n.stop(key, op, t)
					}
				}
			}
			for _, x := range nodes {
				n.stop(kind+"/"+x, op, t)
			}
			n.stop(kind+"/", op, t)
		}
	default:
		if kind, ok := strings.CutPrefix(f, "start-"); ok {
			label := nemesisLabel(op)
			if op.Error != "" {
				label += " (" + op.Error + ")"
			}
			n.start(kind, kind, label, op, t)
		} else if kind, ok := strings.CutPrefix(f, "stop-"); ok {
			n.stop(kind, op, t)
		}
	}
}

// finish ends the windows still open at end, and assigns each window a
// row so that windows overlapping in time never share one.
func (n *nemesisWindows) finish(end int64) []window {
	for _, j := range n.open {
		n.out[j].T1 = end
	}
	var rowEnd []int64
	for i := range n.out {
		w := &n.out[i]
		r := slices.IndexFunc(rowEnd, func(e int64) bool { return e <= w.T0 })
		if r < 0 {
			r = len(rowEnd)
			rowEnd = append(rowEnd, 0)
		}
		w.Row, rowEnd[r] = r, w.T1
	}
	if n.out == nil {
		return []window{}
	}
	return n.out
}
