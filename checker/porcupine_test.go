package checker

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/ec-counter/ec-counter/histories"
)

// TestSweepAgreesWithPorcupine checks thousands of random small histories of
// one server with both the sweep and porcupine, which must agree on every
// one, and makes sure both verdicts are common.
func TestSweepAgreesWithPorcupine(t *testing.T) {
	t.Run("small", func(t *testing.T) { agree(t, 5000, 8) })
	if !testing.Short() {
		t.Run("larger", func(t *testing.T) { agree(t, 1000, 30) })
	}
}

func agree(t *testing.T, runs, maxOps int) {
	rng := rand.New(rand.NewPCG(7, uint64(maxOps)))
	var linearizable, not int
	for i := range runs {
		ops := serverHistory(rng, i%3 == 0, maxOps)
		if err := Validate(ops); err != nil {
			t.Fatalf("history %d is malformed: %v\n%s", i, err, dump(ops))
		}
		sweepSays := Check(ops).Checks.Linearizable.Valid
		res, _, err := CheckServerPorcupine(ops, "n1", 0)
		if err != nil {
			t.Fatalf("history %d: %v", i, err)
		}
		if (sweepSays == Valid) != (res == porcupine.Ok) {
			t.Fatalf("history %d: the sweep says %s, porcupine says %s:\n%s", i, sweepSays, res, dump(ops))
		}
		if res == porcupine.Ok {
			linearizable++
		} else {
			not++
		}
	}
	t.Logf("%d linearizable, %d not", linearizable, not)
	if linearizable < runs/5 || not < runs/5 {
		t.Errorf("the generator is lopsided: %d linearizable, %d not, of %d", linearizable, not, runs)
	}
}

func dump(ops []histories.Op) string {
	var b bytes.Buffer
	if err := histories.Encode(&b, ops); err != nil {
		return err.Error()
	}
	return b.String()
}

func TestPorcupineModel(t *testing.T) {
	m := maxRegister()
	for _, tc := range []struct {
		state int64
		in    pInput
		out   int64
		legal bool
	}{
		{0, pInput{}, 0, true},
		{5, pInput{}, 7, true}, // gossip raised it
		{5, pInput{}, 4, false},
		{5, pInput{set: true, arg: 3}, 5, true},
		{5, pInput{set: true, arg: 9}, 9, true},
		{5, pInput{set: true, arg: 9}, 12, true},
		{5, pInput{set: true, arg: 9}, 8, false},
		{10, pInput{set: true, arg: 3}, 9, false},
	} {
		ok, next := m.Step(tc.state, tc.in, tc.out)
		if ok != tc.legal || (ok && next.(int64) != tc.out) {
			t.Errorf("step(%d, %+v, %d) = %v, %v", tc.state, tc.in, tc.out, ok, next)
		}
	}
}

func TestCheckServerPorcupine(t *testing.T) {
	b := &builder{}
	b.set(0, "n1", 5, 5)
	b.invoke(1, "set", "n1", 10)
	b.end(1, histories.Info, "set", "n1") // never bounds anything
	b.get(0, "n1", 5)
	b.get(2, "n2", 10)
	b.get(2, "n2", 7)
	if res, _, err := CheckServerPorcupine(b.ops, "n1", 0); err != nil || res != porcupine.Ok {
		t.Errorf("n1: %v, %v", res, err)
	}
	if res, _, err := CheckServerPorcupine(b.ops, "n2", 0); err != nil || res != porcupine.Illegal {
		t.Errorf("n2: %v, %v", res, err)
	}
	if _, _, err := CheckServerPorcupine(b.ops, "n9", 0); err == nil {
		t.Error("no error for an unknown node")
	}
}

func TestWriteLinearHTML(t *testing.T) {
	// A long valid prefix, then a violation on n2 whose cause lies far back.
	b := &builder{}
	b.set(0, "n2", 1_000_000, 1_000_000) // ops 0, 1
	for i := range 100 {
		b.set(1, "n1", int64(i+1), int64(i+1))
		b.get(2, "n2", 1_000_000)
	}
	bad := b.get(3, "n2", 50)
	b.finals(1_000_000, 1_000_000)
	var out bytes.Buffer
	found, err := WriteLinearHTML(b.ops, &out)
	if err != nil || !found {
		t.Fatalf("WriteLinearHTML = %v, %v", found, err)
	}
	html := out.String()
	inv := strconv.Itoa(bad - 1)
	for _, want := range []string{"<html", "get → 50", "set 1000000 → 1000000",
		"get, ops " + inv + "→" + strconv.Itoa(bad) + ", process 3 on n2", "op " + strconv.Itoa(bad) + ": 50 \\u003c 1000000"} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "set 1 → 1") {
		t.Error("the window shows ops of another server")
	}
	if strings.Count(html, "get → 1000000") > 2*htmlWindow+2 {
		t.Errorf("the window is not small: %d gets", strings.Count(html, "get → 1000000"))
	}

	ok := validBase()
	ok.finals(20, 20)
	out.Reset()
	if found, err := WriteLinearHTML(ok.ops, &out); found || err != nil || out.Len() != 0 {
		t.Errorf("valid history: %v, %v, %d bytes", found, err, out.Len())
	}
}
