package harness

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/nemesis"
)

// TestShortenWindows: while the case fails, each fault window is halved up
// to three times, the steps stay in time order, and a window whose halving
// stops failing keeps its last failing length.
func TestShortenWindows(t *testing.T) {
	steps, err := nemesis.ParseSchedule(strings.NewReader("1s kill n1\n2.5s pause n2\n5s restart n1\n6s resume n2\n"), nodeNames(3), 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &shrinker{out: io.Discard, best: shrinkCase{steps: steps, nodes: 3}}
	tried := 0
	err = s.shortenWindows(t.Context(), func(c shrinkCase) (bool, error) {
		tried++
		for i := 1; i < len(c.steps); i++ {
			if c.steps[i].At < c.steps[i-1].At {
				t.Fatalf("steps out of order:\n%s", nemesis.Schedule(c.steps))
			}
		}
		// The pause must last at least 2s to fail: halving its 3.5s fails.
		for i, st := range c.steps {
			if st.Action == nemesis.FPause {
				if end := windowEnd(c.steps, i); c.steps[end].At-st.At < 2*time.Second {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := nemesis.Schedule(s.best.steps).String()
	want := "1s        kill             n1\n1.5s      restart          n1\n2.5s      pause            n2\n6s        resume           n2\n"
	if got != want {
		t.Errorf("shortened to\n%s\nwant\n%s", got, want)
	}
	if tried != 4 {
		t.Errorf("%d candidates tried, want 4 (3 for the kill, 1 for the pause)", tried)
	}
}

// TestGate: a closed gate holds waiters until it opens, and lets a waiter
// go when its context ends; an open gate does not wait.
func TestGate(t *testing.T) {
	var g gate
	if err := g.wait(t.Context()); err != nil {
		t.Fatalf("open gate: %v", err)
	}
	g.close()
	done := make(chan error)
	go func() { done <- g.wait(t.Context()) }()
	select {
	case err := <-done:
		t.Fatalf("a closed gate let a waiter through: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	if err := <-done; err != nil {
		t.Fatalf("after open: %v", err)
	}
	g.close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := g.wait(ctx); err == nil {
		t.Fatal("a cancelled wait on a closed gate returned nil")
	}
	g.open()
	g.open() // twice is harmless
}
