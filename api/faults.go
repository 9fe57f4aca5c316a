package api

import (
	"fmt"
	"net/netip"
	"sort"
)

// MaxDelayMS bounds delay_ms and jitter_ms (one hour), so durations cannot
// overflow.
const MaxDelayMS = 3_600_000

// FaultSet is one node's share of the network faults: the body of
// PUT /v1/admin/faults, e.g.
//
//	{"links": {"127.0.0.12:7946": {"in": {"drop": true},
//	                               "out": {"delay_ms": 200, "jitter_ms": 50, "loss": 0.2}}}}
//
// Keys are the peers' gossip addresses, matched by IP. Links is never nil on
// the wire: {"links": {}} heals.
type FaultSet struct {
	Links map[string]LinkFaults `json:"links"`
}

// LinkFaults are the faults on the link with one peer: In is traffic from
// the peer to this node, Out from this node to the peer.
type LinkFaults struct {
	In  *DirFaults `json:"in,omitempty"`
	Out *DirFaults `json:"out,omitempty"`
}

// DirFaults are the faults in one direction of a link.
type DirFaults struct {
	Drop     bool    `json:"drop,omitempty"`      // drop everything
	DelayMS  int     `json:"delay_ms,omitempty"`  // mean added delay
	JitterMS int     `json:"jitter_ms,omitempty"` // the delay varies uniformly by ± this
	Loss     float64 `json:"loss,omitempty"`      // probability of losing a packet or stream
}

// Validate checks every number's range and every key, and returns the
// links by peer IP (keys normalized to ip:port). Two keys with the same IP
// are an error.
func (fs FaultSet) Validate() (map[netip.Addr]LinkFaults, error) {
	byIP := make(map[netip.Addr]LinkFaults, len(fs.Links))
	keys := make([]string, 0, len(fs.Links))
	for k := range fs.Links {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := make(map[netip.Addr]string, len(keys))
	for _, k := range keys {
		l := fs.Links[k]
		ap, err := netip.ParseAddrPort(k)
		if err != nil {
			return nil, fmt.Errorf("link %q: not an IP:port gossip address", k)
		}
		ip := ap.Addr().Unmap()
		if prev, dup := seen[ip]; dup {
			return nil, fmt.Errorf("links %q and %q have the same IP", prev, k)
		}
		seen[ip] = k
		for _, d := range []struct {
			name string
			f    *DirFaults
		}{{"in", l.In}, {"out", l.Out}} {
			if err := d.f.Validate(); err != nil {
				return nil, fmt.Errorf("link %q %s: %w", k, d.name, err)
			}
		}
		byIP[ip] = l
	}
	return byIP, nil
}

// Validate checks f's ranges; a nil f is valid and does nothing.
func (f *DirFaults) Validate() error {
	switch {
	case f == nil:
		return nil
	case f.DelayMS < 0 || f.DelayMS > MaxDelayMS:
		return fmt.Errorf("delay_ms %d not in [0, %d]", f.DelayMS, MaxDelayMS)
	case f.JitterMS < 0 || f.JitterMS > MaxDelayMS:
		return fmt.Errorf("jitter_ms %d not in [0, %d]", f.JitterMS, MaxDelayMS)
	case !(f.Loss >= 0 && f.Loss <= 1):
		return fmt.Errorf("loss %v not in [0, 1]", f.Loss)
	}
	return nil
}

// Active reports whether f affects any traffic.
func (f *DirFaults) Active() bool {
	return f != nil && (f.Drop || f.DelayMS > 0 || f.JitterMS > 0 || f.Loss > 0)
}
