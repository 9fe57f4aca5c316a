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

// sessions checks monotonic reads (each read, including an ok set's current,
// is at least the session's previous read) and read-your-writes (after a set
// of v was ok, the session's reads are at least v).
func sessions(h *history) (ReadCheck, []Anomaly) {
	col := collector{check: checkSession}
	open := make(map[sessionKey]*session)
	reads := 0
	// A process is sequential, so invoke order is its program order.
	for c := range h.calls {
		cl := &h.calls[c]
		if cl.status != statusOK {
			continue
		}
		reads++
		key := sessionKey{h.inv(c).Process, cl.node}
		s := open[key]
		if s == nil {
			s = &session{}
			open[key] = s
		}
		switch {
		case s.own.ok && cl.out < s.own.val && (!s.last.ok || s.own.val >= s.last.val):
			own := int(s.own.call)
			col.add(func() Anomaly {
				return Anomaly{
					Message: fmt.Sprintf("Process %s on %s: %s %s %d after its own set of %d was acknowledged in %s: read-your-writes violated.",
						key.process, h.nodes[key.node], h.describe(c), readVerb(cl), cl.out, h.calls[own].arg, h.describe(own)),
					Ops:      h.refs(own, c),
					Expected: fmt.Sprintf("a value ≥ %d, the process's own acknowledged write", h.calls[own].arg),
				}
			})
		case s.last.ok && cl.out < s.last.val:
			prev := int(s.last.call)
			col.add(func() Anomaly {
				return Anomaly{
					Message: fmt.Sprintf("Process %s on %s: %s %s %d after %s had seen %d: monotonic reads violated.",
						key.process, h.nodes[key.node], h.describe(c), readVerb(cl), cl.out, h.describe(prev), s.last.val),
					Ops:      h.refs(prev, c),
					Expected: fmt.Sprintf("a value ≥ %d, the process's previous read", s.last.val),
				}
			})
		}
		s.last = mark{val: cl.out, call: int32(c), ok: true}
		if cl.kind == kindSet {
			s.own = s.own.max(mark{val: cl.arg, call: int32(c), ok: true})
		}
	}
	v := col.verdict(
		fmt.Sprintf("in all %s (a process on a server), reads never went down and saw the session's own acknowledged writes", count(len(open), "session")),
		fmt.Sprintf("%d of %s broke monotonic reads or read-your-writes", col.count, count(reads, "read")))
	if reads == 0 {
		v.Explanation = noReads
	}
	return ReadCheck{Verdict: v, Reads: reads}, col.list
}
