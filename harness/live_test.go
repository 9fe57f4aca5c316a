package harness

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

func TestLiveLineFaultsInForce(t *testing.T) {
	l := &liveLine{faults: map[string]bool{}, tally: &opTally{}}
	steps := []struct{ f, want string }{
		{"start-partition", "partition"},
		{"pause", "partition, pause"},
		{"kill", "kill, partition, pause"},
		{"stop-partition", "kill, pause"},
		{"restart", "pause"},
		{"resume", "none"},
		{"crash", "crash"},
		{"restart", "none"},
	}
	for _, s := range steps {
		l.nemesisOp(s.f)
		if got := l.inForce(); got != s.want {
			t.Fatalf("after %s: faults in force %q, want %q", s.f, got, s.want)
		}
	}
}

func TestLiveLineText(t *testing.T) {
	tally := &opTally{}
	for _, typ := range []histories.Type{histories.OK, histories.OK, histories.Fail, histories.Info, histories.Invoke} {
		tally.add(typ)
	}
	l := &liveLine{faults: map[string]bool{"link": true}, tally: tally, expected: 10 * time.Second}
	got := l.text(1500 * time.Millisecond)
	want := "   1.5s / ~10s  4 ops: 2 ok, 1 fail, 1 info  faults: link"
	if got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
}

// The line is drawn in place, erased by a phase line, and erased when the
// run ends, after which it is never drawn again.
func TestLiveLineDrawsAndErases(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	l := startLive(&buf, &mu, time.Now(), time.Second, &opTally{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		drawn := strings.Contains(buf.String(), "ops:")
		mu.Unlock()
		if drawn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no live line drawn in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.close()
	l.close() // idempotent
	out := buf.String()
	if !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("the line is not erased when the run ends: %q", out)
	}
	n := len(out)
	time.Sleep(2 * liveInterval)
	if buf.Len() != n {
		t.Errorf("drawn after close: %q", buf.String()[n:])
	}
}
