package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/runstore"
)

// Default ports every node listens on; each node has its own loopback IP, so
// they never clash with each other.
const (
	httpPort   = 8080
	gossipPort = 7946
)

// hostAddrs gives each lab host's node the default ports on the host's
// address: every host is a machine of its own.
func hostAddrs(hosts []*lab.Host) []runstore.NodeAddrs {
	addrs := make([]runstore.NodeAddrs, len(hosts))
	for i, h := range hosts {
		addrs[i] = runstore.NodeAddrs{
			HTTP:   netip.AddrPortFrom(h.Addr, httpPort).String(),
			Gossip: netip.AddrPortFrom(h.Addr, gossipPort).String(),
		}
	}
	return addrs
}

// allocateAddrs picks a random 127.a.b.0/24 that no one on this machine is
// using and gives node i the address 127.a.b.(11+i), so parallel runs never
// collide. It probes every address it hands out by binding it.
func allocateAddrs(n int, rng *rand.Rand) ([]runstore.NodeAddrs, error) {
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("cannot allocate addresses for %d nodes (1..200)", n)
	}
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		a, b := byte(1+rng.IntN(254)), byte(rng.IntN(256))
		addrs := make([]runstore.NodeAddrs, n)
		ok := true
		for i := range addrs {
			ip := netip.AddrFrom4([4]byte{127, a, b, byte(11 + i)})
			addrs[i] = runstore.NodeAddrs{
				HTTP:   netip.AddrPortFrom(ip, httpPort).String(),
				Gossip: netip.AddrPortFrom(ip, gossipPort).String(),
			}
			if err := probe(addrs[i]); err != nil {
				lastErr = err
				ok = false
				break
			}
		}
		if ok {
			return addrs, nil
		}
	}
	return nil, fmt.Errorf("no free loopback addresses found: %w", lastErr)
}

// probe checks that the node's TCP and UDP ports are free.
func probe(a runstore.NodeAddrs) error {
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, addr := range []string{a.HTTP, a.Gossip} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		closers = append(closers, l)
	}
	pc, err := net.ListenPacket("udp", a.Gossip)
	if err != nil {
		return err
	}
	closers = append(closers, pc)
	return nil
}
