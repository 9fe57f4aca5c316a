package checker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/histories"
)

// builder writes hand-made histories, one op per millisecond.
type builder struct{ ops []histories.Op }

func (b *builder) add(op histories.Op) int {
	op.Index = int64(len(b.ops))
	op.Time = int64(len(b.ops)+1) * 1_000_000
	b.ops = append(b.ops, op)
	return int(op.Index)
}

func (b *builder) invoke(p int, f, node string, v ...int64) int {
	op := histories.Op{Type: histories.Invoke, Process: histories.Process(p), F: f, Node: node}
	if len(v) > 0 {
		op.Value = histories.IntValue(v[0])
	}
	return b.add(op)
}

// read completes process p's get (or final-get) with x.
func (b *builder) read(p int, f, node string, x int64) int {
	return b.add(histories.Op{Type: histories.OK, Process: histories.Process(p), F: f, Node: node, Value: histories.IntValue(x)})
}

// setOK completes process p's set of v with current cur.
func (b *builder) setOK(p int, node string, v, cur int64) int {
	applied := cur == v
	return b.add(histories.Op{Type: histories.OK, Process: histories.Process(p), F: histories.FSet, Node: node,
		Value: histories.IntValue(v), Applied: &applied, Current: &cur})
}

func (b *builder) end(p int, t histories.Type, f, node string) int {
	return b.add(histories.Op{Type: t, Process: histories.Process(p), F: f, Node: node, Error: "timeout"})
}

// get and set are whole ops, not overlapping anything.
func (b *builder) get(p int, node string, x int64) int {
	b.invoke(p, histories.FGet, node)
	return b.read(p, histories.FGet, node, x)
}

func (b *builder) set(p int, node string, v, cur int64) int {
	b.invoke(p, histories.FSet, node, v)
	return b.setOK(p, node, v, cur)
}

// finals takes one round of final reads, process 100+i reading node i.
func (b *builder) finals(values ...int64) {
	for i, v := range values {
		node := fmt.Sprintf("n%d", i+1)
		b.invoke(100+i, histories.FFinalGet, node)
		b.read(100+i, histories.FFinalGet, node, v)
	}
}

func (b *builder) nemesis(f string, v any) int {
	return b.add(histories.Op{Type: histories.Info, Process: histories.Nemesis, F: f, Value: histories.JSONValue(v)})
}

// validBase is a small valid history on two servers.
func validBase() *builder {
	b := &builder{}
	b.set(0, "n1", 10, 10)                                          // ops 0, 1
	b.get(1, "n2", 0)                                               // 2, 3
	b.nemesis("start-partition", map[string][]string{"n1": {"n2"}}) // 4
	b.set(1, "n2", 20, 20)                                          // 5, 6
	b.get(0, "n1", 10)                                              // 7, 8
	b.nemesis("stop-partition", nil)                                // 9
	b.get(0, "n1", 20)                                              // 10, 11: gossip
	b.set(0, "n1", 15, 20)                                          // 12, 13: not applied
	return b
}

// anomaliesOf returns the anomalies of one check.
func anomaliesOf(r Result, check string) []Anomaly {
	var out []Anomaly
	for _, a := range r.Anomalies {
		if a.Check == check {
			out = append(out, a)
		}
	}
	return out
}

func indices(a Anomaly) []int64 {
	var out []int64
	for _, o := range a.Ops {
		out = append(out, o.Index)
	}
	return out
}

// expectOnly asserts that r is invalid, with exactly one anomaly of check,
// which names exactly the ops want (in order), each of them in its message.
func expectOnly(t *testing.T, r Result, check string, want ...int64) Anomaly {
	t.Helper()
	if r.Valid != Invalid {
		t.Fatalf("valid = %s, want invalid:\n%s", r.Valid, summary(r))
	}
	as := anomaliesOf(r, check)
	if len(as) != 1 {
		t.Fatalf("%d %s anomalies, want 1:\n%s", len(as), check, summary(r))
	}
	a := as[0]
	if got := indices(a); !slices.Equal(got, want) {
		t.Errorf("anomaly names ops %v, want %v: %s", got, want, a.Message)
	}
	for _, i := range want {
		msg := strings.ToLower(a.Message)
		if !strings.Contains(msg, fmt.Sprintf("op %d ", i)) && !strings.Contains(msg, fmt.Sprintf("op %d)", i)) {
			t.Errorf("message does not name op %d: %s", i, a.Message)
		}
	}
	if a.Expected == "" {
		t.Errorf("anomaly has no expected: %+v", a)
	}
	return a
}

func summary(r Result) string {
	var b strings.Builder
	r.WriteSummary(&b)
	return b.String()
}

func TestValidHistory(t *testing.T) {
	b := validBase()
	b.finals(20, 20)
	r := Check(b.ops)
	if r.Valid != Valid || len(r.Anomalies) != 0 {
		t.Fatalf("valid history judged %s:\n%s", r.Valid, summary(r))
	}
	c := r.Checks
	for name, v := range map[string]Verdict{"thin-air": c.ThinAir.Verdict, "linearizable": c.Linearizable.Verdict,
		"session": c.Session.Verdict, "convergence": c.Convergence.Verdict, "stats": c.Stats.Verdict} {
		if v.Valid != Valid || v.Explanation == "" {
			t.Errorf("%s: %+v", name, v)
		}
	}
	if c.Linearizable.Reads != 8 { // 3 ok sets, 3 ok gets, 2 ok final-gets
		t.Errorf("reads = %d, want 8", c.Linearizable.Reads)
	}
	cv := c.Convergence
	if cv.Value == nil || *cv.Value != 20 || cv.LostWriteCount != 0 || len(cv.LostWrites) != 0 {
		t.Errorf("convergence = %+v", cv)
	}
	// The first final-get is invoked at op 14, n2's read completes at op 17.
	if cv.TimeToConvergeNS == nil || *cv.TimeToConvergeNS != b.ops[17].Time-b.ops[14].Time {
		t.Errorf("time to converge = %v, want %d", cv.TimeToConvergeNS, b.ops[17].Time-b.ops[14].Time)
	}
	if *cv.FinalValues["n1"] != 20 || *cv.FinalValues["n2"] != 20 {
		t.Errorf("final values = %v", cv.FinalValues)
	}
	st := c.Stats
	if st.ByF["set"] != (Counts{OK: 3, Availability: 1}) || st.ByF["get"].OK != 3 || st.ByF["final-get"].OK != 2 {
		t.Errorf("by f = %+v", st.ByF)
	}
	if st.ByNode["n1"].OK != 5 || st.Nemesis["start-partition"] != 1 || st.Nemesis["stop-partition"] != 1 {
		t.Errorf("stats = %+v", st)
	}
	if l := st.Latency["get"]; l.Count != 3 || l.P50 != 1_000_000 || l.Max != 1_000_000 {
		t.Errorf("get latency = %+v", l)
	}
}

func TestResultJSON(t *testing.T) {
	b := validBase()
	b.finals(20, 20)
	r := Check(b.ops)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(data, &shape); err != nil {
		t.Fatal(err)
	}
	if shape["valid"] != true {
		t.Errorf("valid = %v in %s", shape["valid"], data)
	}
	checks, _ := shape["checks"].(map[string]any)
	for _, name := range []string{"thin-air", "linearizable", "session", "convergence", "stats"} {
		c, _ := checks[name].(map[string]any)
		if c["valid"] != true {
			t.Errorf("checks.%s.valid = %v in %s", name, c["valid"], data)
		}
	}
	if a, ok := shape["anomalies"].([]any); !ok || len(a) != 0 {
		t.Errorf("anomalies = %v, want []", shape["anomalies"])
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Valid != Valid || *back.Checks.Convergence.Value != 20 {
		t.Errorf("round trip: %+v", back)
	}

	// An invalid one, with anomalies that name their ops.
	b = validBase()
	b.get(2, "n1", 10) // 14, 15: after 20 was read on n1
	b.finals(20, 20)
	data, _ = json.Marshal(Check(b.ops))
	for _, want := range []string{`"valid":false`, `"check":"linearizable"`, `"index":15`, `"expected":`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s missing from %s", want, data)
		}
	}
}

func TestValidityJSON(t *testing.T) {
	for v, want := range map[Validity]string{Valid: "true", Invalid: "false", Unknown: `"unknown"`} {
		b, err := json.Marshal(v)
		if err != nil || string(b) != want {
			t.Errorf("marshal %s = %s, %v; want %s", v, b, err, want)
		}
		var back Validity
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Errorf("unmarshal %s = %s, %v", b, back, err)
		}
	}
	var v Validity
	if err := json.Unmarshal([]byte(`"yes"`), &v); err == nil {
		t.Error(`unmarshal "yes" succeeded`)
	}
	if v := combine(Valid, Unknown, Valid); v != Unknown {
		t.Errorf("combine = %s", v)
	}
	if v := combine(Unknown, Invalid); v != Invalid {
		t.Errorf("combine = %s", v)
	}
}

func TestThinAir(t *testing.T) {
	t.Run("never written", func(t *testing.T) {
		b := validBase()
		b.get(2, "n2", 99) // 14, 15
		b.finals(20, 20)
		r := Check(b.ops)
		a := expectOnly(t, r, "thin-air", 15)
		if !strings.Contains(a.Message, "99") {
			t.Errorf("message: %s", a.Message)
		}
	})
	t.Run("written later", func(t *testing.T) {
		b := validBase()
		b.get(2, "n2", 30)     // 14, 15
		b.set(3, "n1", 30, 30) // 16, 17
		b.finals(30, 30)
		r := Check(b.ops)
		a := expectOnly(t, r, "thin-air", 15, 16)
		if r.Checks.ThinAir.AnomalyCount != 1 {
			t.Errorf("count = %d", r.Checks.ThinAir.AnomalyCount)
		}
		_ = a
	})
	t.Run("written concurrently", func(t *testing.T) {
		b := validBase()
		b.invoke(2, "get", "n2") // 14
		b.invoke(3, "set", "n1", 30)
		b.read(2, "get", "n2", 30) // the set was invoked before this returned
		b.setOK(3, "n1", 30, 30)
		b.finals(30, 30)
		if r := Check(b.ops); r.Valid != Valid {
			t.Errorf("judged %s:\n%s", r.Valid, summary(r))
		}
	})
}

func TestLinearizable(t *testing.T) {
	t.Run("read below a completed set", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)   // 0, 1
		b.set(0, "n1", 10, 10) // 2, 3
		b.get(1, "n1", 5)      // 4, 5
		b.finals(10)
		r := Check(b.ops)
		a := expectOnly(t, r, "linearizable", 3, 4, 5)
		for _, want := range []string{"n1", "process 1", "read 5", "with 10"} {
			if !strings.Contains(a.Message, want) {
				t.Errorf("message lacks %q: %s", want, a.Message)
			}
		}
		if r.Checks.Session.Valid != Valid || r.Checks.ThinAir.Valid != Valid {
			t.Errorf("other checks: %s", summary(r))
		}
	})
	t.Run("read below a completed read", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)   // 0, 1
		b.set(0, "n2", 10, 10) // 2, 3
		b.get(1, "n1", 10)     // 4, 5: gossip brought 10
		b.get(2, "n1", 5)      // 6, 7
		b.finals(10, 10)
		expectOnly(t, Check(b.ops), "linearizable", 5, 6, 7)
	})
	t.Run("set current below its value", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 10, 7) // 0, 1
		b.finals(10)
		r := Check(b.ops)
		if r.Valid != Invalid {
			t.Fatalf("judged %s", r.Valid)
		}
		as := anomaliesOf(r, "linearizable")
		if len(as) != 1 || !slices.Equal(indices(as[0]), []int64{1}) || !strings.Contains(as[0].Message, "returned current 7") {
			t.Errorf("anomalies: %+v", as)
		}
	})
	t.Run("concurrent reads may see either", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)         // 0, 1
		b.invoke(0, "set", "n1", 10) // 2
		b.invoke(1, "get", "n1")     // 3
		b.invoke(2, "get", "n1")     // 4
		b.read(1, "get", "n1", 10)   // 5
		b.setOK(0, "n1", 10, 10)     // 6
		b.read(2, "get", "n1", 5)    // 7: concurrent with 5's get, fine
		b.finals(10)
		if r := Check(b.ops); r.Valid != Valid {
			t.Errorf("judged %s:\n%s", r.Valid, summary(r))
		}
	})
	t.Run("info and failed sets bound nothing", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)                  // 0, 1
		b.invoke(0, "set", "n1", 10)          // 2
		b.end(0, histories.Info, "set", "n1") // 3
		b.invoke(1, "set", "n1", 11)          // 4
		b.end(1, histories.Fail, "set", "n1") // 5
		b.get(1, "n1", 5)                     // 6, 7
		b.get(1, "n1", 10)                    // 8, 9: the info set applied late
		b.finals(10)
		if r := Check(b.ops); r.Valid != Valid {
			t.Errorf("judged %s:\n%s", r.Valid, summary(r))
		}
	})
	t.Run("equal times are concurrent", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5) // 0, 1
		b.invoke(0, "set", "n1", 10)
		b.invoke(1, "get", "n1")
		b.setOK(0, "n1", 10, 10) // 4
		b.read(1, "get", "n1", 10)
		b.invoke(1, "get", "n1") // 6: invoked at the same time as 4 completes
		b.read(1, "get", "n1", 5)
		b.finals(10)
		b.ops[6].Time = b.ops[4].Time
		b.ops[5].Time = b.ops[4].Time
		r := Check(b.ops)
		// The session check still sees process 1 go from 10 to 5.
		if r.Checks.Linearizable.Valid != Valid {
			t.Errorf("linearizable judged %s:\n%s", r.Checks.Linearizable.Valid, summary(r))
		}
		b.ops[6].Time++
		b.ops[7].Time++
		expectOnly(t, Check(b.ops), "linearizable", 4, 6, 7)
	})
	t.Run("servers are independent", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 10, 10) // 0, 1
		b.get(1, "n2", 0)      // 2, 3: n2 has not heard of it yet
		b.finals(10, 10)
		if r := Check(b.ops); r.Valid != Valid {
			t.Errorf("judged %s:\n%s", r.Valid, summary(r))
		}
	})
}

func TestSession(t *testing.T) {
	t.Run("monotonic reads", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)   // 0, 1
		b.set(0, "n2", 10, 10) // 2, 3
		b.get(1, "n1", 10)     // 4, 5
		b.get(1, "n1", 5)      // 6, 7
		b.finals(10, 10)
		r := Check(b.ops)
		a := expectOnly(t, r, "session", 5, 7)
		if !strings.Contains(a.Message, "monotonic reads") || !strings.Contains(a.Message, "Process 1") {
			t.Errorf("message: %s", a.Message)
		}
	})
	t.Run("read your writes", func(t *testing.T) {
		b := &builder{}
		b.set(0, "n1", 5, 5)   // 0, 1
		b.set(1, "n1", 10, 10) // 2, 3
		b.get(1, "n1", 5)      // 4, 5
		b.finals(10)
		r := Check(b.ops)
		a := expectOnly(t, r, "session", 3, 5)
		if !strings.Contains(a.Message, "read-your-writes") {
			t.Errorf("message: %s", a.Message)
		}
	})
	t.Run("a process on two servers", func(t *testing.T) {
		// Final reads of one process may visit several servers: not a
		// session violation.
		b := &builder{}
		b.set(0, "n1", 10, 10)         // 0, 1
		b.get(0, "n1", 10)             // 2, 3
		b.invoke(7, "final-get", "n1") // 4
		b.read(7, "final-get", "n1", 10)
		b.invoke(7, "final-get", "n2")
		b.read(7, "final-get", "n2", 0)
		b.finals(10, 10)
		r := Check(b.ops)
		if r.Checks.Session.Valid != Valid || r.Checks.Linearizable.Valid != Valid {
			t.Errorf("judged:\n%s", summary(r))
		}
	})
}

func TestConvergence(t *testing.T) {
	t.Run("not converged", func(t *testing.T) {
		b := validBase()
		b.set(3, "n1", 30, 30) // 14, 15
		b.finals(30, 20)       // 16..19
		r := Check(b.ops)
		a := expectOnly(t, r, "convergence", 17, 19)
		for _, want := range []string{"n1 last reported 30", "n2 last reported 20"} {
			if !strings.Contains(a.Message, want) {
				t.Errorf("message lacks %q: %s", want, a.Message)
			}
		}
		if r.Checks.Convergence.Value != nil {
			t.Errorf("value = %d", *r.Checks.Convergence.Value)
		}
	})
	t.Run("converges after a few rounds", func(t *testing.T) {
		b := validBase()
		b.set(3, "n1", 30, 30) // 14, 15
		b.finals(30, 20)       // 16..19
		b.invoke(101, "final-get", "n2")
		b.end(101, histories.Fail, "final-get", "n2") // 20, 21
		b.finals(30, 30)                              // 22..25
		b.finals(30, 30)                              // 26..29
		r := Check(b.ops)
		if r.Valid != Valid {
			t.Fatalf("judged:\n%s", summary(r))
		}
		// n2 first read 30 in op 25.
		if got, want := *r.Checks.Convergence.TimeToConvergeNS, b.ops[25].Time-b.ops[16].Time; got != want {
			t.Errorf("time to converge = %d, want %d", got, want)
		}
	})
	t.Run("lost write", func(t *testing.T) {
		b := validBase()
		b.set(3, "n2", 30, 30) // 14, 15
		b.finals(20, 20)
		r := Check(b.ops)
		a := expectOnly(t, r, "convergence", 15)
		if !strings.Contains(a.Message, "lost") {
			t.Errorf("message: %s", a.Message)
		}
		cv := r.Checks.Convergence
		if cv.LostWriteCount != 1 || len(cv.LostWrites) != 1 || cv.LostWrites[0].Index != 15 || *cv.Value != 20 {
			t.Errorf("convergence: %+v", cv)
		}
	})
	t.Run("served value lost", func(t *testing.T) {
		b := validBase()
		b.invoke(3, "set", "n2", 30)          // 14
		b.end(3, histories.Info, "set", "n2") // 15
		b.get(4, "n2", 30)                    // 16, 17
		b.finals(20, 20)
		r := Check(b.ops)
		expectOnly(t, r, "convergence", 17)
		if r.Checks.Convergence.LostWriteCount != 0 {
			t.Errorf("lost writes: %+v", r.Checks.Convergence.LostWrites)
		}
	})
	t.Run("converged out of thin air", func(t *testing.T) {
		b := validBase()
		b.finals(25, 25)
		r := Check(b.ops)
		if r.Checks.Convergence.Valid != Invalid || !strings.Contains(summary(r), "no set ever tried to write") {
			t.Errorf("judged:\n%s", summary(r))
		}
	})
	t.Run("no final reads", func(t *testing.T) {
		r := Check(validBase().ops)
		if r.Valid != Unknown || r.Checks.Convergence.Valid != Unknown || len(r.Anomalies) != 0 {
			t.Errorf("judged:\n%s", summary(r))
		}
	})
	t.Run("a server never answered", func(t *testing.T) {
		b := validBase()
		b.invoke(100, "final-get", "n1")
		b.read(100, "final-get", "n1", 20)
		b.invoke(101, "final-get", "n2")
		b.end(101, histories.Fail, "final-get", "n2")
		r := Check(b.ops)
		cv := r.Checks.Convergence
		if r.Valid != Unknown || cv.Valid != Unknown || !strings.Contains(cv.Explanation, "n2 answered none of 1 final read") {
			t.Errorf("judged:\n%s", summary(r))
		}
		if cv.FinalValues["n2"] != nil || *cv.FinalValues["n1"] != 20 {
			t.Errorf("final values: %v", cv.FinalValues)
		}
	})
	t.Run("cut short while disagreeing", func(t *testing.T) {
		b := validBase()
		b.set(3, "n1", 30, 30)
		b.finals(30, 20)
		b.invoke(100, "final-get", "n1")
		r := Check(b.ops)
		if r.Valid != Unknown || r.Checks.Convergence.Valid != Unknown {
			t.Errorf("judged:\n%s", summary(r))
		}
	})
}

func TestStats(t *testing.T) {
	t.Run("no ok set", func(t *testing.T) {
		b := &builder{}
		b.get(0, "n1", 0)
		b.invoke(0, "set", "n1", 5)
		b.end(0, histories.Info, "set", "n1")
		b.finals(0)
		r := Check(b.ops)
		if r.Valid != Unknown || r.Checks.Stats.Valid != Unknown || len(r.Anomalies) != 0 {
			t.Fatalf("a history without an ok set: judged %s, want unknown without anomalies:\n%s", r.Valid, summary(r))
		}
		if !strings.Contains(r.Checks.Stats.Explanation, "no set succeeded") {
			t.Errorf("explanation: %s", r.Checks.Stats.Explanation)
		}
		if r.Checks.Stats.ByF["set"].Info != 1 || r.Checks.Stats.Availability != 2.0/3 {
			t.Errorf("stats: %+v", r.Checks.Stats)
		}
	})
	t.Run("empty history", func(t *testing.T) {
		r := Check(nil)
		if r.Valid != Unknown || r.Checks.Stats.Valid != Unknown || r.Checks.Convergence.Valid != Unknown || len(r.Anomalies) != 0 {
			t.Errorf("judged:\n%s", summary(r))
		}
	})
	t.Run("fault not installed", func(t *testing.T) {
		for _, tc := range []struct {
			problem string
			want    Validity
		}{
			{"", Valid},
			{"unreachable: n2", Valid}, // a node that was down, as on loopback
			{histories.NotInstalled + ": n2 (lab: netlink: operation not permitted)", Unknown},
		} {
			b := validBase()
			b.finals(20, 20)
			b.ops[4].Error = tc.problem
			r := Check(b.ops)
			if r.Valid != tc.want || r.Checks.Stats.Valid != tc.want {
				t.Errorf("problem %q: judged %s, want %s:\n%s", tc.problem, r.Valid, tc.want, summary(r))
			}
			if tc.want == Unknown && !strings.Contains(r.Checks.Stats.Explanation, "op 4") {
				t.Errorf("explanation does not name the op: %s", r.Checks.Stats.Explanation)
			}
		}
	})
	t.Run("no convergence after a fault not installed", func(t *testing.T) {
		b := validBase()
		b.finals(20, 20, 0) // n3, which no client used, never caught up
		if r := Check(b.ops); r.Checks.Convergence.Valid != Invalid {
			t.Fatalf("disagreeing servers: convergence %s, want invalid", r.Checks.Convergence.Valid)
		}
		b.ops[9].Error = histories.NotInstalled + ": n1" // the heal failed
		r := Check(b.ops)
		if r.Checks.Convergence.Valid != Unknown || r.Valid != Unknown {
			t.Errorf("disagreeing servers after a failed heal: convergence %s, verdict %s; want unknown:\n%s",
				r.Checks.Convergence.Valid, r.Valid, summary(r))
		}
	})
	t.Run("quantiles", func(t *testing.T) {
		quantiles := func(ds []int64) Latency {
			var l latencies
			for _, d := range ds {
				l.add(d)
			}
			return l.quantiles()
		}
		ds := make([]int64, 100)
		for i := range ds {
			ds[i] = int64(100 - i)
		}
		if l := quantiles(ds); l != (Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}) {
			t.Errorf("quantiles = %+v", l)
		}
		if l := quantiles([]int64{7}); l != (Latency{Count: 1, P50: 7, P90: 7, P99: 7, Max: 7}) {
			t.Errorf("quantiles = %+v", l)
		}
		if l := quantiles([]int64{1_000_000, 1_000_000}); l.P50 != 1_000_000 {
			t.Errorf("equal latencies: p50 %d, want 1000000 exactly", l.P50)
		}
		// Against the exact nearest-rank quantiles of random latencies from
		// 1µs to 10s: never below, at most 1/128 above.
		rng := rand.New(rand.NewPCG(3, 4))
		ds = make([]int64, 10_000)
		for i := range ds {
			ds[i] = int64(1000 * math.Pow(10, 7*rng.Float64()))
		}
		got := quantiles(ds)
		slices.Sort(ds)
		exact := func(perMille int) int64 { return ds[max((perMille*len(ds)+999)/1000-1, 0)] }
		for _, q := range []struct {
			name      string
			got, want int64
		}{{"p50", got.P50, exact(500)}, {"p90", got.P90, exact(900)}, {"p99", got.P99, exact(990)}, {"max", got.Max, exact(1000)}} {
			if q.got < q.want || float64(q.got-q.want) > float64(q.want)/128 {
				t.Errorf("%s = %d, exact %d: off by more than 1/128", q.name, q.got, q.want)
			}
		}
		if got.Max != ds[len(ds)-1] {
			t.Errorf("max %d, want exactly %d", got.Max, ds[len(ds)-1])
		}
	})
}

func TestAnomalyCap(t *testing.T) {
	b := &builder{}
	b.set(0, "n1", 100, 100)
	for i := range 50 {
		b.get(1+i, "n1", 0)
	}
	b.finals(100)
	r := Check(b.ops)
	lin := r.Checks.Linearizable
	if lin.AnomalyCount != 50 || len(anomaliesOf(r, "linearizable")) != maxAnomalies {
		t.Errorf("count %d, listed %d", lin.AnomalyCount, len(anomaliesOf(r, "linearizable")))
	}
	if s := summary(r); !strings.Contains(s, "and 47 more") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestMalformed(t *testing.T) {
	base := func() []histories.Op {
		b := validBase()
		b.finals(20, 20)
		return b.ops
	}
	cases := []struct {
		name   string
		mutate func([]histories.Op) []histories.Op
		want   string
	}{
		{"index gap", func(ops []histories.Op) []histories.Op { return append(ops[:3:3], ops[4:]...) }, "indices must be dense"},
		{"completion without invoke", func(ops []histories.Op) []histories.Op { return renumber(ops[1:]) }, "no pending invoke"},
		{"two invokes", func(ops []histories.Op) []histories.Op {
			return renumber(slices.Insert(ops, 1, ops[0]))
		}, "still pending"},
		{"set value not an integer", func(ops []histories.Op) []histories.Op {
			ops[0].Value = json.RawMessage(`"ten"`)
			return ops
		}, "not an integer"},
		{"get value not an integer", func(ops []histories.Op) []histories.Op {
			ops[3].Value = json.RawMessage(`1.5`)
			return ops
		}, "not an integer"},
		{"get value missing", func(ops []histories.Op) []histories.Op {
			ops[3].Value = nil
			return ops
		}, "not an integer"},
		{"ok set without current", func(ops []histories.Op) []histories.Op {
			ops[1].Current = nil
			return ops
		}, "no current"},
		{"time goes backwards", func(ops []histories.Op) []histories.Op {
			ops[5].Time = 0
			return ops
		}, "in the order they happened"},
		{"unknown f", func(ops []histories.Op) []histories.Op {
			ops[2].F, ops[3].F = "cas", "cas"
			return ops
		}, "unknown f"},
		{"mismatched f", func(ops []histories.Op) []histories.Op {
			ops[3].F = "final-get"
			return ops
		}, "does not match"},
		{"no node", func(ops []histories.Op) []histories.Op {
			ops[0].Node = ""
			return ops
		}, "names no node"},
		{"duplicate set value", func(ops []histories.Op) []histories.Op {
			ops[5].Value = histories.IntValue(10)
			ops[6].Value = histories.IntValue(10)
			return ops
		}, "unique"},
		{"bad type", func(ops []histories.Op) []histories.Op {
			ops[1].Type = "done"
			return ops
		}, "unknown type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops := tc.mutate(base())
			err := Validate(ops)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			r := Check(ops)
			if r.Valid != Unknown || len(r.Anomalies) != 1 || r.Anomalies[0].Check != "history" ||
				!strings.Contains(r.Anomalies[0].Message, tc.want) || len(r.Anomalies[0].Ops) != 1 {
				t.Errorf("Check:\n%s\n%+v", summary(r), r.Anomalies)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Error(err)
			}
			if _, err := WriteLinearHTML(ops, &bytes.Buffer{}); err == nil {
				t.Error("WriteLinearHTML accepted a malformed history")
			}
		})
	}
	if err := Validate(base()); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
}

func renumber(ops []histories.Op) []histories.Op {
	ops = slices.Clone(ops)
	for i := range ops {
		ops[i].Index = int64(i)
	}
	return ops
}

// TestTruncated cuts a realistic history at every point of its tail, as a
// crash of the harness would: no cut may panic or be judged invalid, and a
// cut before the final reads complete is unknown.
func TestTruncated(t *testing.T) {
	ops := clusterHistory(1, 4, 3, 400)
	if r := Check(ops); r.Valid != Valid {
		t.Fatalf("generated history judged %s:\n%s", r.Valid, summary(r))
	}
	firstFinal := slices.IndexFunc(ops, func(o histories.Op) bool { return o.F == histories.FFinalGet })
	for n := 0; n < len(ops); n++ {
		r := Check(ops[:n])
		switch {
		case n < firstFinal && r.Valid == Valid:
			t.Fatalf("cut at %d, before the final reads, judged valid", n)
		case r.Valid == Invalid && n < firstFinal:
			// Only a stub too short to hold an ok get and set is invalid.
			if len(anomaliesOf(r, "stats")) != len(r.Anomalies) {
				t.Fatalf("cut at %d judged invalid:\n%s", n, summary(r))
			}
		case r.Valid == Invalid:
			// A cut between two rounds of final reads looks like a harness
			// that gave up on convergence.
			if len(anomaliesOf(r, "convergence")) != len(r.Anomalies) || r.Checks.Stats.Pending != 0 {
				t.Fatalf("cut at %d judged invalid:\n%s", n, summary(r))
			}
		}
	}
	// A truncated line: the reader drops it, the rest is checked.
	var buf bytes.Buffer
	if err := histories.Encode(&buf, ops[:100]); err != nil {
		t.Fatal(err)
	}
	cut := buf.Bytes()[:buf.Len()-7]
	read, err := histories.Read(bytes.NewReader(cut))
	if err == nil || len(read) != 99 {
		t.Fatalf("read %d ops, %v", len(read), err)
	}
	if r := Check(read); r.Valid != Unknown {
		t.Errorf("truncated history judged:\n%s", summary(r))
	}
}

func TestGeneratedClusterHistories(t *testing.T) {
	for seed := range uint64(20) {
		ops := clusterHistory(seed, 10, 3, 2000)
		r := Check(ops)
		if r.Valid != Valid {
			t.Fatalf("seed %d: judged %s:\n%s", seed, r.Valid, summary(r))
		}
	}
}

func TestWriteSummary(t *testing.T) {
	b := &builder{}
	b.set(0, "n1", 5, 5)
	b.set(0, "n1", 10, 10)
	b.get(1, "n1", 5)
	b.finals(10)
	s := summary(Check(b.ops))
	for _, want := range []string{"checks: invalid", "linearizable  invalid", "thin-air      valid", "op 5", "expected: a value ≥ 10 on n1"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	s = summary(Check([]histories.Op{{Index: 3, Type: histories.Invoke, F: "get"}}))
	if !strings.Contains(s, "checks: unknown") || !strings.Contains(s, "history") {
		t.Errorf("summary:\n%s", s)
	}
}

// TestAppliedClaims: an ok set's "applied": true must raise the counter:
// its value must exceed what its server had acknowledged or shown before
// the set began, and 0.
func TestAppliedClaims(t *testing.T) {
	lie := func(mutate func(b *builder) int) Result {
		b := &builder{}
		i := mutate(b)
		b.finals(100)
		yes := true
		b.ops[i].Applied = &yes
		return Check(b.ops)
	}
	// A read of 50 completed, then a set of 40 claims to have applied (its
	// current is 50, so no read went down).
	r := lie(func(b *builder) int {
		b.set(0, "n1", 50, 50)
		b.get(1, "n1", 50)
		b.set(1, "n1", 40, 50)
		b.set(0, "n1", 100, 100)
		return 5
	})
	if a := expectOnly(t, r, "linearizable", 1, 4, 5); !strings.Contains(a.Message, `"applied": true`) {
		t.Errorf("message: %s", a.Message)
	}
	// A negative value can never raise a counter that starts at 0.
	r = lie(func(b *builder) int {
		b.set(0, "n1", -5, 0)
		b.set(0, "n1", 100, 100)
		return 1
	})
	if a := expectOnly(t, r, "linearizable", 1); !strings.Contains(a.Message, "starts at 0") {
		t.Errorf("message: %s", a.Message)
	}
	// A truthful claim: 60 was above everything completed before.
	b := &builder{}
	b.set(0, "n1", 50, 50)
	b.set(1, "n1", 60, 60)
	b.get(0, "n1", 60)
	b.finals(60)
	if r := Check(b.ops); r.Valid != Valid {
		t.Errorf("a truthful applied was judged:\n%s", summary(r))
	}
	// Concurrent with the op that raised the counter: no claim is refuted.
	b = &builder{}
	b.invoke(0, "set", "n1", 70)
	b.invoke(1, "set", "n1", 60)
	b.setOK(0, "n1", 70, 70)
	b.setOK(1, "n1", 60, 70)
	yes := true
	b.ops[3].Applied = &yes
	b.finals(70)
	if r := Check(b.ops); r.Checks.Linearizable.Valid != Valid {
		t.Errorf("a claim concurrent with the larger set was judged:\n%s", summary(r))
	}
}
