package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"
)

// faultSet is the admin API's JSON form of the link faults, e.g.
//
//	{"links": {"127.0.0.12:7946": {"in": {"drop": true},
//	                               "out": {"delay_ms": 200, "jitter_ms": 50, "loss": 0.2}}}}
//
// Keys are peers' gossip addresses, matched by IP. "in" is traffic from the
// peer to this node, "out" traffic from this node to the peer.
type faultSet struct {
	Links map[string]linkFaults `json:"links"`
}

// linkFaults are the faults on the link to and from one peer.
type linkFaults struct {
	In  *dirFaults `json:"in,omitempty"`
	Out *dirFaults `json:"out,omitempty"`
}

// dirFaults are the faults in one direction of a link.
type dirFaults struct {
	Drop     bool    `json:"drop,omitempty"`      // drop everything
	DelayMS  int     `json:"delay_ms,omitempty"`  // mean added delay
	JitterMS int     `json:"jitter_ms,omitempty"` // delay varies uniformly by ± this
	Loss     float64 `json:"loss,omitempty"`      // probability of losing a packet or stream
}

// maxDelayMS bounds delay and jitter (one hour) so durations cannot overflow.
const maxDelayMS = 3_600_000

// parseFaultSet decodes and validates a fault set strictly: unknown fields,
// trailing data, bad addresses and out-of-range numbers are errors.
func parseFaultSet(body []byte) (*faultTable, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var fs *faultSet
	if err := dec.Decode(&fs); err != nil {
		return nil, fmt.Errorf("invalid fault set: %w", err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return nil, errors.New("invalid fault set: trailing data after the JSON object")
	}
	if fs == nil {
		return nil, errors.New(`invalid fault set: want an object like {"links": {...}}`)
	}
	if fs.Links == nil {
		return nil, errors.New(`invalid fault set: "links" is required (use {"links": {}} to heal)`)
	}
	return newFaultTable(fs.Links)
}

// newFaultTable validates links and indexes them by peer IP.
func newFaultTable(links map[string]linkFaults) (*faultTable, error) {
	t := &faultTable{
		spec:  faultSet{Links: make(map[string]linkFaults, len(links))},
		byIP:  make(map[netip.Addr]linkFaults, len(links)),
		peers: make(map[netip.Addr]string, len(links)),
	}
	keys := make([]string, 0, len(links))
	for k := range links {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		l := links[k]
		ap, err := netip.ParseAddrPort(k)
		if err != nil {
			return nil, fmt.Errorf("invalid fault set: link %q: not an IP:port gossip address", k)
		}
		ip := ap.Addr().Unmap()
		if prev, dup := t.peers[ip]; dup {
			return nil, fmt.Errorf("invalid fault set: links %q and %q have the same IP", prev, k)
		}
		for _, d := range []struct {
			name string
			f    *dirFaults
		}{{"in", l.In}, {"out", l.Out}} {
			if d.f == nil {
				continue
			}
			if err := d.f.validate(); err != nil {
				return nil, fmt.Errorf("invalid fault set: link %q %s: %w", k, d.name, err)
			}
		}
		key := netip.AddrPortFrom(ip, ap.Port()).String()
		t.spec.Links[key] = l
		t.peers[ip] = key
		if l.In.active() || l.Out.active() {
			t.byIP[ip] = l
		}
	}
	return t, nil
}

func (f *dirFaults) validate() error {
	switch {
	case f.DelayMS < 0 || f.DelayMS > maxDelayMS:
		return fmt.Errorf("delay_ms %d not in [0, %d]", f.DelayMS, maxDelayMS)
	case f.JitterMS < 0 || f.JitterMS > maxDelayMS:
		return fmt.Errorf("jitter_ms %d not in [0, %d]", f.JitterMS, maxDelayMS)
	case !(f.Loss >= 0 && f.Loss <= 1):
		return fmt.Errorf("loss %v not in [0, 1]", f.Loss)
	}
	return nil
}

// active reports whether f affects any traffic.
func (f *dirFaults) active() bool {
	return f != nil && (f.Drop || f.DelayMS > 0 || f.JitterMS > 0 || f.Loss > 0)
}

// lost decides whether one packet or stream is lost.
func (f *dirFaults) lost() bool {
	return f != nil && (f.Drop || (f.Loss > 0 && rand.Float64() < f.Loss))
}

// delay draws one delay: DelayMS ± JitterMS, never negative.
func (f *dirFaults) delay() time.Duration {
	if f == nil {
		return 0
	}
	d := time.Duration(f.DelayMS) * time.Millisecond
	if f.JitterMS > 0 {
		j := time.Duration(f.JitterMS) * time.Millisecond
		d += rand.N(2*j+1) - j
	}
	return max(d, 0)
}

// faultTable is an immutable, validated fault set.
type faultTable struct {
	spec  faultSet                  // as served by GET, keys normalized
	byIP  map[netip.Addr]linkFaults // links with an active fault
	peers map[netip.Addr]string     // every key by IP, to reject duplicates
}

// lookup returns the faults on the link with ip, or nil ones.
func (t *faultTable) lookup(ip netip.Addr) (in, out *dirFaults) {
	if t == nil || len(t.byIP) == 0 {
		return nil, nil
	}
	l := t.byIP[ip.Unmap()]
	return l.In, l.Out
}

// empty reports whether t affects no traffic.
func (t *faultTable) empty() bool { return t == nil || len(t.byIP) == 0 }
