package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Default tuning, chosen for clusters on one machine's loopback interface:
// a new value reaches every node in well under a second.
const (
	DefaultGossipInterval   = 30 * time.Millisecond
	DefaultPushPullInterval = 400 * time.Millisecond
	DefaultProbeInterval    = 200 * time.Millisecond

	// scaleNodes is the cluster size the default intervals suit.
	scaleNodes            = 10
	DefaultRejoinInterval = 500 * time.Millisecond
)

// Config configures one counter server.
type Config struct {
	// Name is the node's unique name in the cluster, e.g. "n1".
	Name string

	// HTTPAddr is the host:port the HTTP API listens on. Port 0 picks a
	// free port; see Server.HTTPAddr.
	HTTPAddr string

	// GossipAddr is the IP:port memberlist binds (UDP and TCP) and
	// advertises. Each node of a cluster on one machine uses its own
	// loopback IP, so that link faults can tell peers apart by IP.
	GossipAddr string

	// Peers are the other nodes' gossip addresses (IP:port). The node keeps
	// joining those it does not see alive. An entry equal to GossipAddr is
	// ignored.
	Peers []string

	// DataDir holds the durable state; it is created if missing.
	DataDir string

	// AdminTokenFile, if set, names a file whose trimmed content is the
	// bearer token of the admin API. Without it the admin API answers 404.
	AdminTokenFile string

	// Tuning; zero means the matching Default value, multiplied by
	// ⌈nodes/scaleNodes⌉ for a cluster of more than scaleNodes nodes.
	GossipInterval   time.Duration // memberlist gossip (broadcast) interval
	PushPullInterval time.Duration // memberlist full state exchange interval
	ProbeInterval    time.Duration // memberlist failure detection interval
	RejoinInterval   time.Duration // how often to re-join peers not seen alive
	// NoEagerPush leaves a client's set to gossip alone, instead of also
	// sending it at once to a few members (docs/node.md "The node: command line, HTTP API and admin API").
	NoEagerPush bool

	// Logger receives the node's logs, memberlist's included. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Bug, if not empty, switches on one deliberate bug of Bugs, so that a
	// test harness can show that it catches it. A node with a bug is
	// incorrect on purpose, and logs a warning saying so when it starts.
	Bug string
}

// Validate reports whether c is usable: a name, an HTTP address, IP:port
// gossip and peer addresses, a data directory, non-negative tuning and a
// known bug, if any. It does not touch the network or the file system.
func (c Config) Validate() error {
	_, err := c.settings()
	return err
}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	gossip netip.AddrPort
	peers  []netip.AddrPort
	token  []byte // admin token; nil if the admin API is off
	bug    *bug   // the deliberate bug switched on; nil if none
}

func (c Config) settings() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http address: %w", err))
	}
	g, err := parseAddrPort(c.GossipAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("gossip address: %w", err))
	}
	s.gossip = g
	for _, p := range c.Peers {
		ap, err := parseAddrPort(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer: %w", err))
			continue
		}
		if ap != g {
			s.peers = append(s.peers, ap)
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data directory is required"))
	}
	// The defaults suit up to scaleNodes nodes; a larger cluster of
	// processes sharing a few cores gossips, probes and syncs in proportion
	// less often, or its probes time out under load and healthy members are
	// declared dead (docs/node.md "The node: command line, HTTP API and admin API").
	scale := time.Duration(max(1, (len(s.peers)+1+scaleNodes-1)/scaleNodes))
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"gossip interval", &s.GossipInterval, DefaultGossipInterval * scale},
		{"push/pull interval", &s.PushPullInterval, DefaultPushPullInterval * scale},
		{"probe interval", &s.ProbeInterval, DefaultProbeInterval * scale},
		{"rejoin interval", &s.RejoinInterval, DefaultRejoinInterval * scale},
	} {
		switch {
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("%s must not be negative: %v", d.name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if err := ValidateBug(c.Bug); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid node config: %w", err)
	}
	s.bug = newBug(c.Bug)
	return s, nil
}

// parseAddrPort parses an IP:port address with a non-zero port.
func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP:port address", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port must not be 0", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
