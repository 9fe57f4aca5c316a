package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec-counter/ec-counter/internal/atomicfile"
)

// stateFile is the name of the counter's file in the data directory; it
// holds the value in decimal followed by a newline.
const stateFile = "counter"

// errClosed is returned by durableCounter.set once the counter is closing.
var errClosed = errors.New("node is shutting down")

// durableCounter is the node's counter, kept in the data directory's state
// file. It keeps two values: pending, the largest value any set or merge
// asked for, and durable, the value on disk. Pending only rises (unless a
// deliberate bug lowers it), so it is never below durable. Readers only
// ever see durable, so a node killed and restarted never shows a lower
// value than it has shown before.
//
// One persister goroutine writes pending whenever it differs from durable:
// sets that arrive while a write is in progress are covered by the next one,
// so concurrent sets share an fsync (group commit).
type durableCounter struct {
	dir       string
	log       *slog.Logger
	bug       *bug                        // a deliberate bug; nil for the correct counter
	onDurable func(v int64, fromSet bool) // called by the persister when durable changed

	mu      sync.Mutex
	pending int64
	// pendingFromSet says whether a client's set, rather than a merge of
	// a peer's value, raised pending last.
	pendingFromSet bool
	durable        int64
	err            error         // last write error, nil after a success
	failed         int64         // the value whose write failed with err
	advanced       chan struct{} // closed and replaced after every write attempt
	closing        bool

	wake chan struct{} // capacity 1: pending may exceed durable
	quit chan struct{} // closed by close
	done chan struct{} // closed when the persister has exited

	writes atomic.Int64 // successful writes, for tests
}

// openCounter reads the counter in dir (0 if it has none), removes the
// temporary files of interrupted writes, and starts the persister.
// onDurable, if not nil, is called from the persister after each write
// (with whether a client's set raised the value written, not a merge),
// with the value written. b is a deliberate bug, or nil.
func openCounter(dir string, log *slog.Logger, b *bug, onDurable func(v int64, fromSet bool)) (*durableCounter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	v, err := readState(filepath.Join(dir, stateFile), b.readsEmptyAsZero())
	if err != nil {
		return nil, err
	}
	removeTemps(dir, log)
	// What a killed node left may be visible without being durable (a
	// rename whose directory was never fsynced): make it durable before
	// trusting it, or a later power loss would take back values this node
	// serves as durable.
	if !b.skipsFsync() { // no-fsync, no-dir-fsync
		if err := syncPaths(filepath.Join(dir, stateFile), dir); err != nil {
			return nil, fmt.Errorf("sync data directory: %w", err)
		}
	}
	if b.forgetsState() { // no-persist
		v = 0
	}
	s := &durableCounter{
		dir:       dir,
		log:       log,
		bug:       b,
		onDurable: onDurable,
		pending:   v,
		durable:   v,
		advanced:  make(chan struct{}),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go s.persist()
	return s, nil
}

// readState returns the value stored in path, or 0 if there is no such
// file (or, with emptyIsZero, an empty one: the no-fsync bug).
func readState(path string, emptyIsZero bool) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(b) == 0 && emptyIsZero {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	digits, ok := bytes.CutSuffix(b, []byte("\n"))
	v, err := strconv.ParseInt(string(digits), 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("corrupt state file %s (%d bytes, want a decimal int64 and a newline): refusing to start", path, len(b))
	}
	return v, nil
}

// writeState durably replaces the value in dir's state file, through
// atomicfile: a temporary file, fsynced, renamed over the state file, and
// the directory fsynced.
func writeState(dir string, v int64, b *bug) error {
	path, data := filepath.Join(dir, stateFile), append(strconv.AppendInt(nil, v, 10), '\n')
	if buggy, err := b.writesState(path, data); buggy { // no-fsync, no-dir-fsync
		return err
	}
	return atomicfile.WriteBytes(path, 0o644, data)
}

// removeTemps removes the temporary files of writes that a crash
// interrupted: atomicfile's ".counter-*.tmp", and "counter.tmp" of nodes
// before it. They never hold the state, since only the rename makes a write
// count, and no write is under way while the counter opens; left alone, one
// would pile up for every kill in the middle of a write.
func removeTemps(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("cannot look for leftover temporary files", "err", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if temp, _ := filepath.Match("."+stateFile+"-*.tmp", name); !temp && name != stateFile+".tmp" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			log.Warn("cannot remove a leftover temporary file", "err", err)
		}
	}
}

// get returns the value clients are shown: the durable one.
func (s *durableCounter) get() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shown()
}

// getDurable returns the durable value, the one gossip spreads.
func (s *durableCounter) getDurable() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// shown returns the value clients are shown, and that sets wait for: the
// durable one. s.mu must be held.
func (s *durableCounter) shown() int64 {
	if s.bug.showsPending() { // ack-before-durable
		return s.pending
	}
	return s.durable
}

// set raises the counter to v if v is larger, and returns once a value ≥ v
// is durable. It returns the durable value at that point, and whether this
// call raised the pending value. It fails if a write that would have made v
// durable failed, if ctx is done first, or if the counter is closing.
func (s *durableCounter) set(ctx context.Context, v int64) (value int64, applied bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return 0, false, errClosed
	}
	v = s.bug.narrowed(v) // int32
	// The counter after this set: v if v is larger, else unchanged.
	next := s.pending
	s.bug.raceWindow(&s.mu) // racy-set lets go of the lock here, so next may be stale
	if v > next || s.bug.acceptSmaller() {
		next, applied = v, true
	}
	if next != s.pending {
		s.pending, s.pendingFromSet = next, true
		s.signal()
	}
	for s.shown() < v {
		ch := s.advanced
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		case <-s.done:
		}
		s.mu.Lock()
		switch {
		case s.shown() >= v:
		case s.err != nil && s.failed >= v:
			return 0, applied, s.err
		case ctx.Err() != nil:
			return 0, applied, ctx.Err()
		case isClosed(s.done):
			return 0, applied, errClosed
		}
	}
	return s.shown(), applied, nil
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// merge raises the counter to v if v is larger, without waiting for it to
// become durable. It is how gossip delivers values.
func (s *durableCounter) merge(v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing && (v > s.pending || s.bug.mergeOverwrites()) {
		s.pending, s.pendingFromSet = v, false
		s.signal()
	}
}

// signal wakes the persister; s.mu must be held.
func (s *durableCounter) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close stops accepting sets, writes any pending value and stops the
// persister.
func (s *durableCounter) close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closing = true
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != s.durable {
		return fmt.Errorf("final flush of %d: %w", s.pending, s.err)
	}
	return nil
}

// persist is the persister goroutine. After a failed write it retries with
// exponential backoff; pending values are kept meanwhile.
func (s *durableCounter) persist() {
	defer close(s.done)
	const minRetry, maxRetry = 50 * time.Millisecond, 2 * time.Second
	retry := minRetry
	for {
		select {
		case <-s.wake:
			s.bug.lazyFlush(s.quit) // ack-before-durable writes every 2 s
		case <-s.quit:
			// Final flush: a few attempts, then give up.
			for range 3 {
				if s.flush() {
					return
				}
				time.Sleep(minRetry)
			}
			return
		}
		if s.flush() {
			retry = minRetry
			continue
		}
		select {
		case <-time.After(retry):
		case <-s.quit:
		}
		retry = min(2*retry, maxRetry)
		s.mu.Lock()
		s.signal()
		s.mu.Unlock()
	}
}

// flush writes the pending value if it differs from the durable one (it
// can only be larger, unless a bug lowered it), and reports whether the
// durable value now is what was pending.
func (s *durableCounter) flush() bool {
	s.mu.Lock()
	v, fromSet := s.pending, s.pendingFromSet
	if v == s.durable {
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()

	err := writeState(s.dir, v, s.bug)

	s.mu.Lock()
	s.err = err
	s.failed = v
	if err == nil {
		s.writes.Add(1)
		s.durable = v // only the persister changes durable, so v is the newest value written
	}
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.mu.Unlock()

	if err != nil {
		s.log.Error("cannot persist counter", "value", v, "err", err)
		return false
	}
	if s.onDurable != nil {
		s.onDurable(v, fromSet)
	}
	return true
}

// syncPaths fsyncs each existing file or directory of paths.
func syncPaths(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
