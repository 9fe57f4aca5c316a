package checker

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/histories"
)

// TestThinAirAtTheSameTime: a set invoked after a read completed in the
// history's order, but at the same nanosecond, overlaps it (intervals are
// closed), so the streaming check must hold its judgement until time moves
// on; one nanosecond later it is an anomaly.
func TestThinAirAtTheSameTime(t *testing.T) {
	for _, tc := range []struct {
		gap     int64
		anomaly bool
	}{{0, false}, {1, true}} {
		b := validBase()
		b.invoke(2, histories.FGet, "n2")
		read := b.read(2, histories.FGet, "n2", 30)
		set := b.invoke(3, histories.FSet, "n1", 30)
		b.ops[set].Time = b.ops[read].Time + tc.gap
		b.setOK(3, "n1", 30, 30)
		b.finals(30, 30)
		r := Check(b.ops)
		if got := r.Checks.ThinAir.Valid == Invalid; got != tc.anomaly {
			t.Errorf("set %d ns after the read: thin-air %s, want an anomaly: %v\n%s", tc.gap, r.Checks.ThinAir.Valid, tc.anomaly, summary(r))
		}
		if tc.anomaly && !strings.Contains(r.Anomalies[0].Message, "only invoked later") {
			t.Errorf("message: %s", r.Anomalies[0].Message)
		}
	}
}

// TestManyLostWrites: with more lost writes than the list holds, all are
// counted, and the list holds the largest, in history order.
func TestManyLostWrites(t *testing.T) {
	b := &builder{}
	b.set(0, "n1", 5, 5)
	for v := int64(10); v < 10+maxLostWrites+50; v++ {
		b.set(1, "n2", v, v)
	}
	b.finals(5, 5)
	r := Check(b.ops)
	c := r.Checks.Convergence
	if c.LostWriteCount != maxLostWrites+50 || len(c.LostWrites) != maxLostWrites {
		t.Fatalf("lost %d, listed %d; want %d and %d", c.LostWriteCount, len(c.LostWrites), maxLostWrites+50, maxLostWrites)
	}
	for i, op := range c.LostWrites {
		v, _ := (&histories.Op{Value: op.Value}).Int()
		if want := int64(10 + 50 + i); v != want {
			t.Fatalf("lost write %d is %d, want %d (the largest, in order)", i, v, want)
		}
	}
	if c.AnomalyCount != maxLostWrites+50 {
		t.Errorf("anomaly count %d", c.AnomalyCount)
	}
	if !strings.Contains(c.Explanation, "150 acknowledged writes lost") {
		t.Errorf("explanation: %s", c.Explanation)
	}
}

// TestAboveCounted: reads that saw more than the cluster converged to are
// counted exactly, whether their value was a set's, came from nowhere, or
// was an ok set's current above its own value.
func TestAboveCounted(t *testing.T) {
	b := &builder{}
	b.set(0, "n1", 50, 50)
	b.set(1, "n2", 5, 5)
	for range 3 {
		b.get(2, "n1", 50)
	}
	b.get(2, "n1", 77)    // thin air, and above
	b.set(3, "n1", 4, 50) // current above the converged value, its own value not
	b.finals(5, 5)
	r := Check(b.ops)
	c := r.Checks.Convergence
	if c.LostWriteCount != 1 {
		t.Errorf("lost writes %d, want 1", c.LostWriteCount)
	}
	if !strings.Contains(c.Explanation, "5 reads had seen more") {
		t.Errorf("explanation: %s", c.Explanation)
	}
}

// TestCheckHistoryStreams: CheckHistory of a file gives Check's result on
// the ops read, also when the last line was cut short, and tells the
// truncation apart.
func TestCheckHistoryStreams(t *testing.T) {
	ops := clusterHistory(5, 6, 3, 5000)
	var buf bytes.Buffer
	if err := histories.Encode(&buf, ops); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	k, err := CheckHistory(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(Check(ops))
	got, _ := json.Marshal(k.Result())
	if !bytes.Equal(got, want) {
		t.Fatalf("CheckHistory and Check differ:\n%s\n%s", got, want)
	}
	if again, _ := json.Marshal(k.Result()); !bytes.Equal(again, got) {
		t.Error("Result changed when asked twice")
	}
	cut := full[:len(full)-20]
	k, err = CheckHistory(bytes.NewReader(cut))
	if !errors.Is(err, histories.ErrTruncated) {
		t.Fatalf("error %v, want a truncation", err)
	}
	if n := k.Result().Checks.Stats.Ops; n != len(ops)-1 {
		t.Errorf("checked %d ops, want %d", n, len(ops)-1)
	}
}
