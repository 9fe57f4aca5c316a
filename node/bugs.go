package node

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Deliberate bugs, switched on by Config.Bug, let the harness show that its
// checkers catch realistic implementation mistakes. Each bug changes the
// server at one seam: the correct code calls a hook of *bug there, and every
// hook is a no-op (or returns the correct answer) on a nil *bug, which is
// what a node without a bug has.
const (
	bugAcceptSmaller    = "accept-smaller"
	bugRacySet          = "racy-set"
	bugNoGossip         = "no-gossip"
	bugMergeOverwrite   = "merge-overwrite"
	bugAckBeforeDurable = "ack-before-durable"
	bugNoPersist        = "no-persist"
	bugNoRejoin         = "no-rejoin"
	bugStaleRead        = "stale-read"
	bugThinAir          = "thin-air"
	bugInt32            = "int32"
	bugFloatJSON        = "float-json"
	bugNoFsync          = "no-fsync"
	bugNoDirFsync       = "no-dir-fsync"
)

// Tuning of the bugs: chosen so that each one shows within seconds at the
// harness's usual load (10–40 requests per second per client).
const (
	acceptSmallerOdds = 4                      // accept-smaller applies 1 in this many rejected sets
	racyWindowMin     = 20 * time.Millisecond  // racy-set's gap between compare and set ...
	racyWindowMax     = 80 * time.Millisecond  // ... drawn uniformly from [min, max)
	lazyFlushInterval = 2 * time.Second        // ack-before-durable writes at most this often
	staleMin          = 300 * time.Millisecond // stale-read refreshes its cache after ...
	staleMax          = 500 * time.Millisecond // ... a delay drawn uniformly from [min, max)
	thinAirOdds       = 20                     // thin-air invents 1 in this many reads
)

// BugInfo describes one deliberate bug a node can run with.
type BugInfo struct {
	Name        string // the value of Config.Bug and of --bug
	Description string // what goes wrong, in one line
}

// Bugs returns the deliberate bugs a node can be started with (Config.Bug,
// "ec-counter node --bug NAME"), in a stable order. Each is a realistic
// implementation mistake that the harness's checkers must catch.
func Bugs() []BugInfo {
	return []BugInfo{
		{bugAcceptSmaller, "now and then (1 in 4 rejected sets) applies a set that is not larger: the value goes down, reported applied"},
		{bugRacySet, "compare and set are not atomic: a set reads, waits 20-80 ms unlocked, then writes max(read, value), overwriting larger concurrent sets and merges"},
		{bugNoGossip, "never synchronises with peers (no broadcasts, no push/pull state, received state ignored) but stays a member"},
		{bugMergeOverwrite, "a gossip merge takes the peer's value instead of the max"},
		{bugAckBeforeDurable, "acknowledges and serves a set before it is on disk, writing lazily every 2 s: a kill loses acknowledged values"},
		{bugNoPersist, "forgets its value on restart: the state file is written but never read back"},
		{bugNoRejoin, "never re-joins peers once the cluster has formed: a partition outlasting dead-node reaping never heals"},
		{bugStaleRead, "serves reads from a cache refreshed every 300-500 ms; sets are correct"},
		{bugThinAir, "now and then (1 in 20 reads) answers a read with the counter plus one, a value nobody wrote"},
		{bugInt32, "keeps the counter in 32 bits: a set above 2^31-1 wraps around (2^31 becomes -2^31)"},
		{bugFloatJSON, "decodes set values through float64, as JavaScript does: above 2^53 odd values round to even ones, near 2^63 they saturate"},
		{bugNoFsync, "writes and renames its state file without fsyncing it (the directory is fsynced), and reads an empty state file as 0: a kill loses nothing, a power loss (crash) loses the value"},
		{bugNoDirFsync, "fsyncs its state file but not the directory after the rename: a kill loses nothing, a power loss (crash) brings back an older file"},
	}
}

// ValidateBug reports whether name is a bug of Bugs; the error lists the
// valid names. The empty name, no bug, is valid.
func ValidateBug(name string) error {
	if name == "" {
		return nil
	}
	var names []string
	for _, b := range Bugs() {
		if b.Name == name {
			return nil
		}
		names = append(names, b.Name)
	}
	return fmt.Errorf("unknown bug %q; valid bugs: %s", name, strings.Join(names, ", "))
}

// describeBug returns the description of a valid bug name.
func describeBug(name string) string {
	for _, b := range Bugs() {
		if b.Name == name {
			return b.Description
		}
	}
	return ""
}

// bug is the deliberate bug a node runs with; nil means none. Its hooks are
// safe for concurrent use.
type bug struct {
	name string

	mu  sync.Mutex
	rng *rand.Rand // the bug's own randomness, never the global source

	// stale-read's cache of the counter.
	cached  int64
	expires time.Time
}

// newBug returns the bug called name, or nil for "". The name must be valid.
func newBug(name string) *bug {
	if name == "" {
		return nil
	}
	seed := uint64(time.Now().UnixNano())
	return &bug{name: name, rng: rand.New(rand.NewPCG(seed, seed>>32|1))}
}

// is reports whether b is the bug called name.
func (b *bug) is(name string) bool { return b != nil && b.name == name }

// oneIn reports true with probability 1/n.
func (b *bug) oneIn(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rng.IntN(n) == 0
}

// between draws a duration uniformly from [lo, hi).
func (b *bug) between(lo, hi time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return lo + time.Duration(b.rng.Int64N(int64(hi-lo)))
}

// acceptSmaller is asked by durableCounter.set about a set that is not
// larger than the counter: accept-smaller applies 1 in acceptSmallerOdds of
// them.
func (b *bug) acceptSmaller() bool {
	return b.is(bugAcceptSmaller) && b.oneIn(acceptSmallerOdds)
}

// raceWindow is called by durableCounter.set, with mu held, between reading
// the counter and writing the counter it decided on, max(read, v). With
// racy-set it lets go of mu for a while, as if the set did slow work outside
// the lock, so that the value it read may be stale by the time it writes:
// a larger value set or merged meanwhile is overwritten, even by a set that
// did not apply.
func (b *bug) raceWindow(mu *sync.Mutex) {
	if !b.is(bugRacySet) {
		return
	}
	d := b.between(racyWindowMin, racyWindowMax)
	mu.Unlock()
	time.Sleep(d)
	mu.Lock()
}

// mergeOverwrites tells durableCounter.merge to take a gossiped value even
// when it is smaller: merge-overwrite.
func (b *bug) mergeOverwrites() bool { return b.is(bugMergeOverwrite) }

// showsPending tells the counter to show clients, and acknowledge sets with,
// the value it has not written yet: ack-before-durable.
func (b *bug) showsPending() bool { return b.is(bugAckBeforeDurable) }

// lazyFlush is called by the persister before each write. With
// ack-before-durable it batches writes, waiting lazyFlushInterval (or until
// quit is closed).
func (b *bug) lazyFlush(quit <-chan struct{}) {
	if !b.is(bugAckBeforeDurable) {
		return
	}
	t := time.NewTimer(lazyFlushInterval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-quit:
	}
}

// writesState writes the state file the way the bug's author would, and
// reports whether it did: no-fsync and no-dir-fsync each leave out one of
// the fsyncs of writeState. Nodes without these bugs return false and write
// through writeState.
func (b *bug) writesState(path string, data []byte) (bool, error) {
	if !b.is(bugNoFsync) && !b.is(bugNoDirFsync) {
		return false, nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return true, fmt.Errorf("write state: %w", err)
	}
	_, err = f.Write(data)
	if err == nil && !b.is(bugNoFsync) {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && !b.is(bugNoDirFsync) {
		var d *os.File
		if d, err = os.Open(filepath.Dir(path)); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return true, fmt.Errorf("write state: %w", err)
	}
	return true, nil
}

// skipsFsync tells openCounter not to make what it finds durable, as the
// authors of no-fsync and no-dir-fsync would not.
func (b *bug) skipsFsync() bool { return b.is(bugNoFsync) || b.is(bugNoDirFsync) }

// readsEmptyAsZero tells readState to take an empty state file for 0, as a
// lenient parser would, instead of refusing it as corrupt: no-fsync.
func (b *bug) readsEmptyAsZero() bool { return b.is(bugNoFsync) }

// forgetsState tells openCounter to ignore the state file: no-persist.
func (b *bug) forgetsState() bool { return b.is(bugNoPersist) }

// leavesGossipOut tells memberlistConfig not to plug the counter into
// memberlist, which then only keeps membership: no-gossip.
func (b *bug) leavesGossipOut() bool { return b.is(bugNoGossip) }

// stopsRejoining is asked by the rejoin loop after each round, with
// whether every configured peer is a member: no-rejoin stops the loop once
// they all are, that is, once the cluster has formed.
func (b *bug) stopsRejoining(allJoined bool) bool { return allJoined && b.is(bugNoRejoin) }

// served returns what GET /v1/counter answers when the counter is v: v,
// except that stale-read answers from a cache refreshed every 300-500 ms,
// and thin-air now and then answers v+1, which nobody wrote.
func (b *bug) served(v int64) int64 {
	switch {
	case b.is(bugStaleRead):
		b.mu.Lock()
		defer b.mu.Unlock()
		if now := time.Now(); !now.Before(b.expires) {
			b.cached = v
			b.expires = now.Add(staleMin + time.Duration(b.rng.Int64N(int64(staleMax-staleMin))))
		}
		return b.cached
	case b.is(bugThinAir) && b.oneIn(thinAirOdds):
		if v == math.MaxInt64 {
			return v - 1
		}
		return v + 1
	}
	return v
}

// narrowed is what durableCounter.set keeps of a set's value v: v, except
// that int32 keeps its low 32 bits, as a counter declared int32 would.
func (b *bug) narrowed(v int64) int64 {
	if b.is(bugInt32) {
		return int64(int32(v))
	}
	return v
}

// decoded is what the HTTP API makes of a set's value v read from JSON: v,
// except that float-json goes through float64, which holds integers exactly
// only up to 2^53, saturating where the float does not fit an int64.
func (b *bug) decoded(v int64) int64 {
	if !b.is(bugFloatJSON) {
		return v
	}
	f := float64(v)
	switch {
	case f >= math.MaxInt64: // 2^63: no int64 holds it
		return math.MaxInt64
	case f < math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
