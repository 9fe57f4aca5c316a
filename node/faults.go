package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// parseFaultSet decodes and validates a fault set strictly: duplicate keys,
// unknown fields, trailing data, bad addresses and out-of-range numbers are errors.
func parseFaultSet(body []byte) (*faultTable, error) {
	if err := checkDuplicateKeys(body); err != nil {
		return nil, fmt.Errorf("invalid fault set: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var fs *api.FaultSet
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
func newFaultTable(links map[string]api.LinkFaults) (*faultTable, error) {
	byIP, err := api.FaultSet{Links: links}.Validate()
	if err != nil {
		return nil, fmt.Errorf("invalid fault set: %w", err)
	}
	t := &faultTable{
		spec: api.FaultSet{Links: make(map[string]api.LinkFaults, len(links))},
		byIP: make(map[netip.Addr]api.LinkFaults, len(byIP)),
	}
	for k, l := range links {
		ap := netip.MustParseAddrPort(k) // Validate parsed it
		ip := ap.Addr().Unmap()
		t.spec.Links[netip.AddrPortFrom(ip, ap.Port()).String()] = l
		if l.In.Active() || l.Out.Active() {
			t.byIP[ip] = l
		}
	}
	return t, nil
}

// lost decides whether one packet or stream is lost.
func lost(f *api.DirFaults) bool {
	return f != nil && (f.Drop || (f.Loss > 0 && rand.Float64() < f.Loss))
}

// delay draws one delay: DelayMS ± JitterMS, never negative.
func delay(f *api.DirFaults) time.Duration {
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
	spec api.FaultSet                  // as served by GET, keys normalized
	byIP map[netip.Addr]api.LinkFaults // links with an active fault
}

// lookup returns the faults on the link with ip, or nil ones.
func (t *faultTable) lookup(ip netip.Addr) (in, out *api.DirFaults) {
	if t == nil || len(t.byIP) == 0 {
		return nil, nil
	}
	l := t.byIP[ip.Unmap()]
	return l.In, l.Out
}

// empty reports whether t affects no traffic.
func (t *faultTable) empty() bool { return t == nil || len(t.byIP) == 0 }
