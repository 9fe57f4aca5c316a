package node

import (
	"slices"
	"testing"
	"time"
)

// A stopping node's leave still reaches its peers though Close no longer
// waits for all its retransmissions: with failure detection slowed to an
// hour, only the leave can take n2 out of n1's members.
func TestCloseLeaves(t *testing.T) {
	c := startCluster(t, 2, func(i int, cfg *Config) { cfg.ProbeInterval = time.Hour })
	waitFor(t, 5*time.Second, "n1 to see n2", func() bool { return slices.Contains(members(t, c.nodes[0]), "n2") })
	if err := c.nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n1 to see n2 leave", func() bool { return !slices.Contains(members(t, c.nodes[0]), "n2") })
}

func TestLeaveWait(t *testing.T) {
	for _, c := range []struct{ gossip, want time.Duration }{
		{time.Millisecond, 20 * time.Millisecond},
		{30 * time.Millisecond, 60 * time.Millisecond},
		{time.Second, 200 * time.Millisecond},
	} {
		if got := leaveWait(c.gossip); got != c.want {
			t.Errorf("leaveWait(%s) = %s, want %s", c.gossip, got, c.want)
		}
	}
}
