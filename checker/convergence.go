package checker

import (
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
	// LostWrites lists the ok sets above Value (at most 100); LostWriteCount
	// counts them all.
	LostWrites     []OpRef `json:"lost_writes"`
	LostWriteCount int     `json:"lost_write_count"`
}

func newConvergence() Convergence {
	return Convergence{FinalValues: make(map[string]*int64), LostWrites: []OpRef{}}
}

// convergence checks that after the final heal every server reports the same
// value V, that V is 0 or a value some set tried to write, and that no ok set
// or ok read exceeds V.
func convergence(h *history) (Convergence, []Anomaly) {
	col := collector{check: checkConvergence}
	out := newConvergence()
	first := -1                        // the first final-get
	last := make([]int, len(h.nodes))  // each server's last ok final-get
	since := make([]int, len(h.nodes)) // the first of its trailing run of equal ones
	tried := make([]int, len(h.nodes)) // how many final-gets each server got
	for i := range last {
		last[i], since[i] = -1, -1
	}
	// Walk completions in time order.
	for i, c32 := range h.callOf {
		if c32 < 0 {
			continue
		}
		c := int(c32)
		cl := &h.calls[c]
		if cl.kind != kindFinalGet {
			continue
		}
		if i == cl.inv {
			if first < 0 {
				first = c
			}
			tried[cl.node]++
			continue
		}
		if cl.status != statusOK {
			continue
		}
		n := cl.node
		if last[n] < 0 || h.calls[last[n]].out != cl.out {
			since[n] = c
		}
		last[n] = c
	}
	for n, c := range last {
		var v *int64
		if c >= 0 {
			v = &h.calls[c].out
		}
		out.FinalValues[h.nodes[n]] = v
	}
	if first < 0 {
		out.Verdict = Verdict{Valid: Unknown, Explanation: "the history has no final-get: the run ended before its final reads"}
		return out, nil
	}

	// Do the servers that answered agree?
	var silent []string
	var answered []int // servers with an ok final-get
	for n, c := range last {
		if c < 0 {
			if tried[n] == 0 {
				silent = append(silent, h.nodes[n]+" was never read after the final heal")
			} else {
				silent = append(silent, fmt.Sprintf("%s answered none of %s", h.nodes[n], count(tried[n], "final read")))
			}
			continue
		}
		answered = append(answered, n)
	}
	agree := true
	for _, n := range answered {
		agree = agree && h.calls[last[n]].out == h.calls[last[answered[0]]].out
	}
	if !agree {
		if h.pending > 0 {
			out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf(
				"the servers still disagreed when the history ends, with %s never completed: the run was cut short during its final reads (%s)",
				count(h.pending, "op"), h.lastValues(answered, last))}
			return out, nil
		}
		if n := len(h.notInstalled); n > 0 {
			out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf(
				"the servers did not converge (%s), but %s of the nemesis failed to install (op %d first), so the network may never have been healed",
				h.lastValues(answered, last), count(n, "action"), h.notInstalled[0])}
			return out, nil
		}
		col.add(func() Anomaly {
			a := Anomaly{
				Message:  fmt.Sprintf("The servers did not converge: %s.", h.lastValues(answered, last)),
				Expected: "every server reporting the same value after the final heal",
			}
			for _, n := range answered {
				a.Ops = append(a.Ops, h.refs(last[n])...)
			}
			return a
		})
		out.Verdict = col.verdict("", fmt.Sprintf("the servers did not converge: %s", h.lastValues(answered, last)))
		return out, col.list
	}
	if len(silent) > 0 {
		what := "no server answered a final read"
		if len(answered) > 0 {
			what = fmt.Sprintf("the servers that answered agree on %d", h.calls[last[answered[0]]].out)
		}
		out.Verdict = Verdict{Valid: Unknown, Explanation: fmt.Sprintf("cannot tell whether the servers converged: %s, but %s",
			what, strings.Join(silent, "; "))}
		return out, nil
	}

	// They all converged to v.
	v := h.calls[last[0]].out
	out.Value = &v
	reached := int64(0)
	for _, c := range since {
		reached = max(reached, h.calls[c].end)
	}
	ttc := reached - h.calls[first].start
	out.TimeToConvergeNS = &ttc

	if _, ok := h.sets[v]; v != 0 && !ok {
		col.add(func() Anomaly {
			a := Anomaly{
				Message:  fmt.Sprintf("The servers converged to %d, a value no set ever tried to write.", v),
				Expected: "a converged value that is 0 or the value of some set",
			}
			for _, n := range answered {
				a.Ops = append(a.Ops, h.refs(last[n])...)
			}
			return a
		})
	}
	var lost, above []int
	for c := range h.calls {
		cl := &h.calls[c]
		if cl.status != statusOK {
			continue
		}
		switch {
		case cl.kind == kindSet && cl.arg > v:
			lost = append(lost, c)
		case cl.out > v:
			above = append(above, c)
		}
	}
	out.LostWriteCount = len(lost)
	for _, c := range lost {
		if len(out.LostWrites) < maxLostWrites {
			out.LostWrites = append(out.LostWrites, h.refs(c)...)
		}
		col.add(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("%s was acknowledged, but the servers converged to %d: the write of %d was lost.",
					h.describe(c), v, h.calls[c].arg),
				Ops:      h.refs(c),
				Expected: fmt.Sprintf("a converged value ≥ %d", h.calls[c].arg),
			}
		})
	}
	for _, c := range above {
		col.add(func() Anomaly {
			cl := &h.calls[c]
			return Anomaly{
				Message: fmt.Sprintf("%s %s %d, but the servers converged to %d: a value the cluster had served was lost.",
					h.describe(c), readVerb(cl), cl.out, v),
				Ops:      h.refs(c),
				Expected: fmt.Sprintf("a converged value ≥ %d", cl.out),
			}
		})
	}
	good := fmt.Sprintf("all %s converged to %d, %s after the first final read; no acknowledged write or served value was lost",
		count(len(h.nodes), "server"), v, time.Duration(ttc).Round(time.Microsecond))
	bad := fmt.Sprintf("all %s converged to %d, %s after the first final read, but", count(len(h.nodes), "server"), v, time.Duration(ttc).Round(time.Microsecond))
	var parts []string
	if len(lost) > 0 {
		parts = append(parts, count(len(lost), "acknowledged write")+" lost")
	}
	if len(above) > 0 {
		parts = append(parts, count(len(above), "read")+" had seen more")
	}
	if _, ok := h.sets[v]; v != 0 && !ok {
		parts = append(parts, "no set ever tried to write it")
	}
	out.Verdict = col.verdict(good, bad+" "+strings.Join(parts, " and "))
	return out, col.list
}

// lastValues says what each server that answered a final read last reported.
func (h *history) lastValues(answered, last []int) string {
	var parts []string
	for _, n := range answered {
		c := last[n]
		parts = append(parts, fmt.Sprintf("%s last reported %d (op %d at %s)",
			h.nodes[n], h.calls[c].out, h.done(c).Index, histories.FormatTime(h.calls[c].end)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
