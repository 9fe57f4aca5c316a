package node

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// withBug switches a deliberate bug on in every node.
func withBug(name string) clusterOption {
	return func(i int, c *Config) { c.Bug = name }
}

func TestBugsAreListedAndValidated(t *testing.T) {
	t.Parallel()
	bugs := Bugs()
	var names []string
	for _, b := range bugs {
		if b.Name == "" || b.Description == "" || strings.ContainsAny(b.Name, " \t\n") {
			t.Errorf("bad bug entry %+v", b)
		}
		if err := ValidateBug(b.Name); err != nil {
			t.Errorf("ValidateBug(%q): %v", b.Name, err)
		}
		names = append(names, b.Name)
	}
	if len(bugs) != 13 || len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("want 13 bugs with unique names, got %q", names)
	}
	if err := ValidateBug(""); err != nil {
		t.Errorf("no bug: %v", err)
	}
	// Bugs hands out a copy.
	bugs[0].Name = "changed"
	if Bugs()[0].Name == "changed" {
		t.Error("Bugs returns shared state")
	}

	err := ValidateBug("accept-larger")
	if err == nil {
		t.Fatal("unknown bug accepted")
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %s", err, n)
		}
	}
	cfg := Config{Name: "n1", HTTPAddr: "127.0.0.1:0", GossipAddr: "127.3.4.5:7946", DataDir: t.TempDir(), Bug: "nope"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `unknown bug "nope"`) {
		t.Errorf("Validate with an unknown bug: %v", err)
	}
	if s, err := Start(cfg); err == nil {
		s.Close()
		t.Error("Start accepted an unknown bug")
	}
	cfg.Bug = "thin-air"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with a known bug: %v", err)
	}
}

func TestBugAcceptSmaller(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugAcceptSmaller)).nodes[0]
	set(t, s, 1000)
	for v := int64(1); ; v++ {
		if v > 100 { // (3/4)^100: never, unless the bug is off
			t.Fatal("100 smaller sets, none applied")
		}
		if _, applied := set(t, s, v); applied {
			t.Logf("set %d applied over 1000", v)
			waitFor(t, 5*time.Second, "the value to go down", func() bool { return get(t, s) == v })
			return
		}
	}
}

func TestBugRacySet(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugRacySet)).nodes[0]
	// Two concurrent sets that both raise the counter: whichever writes
	// last wins, also when it is the smaller one.
	for trial := range 30 {
		base := int64(100 * (trial + 1))
		set(t, s, base)
		var (
			wg    sync.WaitGroup
			acked [2]bool
		)
		for i, v := range []int64{base + 10, base + 20} {
			wg.Go(func() {
				_, err := trySet(s, v, time.Second)
				acked[i] = err == nil
			})
		}
		wg.Wait()
		if !acked[1] {
			continue // lost before it was acknowledged: its set timed out
		}
		// Let the persister write the racing sets' outcome.
		deadline := time.Now().Add(300 * time.Millisecond)
		for time.Now().Before(deadline) {
			if v := get(t, s); v < base+20 {
				t.Logf("trial %d: %d acknowledged, then the counter went back to %d", trial, base+20, v)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatal("no concurrent set was ever lost")
}

func TestBugNoGossip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", bugNoGossip} {
		t.Run("bug="+name, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, 2, withBug(name))
			n1, n2 := c.nodes[0], c.nodes[1]
			both := []string{"n1", "n2"}
			waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, both, n1, n2) })
			set(t, n1, 5)
			if name == "" {
				waitFor(t, 2*time.Second, "5 on n2", func() bool { return get(t, n2) == 5 })
				return
			}
			// Several push/pull intervals: the peer never learns the value,
			// although both stay members.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				if v := get(t, n2); v != 0 {
					t.Fatalf("n2 learned %d without gossip", v)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !allSee(t, both, n1, n2) {
				t.Error("nodes without gossip left the membership")
			}
		})
	}
}

func TestBugMergeOverwrite(t *testing.T) {
	t.Parallel()
	st := openTestCounter(t, t.TempDir())
	st.bug = newBug(bugMergeOverwrite)
	defer st.close()
	if _, _, err := st.set(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	st.merge(3)
	waitFor(t, 5*time.Second, "a merge of 3 to lower 10", func() bool { return st.get() == 3 })
}

func TestBugMergeOverwriteCluster(t *testing.T) {
	t.Parallel()
	const token = "merge-token"
	c := startCluster(t, 2, withToken(t, token), withBug(bugMergeOverwrite))
	n1, n2 := c.nodes[0], c.nodes[1]
	waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, []string{"n1", "n2"}, n1, n2) })
	// n2 stops hearing n1 (a one-way partition), so n1's larger value never
	// reaches it: n2 keeps its smaller one and keeps gossiping it to n1,
	// which, with the bug, takes it. No race decides the outcome.
	c.putFaults(n2, token, fmt.Sprintf(`{"links": {%q: {"in": {"drop": true}}}}`, c.gossi[0]))
	set(t, n2, 90)
	waitFor(t, 10*time.Second, "n1 to learn 90", func() bool { return get(t, n1) == 90 })
	// With the bug, a merge of 90 landing between n1's set and its write
	// lowers the value the set waits for, which then never comes: such a set
	// is never acknowledged, so try again with a larger value.
	var acked int64
	for v := int64(100); v < 110 && acked == 0; v++ {
		if got, err := trySet(n1, v, 3*time.Second); err == nil && got >= v {
			acked = v
		}
	}
	if acked == 0 {
		t.Fatal("n1 acknowledged none of 10 sets")
	}
	took := waitFor(t, 10*time.Second, "n1 to take n2's smaller value", func() bool { return get(t, n1) < acked })
	t.Logf("n1 acknowledged %d, then took %d from n2 after %v", acked, get(t, n1), took)
}

func TestBugAckBeforeDurable(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, withBug(bugAckBeforeDurable))
	s := c.nodes[0]
	dir := filepath.Join(c.root, "n1")
	set(t, s, 3)
	waitFor(t, 5*time.Second, "the lazy flush of 3", func() bool { return readStateOrFail(t, dir) == 3 })
	if v, applied := set(t, s, 7); v != 7 || !applied {
		t.Fatalf("set 7: value %d applied %v", v, applied)
	}
	if v := get(t, s); v != 7 {
		t.Fatalf("get after set 7: %d", v)
	}
	// Acknowledged and served, but not on disk: a node killed now and
	// restarted would come back with 3.
	if v := readStateOrFail(t, dir); v != 3 {
		t.Fatalf("on disk right after the acknowledgement: %d, want 3 (not yet written)", v)
	}
	waitFor(t, 5*time.Second, "the lazy flush of 7", func() bool { return readStateOrFail(t, dir) == 7 })
}

// TestBugsSkippingFsync: no-fsync and no-dir-fsync write the same state
// file as the correct node (what they leave out shows only after a power
// loss, which the harness's crash fault brings), and no-fsync reads the
// empty file such a loss leaves as 0 where the correct node refuses it.
func TestBugsSkippingFsync(t *testing.T) {
	for _, name := range []string{bugNoFsync, bugNoDirFsync, ""} {
		dir := t.TempDir()
		var b *bug
		if name != "" {
			b = newBug(name)
		}
		if err := writeState(dir, 42, b); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if err := writeState(dir, 43, b); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if v := readStateOrFail(t, dir); v != 43 {
			t.Errorf("%q: state file holds %d, want 43", name, v)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%q: data directory holds %d files, want only the state file", name, len(entries))
		}
	}
	empty := filepath.Join(t.TempDir(), stateFile)
	os.WriteFile(empty, nil, 0o644)
	if v, err := readState(empty, true); err != nil || v != 0 {
		t.Errorf("no-fsync reads an empty state file as %d, %v; want 0", v, err)
	}
	if _, err := readState(empty, false); err == nil {
		t.Error("the correct node accepted an empty state file")
	}
}

func TestBugNoPersist(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	s := c.start(0, withBug(bugNoPersist))
	set(t, s, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := readStateOrFail(t, filepath.Join(c.root, "n1")); v != 5 {
		t.Errorf("state file holds %d, want 5 (written, just never read)", v)
	}
	s = c.start(0, withBug(bugNoPersist))
	if v := get(t, s); v != 0 {
		t.Errorf("after a restart: %d, want 0", v)
	}
}

func TestBugNoRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for memberlist to reap dead nodes")
	}
	t.Parallel()
	const token = "no-rejoin-token"
	c := startCluster(t, 3, withToken(t, token), withBug(bugNoRejoin))
	n1 := c.nodes[0]
	// The initial join still happens.
	waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, all3, c.nodes...) })

	c.partition(token, 0)
	waitFor(t, 10*time.Second, "n1 to see itself alone", func() bool { return allSee(t, []string{"n1"}, n1) })
	waitFor(t, 10*time.Second, "n2, n3 to lose n1", func() bool { return allSee(t, []string{"n2", "n3"}, c.nodes[1:]...) })
	time.Sleep(3 * time.Second) // as in TestRejoinAfterDeadNodesAreReaped
	set(t, n1, 77)
	set(t, c.nodes[2], 55)

	c.heal(token)
	// The correct node converges within a few seconds of the heal (see
	// TestRejoinAfterDeadNodesAreReaped); this one stays split.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if allEqual(t, 77, c.nodes...) || !allSee(t, []string{"n1"}, n1) {
			t.Fatal("the partition healed although nobody re-joins")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := get(t, c.nodes[1]); v != 55 {
		t.Errorf("n2 holds %d, want 55", v)
	}
}

func TestBugStaleRead(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugStaleRead)).nodes[0]
	get(t, s) // fills the cache with 0
	if v, applied := set(t, s, 5); v != 5 || !applied {
		t.Fatalf("set 5: value %d applied %v", v, applied)
	}
	if v := get(t, s); v != 0 {
		t.Errorf("get right after an acknowledged set of 5: %d, want the stale 0", v)
	}
	took := waitFor(t, 2*time.Second, "the cache to catch up", func() bool { return get(t, s) == 5 })
	t.Logf("cache caught up after %v", took)
}

func TestBugThinAir(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugThinAir)).nodes[0]
	set(t, s, 10)
	invented := 0
	for range 400 { // (19/20)^400: never none, unless the bug is off
		switch v := get(t, s); v {
		case 10:
		case 11:
			invented++
		default:
			t.Fatalf("read %d", v)
		}
	}
	if invented == 0 {
		t.Fatal("400 reads, none invented a value")
	}
	t.Logf("%d of 400 reads returned 11, which nobody wrote", invented)
	// The counter itself never changed.
	_, _, m := do(t, http.MethodGet, url(s, "/v1/health"), "", "")
	if v := num(t, m, "value"); v != 10 {
		t.Errorf("health shows %d, want 10", v)
	}
}

// TestCorrectHooksAreNoOps checks the hooks of a nil *bug, which the
// correct server calls.
func TestCorrectHooksAreNoOps(t *testing.T) {
	t.Parallel()
	var b *bug
	var mu sync.Mutex
	mu.Lock()
	b.raceWindow(&mu)
	if mu.TryLock() {
		t.Error("raceWindow released the lock")
	}
	quit := make(chan struct{})
	start := time.Now()
	b.lazyFlush(quit)
	if time.Since(start) > 100*time.Millisecond {
		t.Error("lazyFlush waited")
	}
	if b.acceptSmaller() || b.mergeOverwrites() || b.showsPending() || b.forgetsState() ||
		b.leavesGossipOut() || b.stopsRejoining(true) {
		t.Error("a nil bug changes behaviour")
	}
	for _, v := range []int64{0, -3, 42} {
		if got := b.served(v); got != v {
			t.Errorf("served(%d) = %d", v, got)
		}
	}
	// A bug's hooks leave the others alone.
	other := newBug(bugThinAir)
	if other.acceptSmaller() || other.showsPending() || other.stopsRejoining(true) {
		t.Error("thin-air switched on another bug's hook")
	}
}

// TestNodeCommandBugs runs the binary: --bug list, an unknown bug, and the
// durability bugs under kill -9.
func TestNodeCommandBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds and runs the ec-counter binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	wait := func(p *process) int {
		t.Helper()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: still running", p.cmd.Args)
		}
		return p.cmd.ProcessState.ExitCode()
	}

	list := startProcess(t, bin, "node", "--bug", "list")
	if code := wait(list); code != 0 {
		t.Errorf("--bug list: exit %d\n%s", code, list.stderr)
	}
	lines := strings.Split(strings.TrimSpace(list.stdout.String()), "\n")
	if len(lines) != len(Bugs()) {
		t.Errorf("--bug list printed %d lines, want %d:\n%s", len(lines), len(Bugs()), list.stdout.String())
	}
	for i, b := range Bugs() {
		if i < len(lines) && !strings.HasPrefix(lines[i], b.Name+" ") {
			t.Errorf("line %d %q does not start with %s", i, lines[i], b.Name)
		}
	}

	dir := t.TempDir()
	unknown := startProcess(t, bin, "node", "--name", "n1", "--http", "127.0.0.1:0",
		"--gossip", randomLoopback().String()+":7946", "--data-dir", dir, "--bug", "nope")
	if code := wait(unknown); code != 254 {
		t.Errorf("unknown bug: exit %d, want 254\n%s", code, unknown.stderr)
	}
	if !strings.Contains(unknown.stderr.String(), "ack-before-durable") {
		t.Errorf("unknown bug: the valid ones are not listed:\n%s", unknown.stderr)
	}

	for _, c := range []struct{ bug, want string }{
		{bugAckBeforeDurable, "DELIBERATE BUG"},
		{bugNoPersist, "DELIBERATE BUG"},
	} {
		ip := randomLoopback()
		httpAddr := netip.AddrPortFrom(ip, freePort(t, ip)).String()
		gossipAddr := netip.AddrPortFrom(ip, 7946).String()
		dataDir := t.TempDir()
		p := startNodeProcess(t, bin, httpAddr, gossipAddr, dataDir, "--bug", c.bug)
		if !strings.Contains(p.stderr.String(), c.want) {
			t.Errorf("%s: no warning in the log:\n%s", c.bug, p.stderr)
		}
		for _, v := range []int64{3, 8} {
			if got, err := call(context.Background(), p.base, v); err != nil || got != v {
				t.Fatalf("%s: set %d: %d, %v", c.bug, v, got, err)
			}
		}
		if c.bug == bugNoPersist {
			time.Sleep(200 * time.Millisecond) // 8 is on disk: the bug is in reading it back
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		p = startNodeProcess(t, bin, httpAddr, gossipAddr, dataDir, "--bug", c.bug)
		got, err := call(context.Background(), p.base, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got >= 8 {
			t.Errorf("%s: after kill -9 the node serves %d, want less than the acknowledged 8", c.bug, got)
		}
		t.Logf("%s: acknowledged 8, after kill -9 and restart %d", c.bug, got)
	}
}

func TestBugInt32(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugInt32)).nodes[0]
	if v, applied := set(t, s, math.MaxInt32); v != math.MaxInt32 || !applied {
		t.Fatalf("set 2^31-1: value %d applied %v; below 2^31 the bug must not show", v, applied)
	}
	// 2^31 wraps to -2^31: not larger, so not applied, and the answer's
	// current is below the value set.
	if v, applied := set(t, s, math.MaxInt32+1); v != math.MaxInt32 || applied {
		t.Errorf("set 2^31: value %d applied %v, want the counter left at 2^31-1", v, applied)
	}
	// 2^32+5 wraps to 5.
	if v, _ := set(t, s, 1<<32+5); v >= 1<<32 {
		t.Errorf("set 2^32+5: value %d; the bug is off", v)
	}
}

func TestBugFloatJSON(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withBug(bugFloatJSON)).nodes[0]
	const p53 = 1 << 53
	if v, applied := set(t, s, p53-1); v != p53-1 || !applied {
		t.Fatalf("set 2^53-1: value %d applied %v; below 2^53 the bug must not show", v, applied)
	}
	// 2^53+1 has no float64: it rounds to 2^53.
	if v, _ := set(t, s, p53+1); v != p53 {
		t.Errorf("set 2^53+1: value %d, want 2^53, its float64", v)
	}
	if v, _ := set(t, s, math.MaxInt64-1); v != math.MaxInt64 {
		t.Errorf("set 2^63-2: value %d, want it saturated to MaxInt64", v)
	}
}
