package checker

import (
	"fmt"
	"slices"

	"github.com/ec-counter/ec-counter/histories"
)

// thinAirCheck checks that every value read (an ok get's or final-get's
// value, an ok set's current) is 0 or the value of a set invoked before the
// read completed: a server cannot know a value no client has sent yet.
//
// A read of a value no set has written so far is a suspect. A set invoked
// later at the very same time still clears it (the two overlap), so
// suspects wait in held until the history's time moves on; then they count.
type thinAirCheck struct {
	col   collector
	reads int
	held  []*call
	// listed are the anomalies kept for the report, with the set of their
	// value if one came later; watch finds them by value.
	listed []thinAirRead
	watch  map[int64][]int
}

type thinAirRead struct {
	read  *call
	later *histories.Op // the invoke of the set of its value, if any came later
}

func (t *thinAirCheck) read(k *Checker, c *call) {
	t.reads++
	if c.out == 0 {
		return
	}
	if _, ok := k.values[c.out]; !ok {
		t.held = append(t.held, c)
	}
}

// setInvoked clears held suspects of c's value, and completes the anomaly
// of listed ones.
func (t *thinAirCheck) setInvoked(c *call) {
	t.held = slices.DeleteFunc(t.held, func(r *call) bool { return r.out == c.arg && r.end >= c.start })
	for _, i := range t.watch[c.arg] {
		t.listed[i].later = &c.inv
	}
	delete(t.watch, c.arg)
}

// settle counts the held suspects: time has moved on, so no set can clear
// them any more.
func (t *thinAirCheck) settle(k *Checker) {
	for _, c := range t.held {
		t.col.count++
		if len(t.listed) < maxAnomalies {
			if t.watch == nil {
				t.watch = make(map[int64][]int)
			}
			t.watch[c.out] = append(t.watch[c.out], len(t.listed))
			t.listed = append(t.listed, thinAirRead{read: c})
		}
	}
	clear(t.held)
	t.held = t.held[:0]
}

func (t *thinAirCheck) result() (ReadCheck, []Anomaly) {
	t.col.check = checkThinAir
	for _, s := range t.listed {
		c, x := s.read, s.read.out
		if s.later == nil {
			t.col.keep(func() Anomaly {
				return Anomaly{
					Message:  fmt.Sprintf("%s %s %d, a value no set ever wrote.", c.describe(), readVerb(c), x),
					Ops:      refs(c),
					Expected: "0 or the value of a set invoked before the read returned",
				}
			})
			continue
		}
		set := s.later
		t.col.keep(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("%s %s %d, but the set of %d was only invoked later, at t=%s: %s.",
					c.describe(), readVerb(c), x, x, preciseTime(set.Time), set.Describe()),
				Ops: append(refs(c), ref(set)),
				Expected: fmt.Sprintf("0 or the value of a set invoked before the read returned at %s",
					histories.FormatTime(c.end)),
			}
		})
	}
	v := t.col.verdict(
		fmt.Sprintf("all %s returned 0 or a value some set had already tried to write", count(t.reads, "read")),
		fmt.Sprintf("%d of %s returned a value out of thin air", t.col.count, count(t.reads, "read")))
	if t.reads == 0 {
		v.Explanation = noReads
	}
	list := t.col.list
	t.col.list = nil // Result may be asked again
	return ReadCheck{Verdict: v, Reads: t.reads}, list
}

// readVerb says how an ok op observed the counter.
func readVerb(c *call) string {
	if c.kind == kindSet {
		return "returned current"
	}
	return "read"
}
