package node

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

var all3 = []string{"n1", "n2", "n3"}

// partition makes the admin API of each node drop all traffic to and from
// the nodes of the other side. isolated are indexes into c.nodes.
func (c *cluster) partition(token string, isolated ...int) {
	c.t.Helper()
	side := make(map[int]bool)
	for _, i := range isolated {
		side[i] = true
	}
	for i, s := range c.nodes {
		var links []string
		for j := range c.nodes {
			if side[i] != side[j] {
				links = append(links, fmt.Sprintf(`%q: {"in": {"drop": true}, "out": {"drop": true}}`, c.gossi[j]))
			}
		}
		c.putFaults(s, token, `{"links": {`+strings.Join(links, ", ")+`}}`)
	}
}

// heal removes every fault.
func (c *cluster) heal(token string) {
	c.t.Helper()
	for _, s := range c.nodes {
		c.putFaults(s, token, `{"links": {}}`)
	}
}

func (c *cluster) putFaults(s *Server, token, body string) {
	c.t.Helper()
	code, _, m := do(c.t, http.MethodPut, url(s, "/v1/admin/faults"), "Bearer "+token, body)
	if code != http.StatusOK {
		c.t.Fatalf("PUT faults %s: %d %v", body, code, m)
	}
}

// TestGossipConverges checks, with the default tuning, that a value set on
// any node reaches all three, and reports how long that takes.
func TestGossipConverges(t *testing.T) {
	t.Parallel()
	defaults := func(i int, c *Config) {
		c.GossipInterval, c.PushPullInterval, c.ProbeInterval, c.RejoinInterval = 0, 0, 0, 0
	}
	c := startCluster(t, 3, defaults)
	took := waitFor(t, 10*time.Second, "all nodes to see each other", func() bool { return allSee(t, all3, c.nodes...) })
	t.Logf("membership complete after %v", took)

	var times []time.Duration
	for i := range 20 {
		v := int64(100 * (i + 1))
		s := c.nodes[i%3]
		start := time.Now()
		set(t, s, v)
		waitFor(t, 5*time.Second, fmt.Sprintf("%d to reach every node", v), func() bool { return allEqual(t, v, c.nodes...) })
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	t.Logf("set → on all 3 nodes (incl. the set's fsync, 20 values): min %v, median %v, max %v",
		times[0], times[len(times)/2], times[len(times)-1])
	// A lower set anywhere changes nothing.
	if v, applied := set(t, c.nodes[0], 5); v != 2000 || applied {
		t.Errorf("lower set: %d %v", v, applied)
	}
}

func TestGossipJoinsPeersThatStartLater(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	n1 := c.start(0)
	set(t, n1, 3) // serving, although its peer does not exist yet
	time.Sleep(3 * testRejoin)
	n2 := c.start(1)
	waitFor(t, 10*time.Second, "the pair to see each other", func() bool { return allSee(t, []string{"n1", "n2"}, n1, n2) })
	waitFor(t, 5*time.Second, "3 on n2", func() bool { return get(t, n2) == 3 })
}

func TestPartitionBlocksGossipUntilHealed(t *testing.T) {
	t.Parallel()
	const token = "partition-token"
	c := startCluster(t, 3, withToken(t, token))
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, all3, c.nodes...) })
	set(t, n1, 10)
	waitFor(t, 5*time.Second, "10 everywhere", func() bool { return allEqual(t, 10, c.nodes...) })

	c.partition(token, 0)
	set(t, n1, 20) // only n1 has it
	set(t, n2, 15) // n2 and n3 have it
	waitFor(t, 5*time.Second, "15 on n3", func() bool { return get(t, n3) == 15 })
	deadline := time.Now().Add(1500 * time.Millisecond) // several push/pull rounds
	for time.Now().Before(deadline) {
		if v := get(t, n1); v != 20 {
			t.Fatalf("n1 went to %d during the partition", v)
		}
		for _, s := range []*Server{n2, n3} {
			if v := get(t, s); v != 15 {
				t.Fatalf("%s went to %d during the partition", s.cfg.Name, v)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.heal(token)
	took := waitFor(t, 10*time.Second, "convergence after heal", func() bool { return allEqual(t, 20, c.nodes...) })
	t.Logf("converged %v after heal", took)
}

func TestRejoinAfterDeadNodesAreReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for memberlist to reap dead nodes")
	}
	t.Parallel()
	const token = "rejoin-token"
	c := startCluster(t, 3, withToken(t, token))
	n1 := c.nodes[0]
	waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, all3, c.nodes...) })

	c.partition(token, 0)
	waitFor(t, 10*time.Second, "n1 to see itself alone", func() bool { return allSee(t, []string{"n1"}, n1) })
	waitFor(t, 10*time.Second, "n2, n3 to lose n1", func() bool { return allSee(t, []string{"n2", "n3"}, c.nodes[1:]...) })
	// Suspicion (~3 probe intervals) and GossipToTheDeadTime (2 push/pull
	// intervals) are both well below this: dead nodes are gone for good.
	time.Sleep(3 * time.Second)
	set(t, n1, 77)
	set(t, c.nodes[2], 55)

	c.heal(token)
	took := waitFor(t, 15*time.Second, "convergence after a long partition", func() bool { return allEqual(t, 77, c.nodes...) })
	t.Logf("converged %v after heal", took)
	waitFor(t, 10*time.Second, "full membership", func() bool { return allSee(t, all3, c.nodes...) })
}

func TestRestartedNodeRejoins(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	waitFor(t, 10*time.Second, "membership", func() bool { return allSee(t, all3, c.nodes...) })
	set(t, c.nodes[2], 8)
	waitFor(t, 5*time.Second, "8 everywhere", func() bool { return allEqual(t, 8, c.nodes...) })
	if err := c.nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	set(t, c.nodes[0], 9)
	c.nodes[2] = c.start(2)
	if v := get(t, c.nodes[2]); v < 8 {
		t.Fatalf("restarted node serves %d, want ≥ 8", v)
	}
	waitFor(t, 5*time.Second, "9 everywhere after restart", func() bool { return allEqual(t, 9, c.nodes...) })
	waitFor(t, 10*time.Second, "membership after restart", func() bool { return allSee(t, all3, c.nodes...) })
}

// TestEagerPushReachesPeersWithoutGossip: with gossip, push/pull and
// probes (which carry broadcasts too) an hour apart, a set still reaches
// every peer at once, because the node that took it sends it to them
// directly. Without the push it fails.
func TestEagerPushReachesPeersWithoutGossip(t *testing.T) {
	t.Parallel()
	slow := func(i int, c *Config) {
		c.GossipInterval, c.PushPullInterval, c.ProbeInterval = time.Hour, time.Hour, time.Hour
	}
	c := startCluster(t, 3, slow)
	waitFor(t, 10*time.Second, "every node to see the others", func() bool {
		for _, s := range c.nodes {
			if len(s.members.names()) != 3 {
				return false
			}
		}
		return true
	})
	set(t, c.nodes[0], 77)
	took := waitFor(t, 2*time.Second, "n2 and n3 to have 77 without gossip", func() bool {
		return get(t, c.nodes[1]) == 77 && get(t, c.nodes[2]) == 77
	})
	t.Logf("77 reached both peers in %v", took)
}
