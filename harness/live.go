package harness

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

// liveInterval is how often the live line is drawn: a few times a second.
const liveInterval = 250 * time.Millisecond

// opTally counts the clients' completed ops by type, for the live line.
type opTally struct {
	ok, fail, info atomic.Int64
}

// add counts one completion.
func (t *opTally) add(typ histories.Type) {
	switch typ {
	case histories.OK:
		t.ok.Add(1)
	case histories.Fail:
		t.fail.Add(1)
	case histories.Info:
		t.info.Add(1)
	}
}

// liveLine draws one line of a run's progress on a terminal, redrawn in
// place a few times a second: elapsed and expected time, ops done so far
// by outcome, and the faults in force. The runner's phase lines pass it by:
// each erases the live line before it is printed, and the next draw puts it
// back under it. It never reaches the run's harness.log.
type liveLine struct {
	w        io.Writer
	mu       *sync.Mutex // the runner's output lock
	start    time.Time
	expected time.Duration
	tally    *opTally

	faultsMu sync.Mutex
	faults   map[string]bool // the kinds in force

	shown bool // a line is on the screen (guarded by mu)
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// startLive starts drawing on w, a terminal, until stop.
func startLive(w io.Writer, mu *sync.Mutex, start time.Time, expected time.Duration, tally *opTally) *liveLine {
	l := &liveLine{w: w, mu: mu, start: start, expected: expected, tally: tally,
		faults: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(liveInterval)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				l.mu.Lock()
				l.draw()
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// draw writes the line over the last one; the caller holds mu.
func (l *liveLine) draw() {
	fmt.Fprintf(l.w, "\r%s\033[K", l.text(time.Since(l.start)))
	l.shown = true
}

// text is the line's content at elapsed.
func (l *liveLine) text(elapsed time.Duration) string {
	ok, fail, info := l.tally.ok.Load(), l.tally.fail.Load(), l.tally.info.Load()
	return fmt.Sprintf("%7s / ~%s  %d ops: %d ok, %d fail, %d info  faults: %s",
		elapsed.Round(100*time.Millisecond), l.expected.Round(time.Second), ok+fail+info, ok, fail, info, l.inForce())
}

// erase removes the line, if it is shown, so that a phase line can take
// its place; the caller holds mu.
func (l *liveLine) erase() {
	if l != nil && l.shown {
		io.WriteString(l.w, "\r\033[K")
		l.shown = false
	}
}

// close stops drawing and erases the line; later calls do nothing.
func (l *liveLine) close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		l.erase()
		l.mu.Unlock()
	})
}

// nemesisOp notes a nemesis op f in the faults in force: start-X until stop-X, kill and crash until restart,
// pause until resume.
func (l *liveLine) nemesisOp(f string) {
	if l == nil {
		return
	}
	l.faultsMu.Lock()
	defer l.faultsMu.Unlock()
	switch {
	case strings.HasPrefix(f, "start-"):
		l.faults[strings.TrimPrefix(f, "start-")] = true
	case strings.HasPrefix(f, "stop-"):
		delete(l.faults, strings.TrimPrefix(f, "stop-"))
	case f == "kill", f == "crash", f == "pause":
		l.faults[f] = true
	case f == "restart":
		delete(l.faults, "kill")
		delete(l.faults, "crash")
	case f == "resume":
		delete(l.faults, "pause")
	}
}

// inForce lists the faults in force, or "none".
func (l *liveLine) inForce() string {
	l.faultsMu.Lock()
	defer l.faultsMu.Unlock()
	if len(l.faults) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(l.faults))
	for k := range l.faults {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ", ")
}
