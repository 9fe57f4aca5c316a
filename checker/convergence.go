package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

// maxLostWrites is how many lost writes Convergence lists.
const maxLostWrites = 100

// Convergence is the verdict of the convergence check.
type Convergence struct {
	Verdict
	// Value is the value every server converged to; null unless they did.
	Value *int64 `json:"value"`
	// TimeToConvergeNS runs from the invoke of the first final-get (the
	// final reads start right after the final heal) to the completion of the
	// last server's first final-get of Value in its final run of such reads;
	// null unless the servers converged.
	TimeToConvergeNS *int64 `json:"time_to_converge_ns"`
	// FinalValues is each server's last ok final-get; null for a server
	// that answered none.
	FinalValues map[string]*int64 `json:"final_values"`
	// LostWrites lists the ok sets above Value, in history order (the 100
	// of the largest values when there are more); LostWriteCount counts
	// them all.
	LostWrites     []OpRef `json:"lost_writes"`
	LostWriteCount int     `json:"lost_write_count"`
}

func newConvergence() Convergence {
	return Convergence{FinalValues: make(map[string]*int64), LostWrites: []OpRef{}}
}

// convergenceCheck checks that after the final heal every server reports
// the same value V, that V is 0 or a value some set tried to write, and that
// no ok set or ok read exceeds V. V is known only at the end, so it keeps
// the largest ok sets and reads (for the anomalies it lists) and counts the
// rest from the checker's entry per set value.
type convergenceCheck struct {
	first *call   // the first final-get
	last  []*call // each server's last ok final-get
	since []*call // the first of its trailing run of equal ones
	tried []int   // how many final-gets each server got
	// topSets are the ok sets of the largest values; topReads the ok gets
	// and final-gets, and the ok sets whose current exceeds their value,
	// that observed the most.
	topSets  topCalls
	topReads topCalls
}

func (cc *convergenceCheck) addNode() {
	cc.last = append(cc.last, nil)
	cc.since = append(cc.since, nil)
	cc.tried = append(cc.tried, 0)
}

func (cc *convergenceCheck) invoked(c *call) {
	if c.kind != kindFinalGet {
		return
	}
	if cc.first == nil {
		cc.first = c
	}
	cc.tried[c.node]++
}

func (cc *convergenceCheck) read(c *call) {
	if c.kind == kindSet {
		cc.topSets.push(c, c.arg, maxLostWrites)
		if c.out > c.arg {
			cc.topReads.push(c, c.out, maxAnomalies)
		}
	} else {
		cc.topReads.push(c, c.out, maxAnomalies)
	}
	if c.kind != kindFinalGet {
		return
	}
	n := c.node
	if cc.last[n] == nil || cc.last[n].out != c.out {
		cc.since[n] = c
	}
	cc.last[n] = c
}

func (cc *convergenceCheck) result(k *Checker) (Convergence, []Anomaly) {
	col := collector{check: checkConvergence}
	out := newConvergence()
	last := cc.last
	for n, c := range last {
		var v *int64
		if c != nil {
			x := c.out
			v = &x
		}
		out.FinalValues[k.nodes[n]] = v
	}
	if cc.first == nil {
		out.Verdict = Verdict{Valid: Unknown, Explanation: "the history has no final-get: the run ended before its final reads"}
		return out, nil
	}

	// Do the servers that answered agree?
	var silent []string
	var answered []int // servers with an ok final-get
	for n, c := range last {
		if c == nil {
			if cc.tried[n] == 0 {
				silent = append(silent, k.nodes[n]+" was never read after the final heal")
			} else {
				silent = append(silent, fmt.Sprintf("%s answered none of %s", k.nodes[n], count(cc.tried[n], "final read")))
			}
			continue
		}
		answered = append(answered, n)
	}
	agree := true
	for _, n := range answered {
		agree = agree && last[n].out == last[answered[0]].out
	}
	if !agree {
		if pending := len(k.open); pending > 0 {
			out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf(
				"the servers still disagreed when the history ends, with %s never completed: the run was cut short during its final reads (%s)",
				count(pending, "op"), lastValues(k.nodes, answered, last))}
			return out, nil
		}
		if n := k.stats.notInstalled; n > 0 {
			out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf(
				"the servers did not converge (%s), but %s of the nemesis failed to install (op %d first), so the network may never have been healed",
				lastValues(k.nodes, answered, last), count(n, "action"), k.stats.notInstalledOps[0])}
			return out, nil
		}
		col.add(func() Anomaly {
			a := Anomaly{
				Message:  fmt.Sprintf("The servers did not converge: %s.", lastValues(k.nodes, answered, last)),
				Expected: "every server reporting the same value after the final heal",
			}
			for _, n := range answered {
				a.Ops = append(a.Ops, refs(last[n])...)
			}
			return a
		})
		out.Verdict = col.verdict("", fmt.Sprintf("the servers did not converge: %s", lastValues(k.nodes, answered, last)))
		return out, col.list
	}
	if len(silent) > 0 {
		what := "no server answered a final read"
		if len(answered) > 0 {
			what = fmt.Sprintf("the servers that answered agree on %d", last[answered[0]].out)
		}
		out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf("cannot tell whether the servers converged: %s, but %s",
			what, strings.Join(silent, "; "))}
		return out, nil
	}

	// They all converged to v.
	v := last[0].out
	out.Value = &v
	reached := int64(0)
	for _, c := range cc.since {
		reached = max(reached, c.end)
	}
	ttc := reached - cc.first.start
	out.TimeToConvergeNS = &ttc

	_, tried := k.values[v]
	tried = tried || v == 0
	if !tried {
		col.add(func() Anomaly {
			a := Anomaly{
				Message:  fmt.Sprintf("The servers converged to %d, a value no set ever tried to write.", v),
				Expected: "a converged value that is 0 or the value of some set",
			}
			for _, n := range answered {
				a.Ops = append(a.Ops, refs(last[n])...)
			}
			return a
		})
	}
	// Count what the cluster lost: ok sets above v, and ok ops that
	// observed more than v (an ok set above v counts as a lost write only).
	lost, above := 0, 0
	for x, e := range k.values {
		switch {
		case e.okSet && x > v:
			lost++
		case e.okSet && e.out > v:
			above++
		}
		if x > v {
			above += e.reads
		}
	}
	for x, n := range k.strays {
		if x > v {
			above += n
		}
	}
	// List the largest of them, in the order of the history.
	var lostCalls, aboveCalls []*call
	for _, c := range cc.topSets.calls {
		if c.arg > v {
			lostCalls = append(lostCalls, c)
		}
	}
	for _, c := range cc.topReads.calls {
		if c.out > v && !(c.kind == kindSet && c.arg > v) {
			aboveCalls = append(aboveCalls, c)
		}
	}
	byIndex := func(a, b *call) int { return cmp.Compare(a.inv.Index, b.inv.Index) }
	slices.SortFunc(lostCalls, byIndex)
	slices.SortFunc(aboveCalls, byIndex)
	out.LostWriteCount = lost
	for _, c := range lostCalls {
		out.LostWrites = append(out.LostWrites, refs(c)...)
		col.keep(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("%s was acknowledged, but the servers converged to %d: the write of %d was lost.",
					c.describe(), v, c.arg),
				Ops:      refs(c),
				Expected: fmt.Sprintf("a converged value ≥ %d", c.arg),
			}
		})
	}
	for _, c := range aboveCalls {
		col.keep(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("%s %s %d, but the servers converged to %d: a value the cluster had served was lost.",
					c.describe(), readVerb(c), c.out, v),
				Ops:      refs(c),
				Expected: fmt.Sprintf("a converged value ≥ %d", c.out),
			}
		})
	}
	col.count += lost + above
	good := fmt.Sprintf("all %s converged to %d, %s after the first final read; no acknowledged write or served value was lost",
		count(len(k.nodes), "server"), v, time.Duration(ttc).Round(time.Microsecond))
	bad := fmt.Sprintf("all %s converged to %d, %s after the first final read, but", count(len(k.nodes), "server"), v, time.Duration(ttc).Round(time.Microsecond))
	var parts []string
	if lost > 0 {
		parts = append(parts, count(lost, "acknowledged write")+" lost")
	}
	if above > 0 {
		parts = append(parts, count(above, "read")+" had seen more")
	}
	if !tried {
		parts = append(parts, "no set ever tried to write it")
	}
	out.Verdict = col.verdict(good, bad+" "+strings.Join(parts, " and "))
	return out, col.list
}

// lastValues says what each server that answered a final read last reported.
func lastValues(nodes []string, answered []int, last []*call) string {
	var parts []string
	for _, n := range answered {
		c := last[n]
		parts = append(parts, fmt.Sprintf("%s last reported %d (op %d at %s)",
			nodes[n], c.out, c.done.Index, histories.FormatTime(c.end)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// topCalls keeps the calls of the largest keys seen, at most a given number:
// a min-heap on key.
type topCalls struct {
	calls []*call
	keys  []int64
}

// push offers c with key; it is kept if it is among the largest max.
func (t *topCalls) push(c *call, key int64, max int) {
	if len(t.calls) == max {
		if key <= t.keys[0] {
			return
		}
		t.calls[0], t.keys[0] = c, key
		t.down(0)
		return
	}
	t.calls = append(t.calls, c)
	t.keys = append(t.keys, key)
	for i := len(t.keys) - 1; i > 0; {
		p := (i - 1) / 2
		if t.keys[p] <= t.keys[i] {
			break
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topCalls) down(i int) {
	for {
		l, small := 2*i+1, i
		if l < len(t.keys) && t.keys[l] < t.keys[small] {
			small = l
		}
		if r := l + 1; r < len(t.keys) && t.keys[r] < t.keys[small] {
			small = r
		}
		if small == i {
			return
		}
		t.swap(i, small)
		i = small
	}
}

func (t *topCalls) swap(i, j int) {
	t.calls[i], t.calls[j] = t.calls[j], t.calls[i]
	t.keys[i], t.keys[j] = t.keys[j], t.keys[i]
}
