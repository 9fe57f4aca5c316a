package checker

import (
	"fmt"

	"github.com/ec-counter/ec-counter/histories"
)

// sessionKey identifies a session: one client process's ops on one server.
// Clients each talk to one server, so a session is normally a whole process;
// a process that talks to several servers (the final reads may) gets one
// session per server, since an eventually consistent store promises nothing
// across servers until it has converged.
type sessionKey struct {
	process histories.Process
	node    int
}

// session is what a session has observed so far.
type session struct {
	last mark // its latest read
	own  mark // its largest acknowledged write
}

// sessionCheck checks monotonic reads (each read, including an ok set's
// current, is at least the session's previous read) and read-your-writes
// (after a set of v was ok, the session's reads are at least v).
type sessionCheck struct {
	col   collector
	open  map[sessionKey]*session
	reads int
}

// read judges an ok op. A process is sequential, so the order its ops
// complete in is its program order.
func (sc *sessionCheck) read(c *call) {
	sc.reads++
	key := sessionKey{c.inv.Process, c.node}
	s := sc.open[key]
	if s == nil {
		s = &session{}
		sc.open[key] = s
	}
	switch {
	case s.own.ok() && c.out < s.own.val && (!s.last.ok() || s.own.val >= s.last.val):
		own := s.own.by
		sc.col.add(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("Process %s on %s: %s %s %d after its own set of %d was acknowledged in %s: read-your-writes violated.",
					key.process, c.nodeName, c.describe(), readVerb(c), c.out, own.arg, own.describe()),
				Ops:      refs(own, c),
				Expected: fmt.Sprintf("a value ≥ %d, the process's own acknowledged write", own.arg),
			}
		})
	case s.last.ok() && c.out < s.last.val:
		prev, seen := s.last.by, s.last.val
		sc.col.add(func() Anomaly {
			return Anomaly{
				Message: fmt.Sprintf("Process %s on %s: %s %s %d after %s had seen %d: monotonic reads violated.",
					key.process, c.nodeName, c.describe(), readVerb(c), c.out, prev.describe(), seen),
				Ops:      refs(prev, c),
				Expected: fmt.Sprintf("a value ≥ %d, the process's previous read", seen),
			}
		})
	}
	s.last = mark{val: c.out, cause: causeOp, by: c}
	if c.kind == kindSet {
		s.own = s.own.max(mark{val: c.arg, cause: causeOp, by: c})
	}
}

func (sc *sessionCheck) result() (ReadCheck, []Anomaly) {
	sc.col.check = checkSession
	v := sc.col.verdict(
		fmt.Sprintf("in all %s (a process on a server), reads never went down and saw the session's own acknowledged writes", count(len(sc.open), "session")),
		fmt.Sprintf("%d of %s broke monotonic reads or read-your-writes", sc.col.count, count(sc.reads, "read")))
	if sc.reads == 0 {
		v.Explanation = noReads
	}
	return ReadCheck{Verdict: v, Reads: sc.reads}, sc.col.list
}
