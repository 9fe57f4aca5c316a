package checker

import (
	"fmt"

	"github.com/ec-counter/ec-counter/histories"
)

// thinAir checks that every value read (an ok get's or final-get's value, an
// ok set's current) is 0 or the value of a set invoked before the read
// completed: a server cannot know a value no client has sent yet.
func thinAir(h *history) (ReadCheck, []Anomaly) {
	col := collector{check: checkThinAir}
	reads := 0
	for c := range h.calls {
		cl := &h.calls[c]
		if !cl.isRead() {
			continue
		}
		reads++
		x := cl.out
		if x == 0 {
			continue
		}
		s, ok := h.sets[x]
		if !ok {
			col.add(func() Anomaly {
				return Anomaly{
					Message:  fmt.Sprintf("%s %s %d, a value no set ever wrote.", h.describe(c), readVerb(cl), x),
					Ops:      h.refs(c),
					Expected: "0 or the value of a set invoked before the read returned",
				}
			})
			continue
		}
		if h.calls[s].start > cl.end {
			col.add(func() Anomaly {
				return Anomaly{
					Message: fmt.Sprintf("%s %s %d, but the set of %d was only invoked later, at t=%s: %s.",
						h.describe(c), readVerb(cl), x, x, preciseTime(h.calls[s].start), h.inv(s).Describe()),
					Ops: append(h.refs(c), h.ref(h.calls[s].inv)),
					Expected: fmt.Sprintf("0 or the value of a set invoked before the read returned at %s",
						histories.FormatTime(cl.end)),
				}
			})
		}
	}
	v := col.verdict(
		fmt.Sprintf("all %s returned 0 or a value some set had already tried to write", count(reads, "read")),
		fmt.Sprintf("%d of %s returned a value out of thin air", col.count, count(reads, "read")))
	if reads == 0 {
		v.Explanation = noReads
	}
	return ReadCheck{Verdict: v, Reads: reads}, col.list
}

// readVerb says how an ok op observed the counter.
func readVerb(c *call) string {
	if c.kind == kindSet {
		return "returned current"
	}
	return "read"
}
