package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ec-counter/ec-counter/api"
)

// Lab is a network of hosts: each host is a network namespace with one
// interface and its own address, and this process's namespace is the
// router between them, so that every packet from one host to another, UDP
// or TCP, crosses this namespace's forward hook, where the faults are kernel
// rules. This process reaches every host directly (its packets are not
// forwarded, so faults never touch them); hosts have no route to anything
// outside the lab.
//
// A Lab is built only inside the namespace Reexec makes, so that the kernel
// removes all of it when the process ends, however it ends.
type Lab struct {
	id    int // 1..254: the lab's subnet 10.id.0.0/16, its table and queue
	hosts []*Host
	byIP  map[netip.Addr]*Host

	rules   *ruleset
	delayer *delayer

	mu     sync.Mutex
	shares map[string]share // each host's fault share, by host name
}

// Host is one machine of the lab: a network namespace with an interface
// "eth0" at Addr, routed through the lab's router.
type Host struct {
	Name   string     // the node's name, e.g. n1
	Addr   netip.Addr // its address, 10.L.i.2
	Router netip.Addr // the router's address on its link, 10.L.i.1
	index  int        // 1-based
	link   string     // the router side of its veth pair
	ns     *os.File   // its network namespace, held open
}

// NetNS returns the identity of the host's network namespace, e.g.
// "net:[4026532591]", as /proc/PID/ns/net shows it.
func (h *Host) NetNS() string {
	if h.ns == nil {
		return ""
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.ns.Fd()), &st); err != nil {
		return ""
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// MaxHosts is the largest lab Build makes.
const MaxHosts = 250

// Build makes a lab of one host per name. It must run inside the
// namespace Reexec makes (see Inside); Close removes everything it made.
func Build(ctx context.Context, names []string) (_ *Lab, err error) {
	if !Inside() {
		return nil, errors.New("lab: Build outside the namespace Reexec makes (the lab never touches this machine's own network)")
	}
	if len(names) < 1 || len(names) > MaxHosts {
		return nil, fmt.Errorf("lab: %d hosts; want 1..%d", len(names), MaxHosts)
	}
	l := &Lab{byIP: map[netip.Addr]*Host{}, shares: map[string]share{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.claimID(names[0]); err != nil {
		return nil, err
	}
	for i, name := range names[1:] {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := l.addHost(i+2, name); err != nil {
			return nil, err
		}
	}
	if err := l.waitLinksUp(ctx); err != nil {
		return nil, err
	}
	if l.rules, err = newRuleset(l.id, l.hosts); err != nil {
		return nil, err
	}
	if l.delayer, err = startDelayer(uint16(l.id)); err != nil {
		return nil, err
	}
	return l, nil
}

// claimID picks the lab's number at random among those no other lab of
// this process uses: creating the first host's link is the claim, since
// the kernel refuses a second link of the same name.
func (l *Lab) claimID(first string) error {
	var last error
	for attempt := 0; attempt < 64; attempt++ {
		l.id = 1 + rand.IntN(254)
		_, err := l.addHost(1, first)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		last = err
	}
	return fmt.Errorf("lab: no free lab number: %w", last)
}

// addHost makes host i: a network namespace, a veth pair to the router,
// addresses, and a default route through the router.
func (l *Lab) addHost(i int, name string) (*Host, error) {
	h := &Host{
		Name:   name,
		Addr:   netip.AddrFrom4([4]byte{10, byte(l.id), byte(i), 2}),
		Router: netip.AddrFrom4([4]byte{10, byte(l.id), byte(i), 1}),
		index:  i,
		link:   fmt.Sprintf("lab%dh%d", l.id, i),
	}
	ns, err := newNetns()
	if err != nil {
		return nil, fmt.Errorf("lab: host %s: new network namespace: %w", name, err)
	}
	h.ns = ns
	peer := fmt.Sprintf("lab%dp%d", l.id, i)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: h.link},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(int(ns.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		ns.Close()
		return nil, fmt.Errorf("lab: host %s: add veth %s: %w", name, h.link, err)
	}
	l.hosts = append(l.hosts, h)
	l.byIP[h.Addr] = h
	router, err := netlink.LinkByName(h.link)
	if err != nil {
		return nil, fmt.Errorf("lab: host %s: %w", name, err)
	}
	if err := netlink.AddrAdd(router, &netlink.Addr{IPNet: prefix(h.Router)}); err != nil {
		return nil, fmt.Errorf("lab: host %s: router address: %w", name, err)
	}
	if err := netlink.LinkSetUp(router); err != nil {
		return nil, fmt.Errorf("lab: host %s: router link up: %w", name, err)
	}
	if err := configureHost(h, peer); err != nil {
		return nil, fmt.Errorf("lab: host %s: %w", name, err)
	}
	return h, nil
}

// prefix returns a's /24, the link between a host and the router.
func prefix(a netip.Addr) *net.IPNet {
	b := a.As4()
	return &net.IPNet{IP: net.IP(b[:]), Mask: net.CIDRMask(24, 32)}
}

// configureHost sets up the inside of a host's namespace: loopback up, the
// veth renamed eth0 with the host's address, a default route via the router.
func configureHost(h *Host, peer string) error {
	router, err := os.Open(threadNetns)
	if err != nil {
		return err
	}
	defer router.Close()
	nh, err := netlink.NewHandleAtFrom(netns.NsHandle(int(h.ns.Fd())), netns.NsHandle(int(router.Fd())))
	if err != nil {
		return fmt.Errorf("netlink in host namespace: %w", err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	eth, err := nh.LinkByName(peer)
	if err != nil {
		return err
	}
	if err := nh.LinkSetName(eth, "eth0"); err != nil {
		return fmt.Errorf("rename %s: %w", peer, err)
	}
	if err := nh.AddrAdd(eth, &netlink.Addr{IPNet: prefix(h.Addr)}); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	gw := h.Router.As4()
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw[:]}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	return nil
}

// waitLinksUp waits until both ends of every host's link are
// operationally up. The kernel turns a veth's carrier on, and attaches its
// queueing discipline, asynchronously (its link-watch work may take up to
// a second); until then every packet sent through the link is dropped, so
// a lab used at once would lose its first packets, or all of them.
func (l *Lab) waitLinksUp(ctx context.Context) error {
	router, err := os.Open(threadNetns)
	if err != nil {
		return err
	}
	defer router.Close()
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range l.hosts {
		nh, err := netlink.NewHandleAtFrom(netns.NsHandle(int(h.ns.Fd())), netns.NsHandle(int(router.Fd())))
		if err != nil {
			return fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
		up := func() bool {
			r, err1 := netlink.LinkByName(h.link)
			e, err2 := nh.LinkByName("eth0")
			return err1 == nil && err2 == nil &&
				r.Attrs().OperState == netlink.OperUp && e.Attrs().OperState == netlink.OperUp
		}
		for !up() {
			if time.Now().After(deadline) {
				nh.Close()
				return fmt.Errorf("lab: host %s: its link did not come up within 5 s", h.Name)
			}
			if err := ctx.Err(); err != nil {
				nh.Close()
				return err
			}
			time.Sleep(2 * time.Millisecond)
		}
		nh.Close()
	}
	return nil
}

// Hosts returns the lab's hosts, in the order of the names given to Build.
func (l *Lab) Hosts() []*Host { return l.hosts }

// Host returns the host of a node name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// ID returns the lab's number L: its hosts are 10.L.i.2.
func (l *Lab) ID() int { return l.id }

// Prefix returns the lab's addresses, 10.L.0.0/16.
func (l *Lab) Prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(l.id), 0, 0}), 16)
}

// QueueDrops returns how many packets the kernel dropped because the
// delayer's queue was full (a delayed link that is overloaded loses
// packets, like a real one with a full buffer).
func (l *Lab) QueueDrops() uint64 {
	if l.delayer == nil {
		return 0
	}
	return l.delayer.queueDrops()
}

// Close removes the lab's rules, delayer and links, and lets go of its
// hosts' namespaces, which vanish once no process runs in them: stop the
// nodes first. It deletes each link itself rather than leave that to the
// namespaces' asynchronous teardown, which let a lab built right after
// reach hosts only some of the time.
func (l *Lab) Close() error {
	var errs []error
	if l.rules != nil {
		errs = append(errs, l.rules.close())
		l.rules = nil
	}
	if l.delayer != nil {
		l.delayer.close()
		l.delayer = nil
	}
	// Closing a host's namespace lets the kernel destroy it, and with it
	// the veth pair, once no process runs in it: faster than deleting
	// each link here, which waits for the network stack to settle.
	for _, h := range l.hosts {
		if link, err := netlink.LinkByName(h.link); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("lab: delete %s: %w", h.link, err))
			}
		}
		if h.ns != nil {
			h.ns.Close()
			h.ns = nil
		}
	}
	return errors.Join(errs...)
}

// InNode reports false: the lab's faults are kernel rules on the router,
// in force whatever the node processes do (killed, paused, restarted).
func (l *Lab) InNode() bool { return false }

// SetFaults replaces node's share of the network faults with fs, the admin
// API's fault set (docs/node.md "Admin API (fault injection)"): "in" faults act on traffic from a
// peer to node, "out" faults on traffic from node to a peer, both as rules
// on the router; delay and jitter by the delayer. It is atomic: either the
// whole share is in force afterwards, or the old one still is.
func (l *Lab) SetFaults(ctx context.Context, node string, fs api.FaultSet) error {
	h := l.Host(node)
	if h == nil {
		return fmt.Errorf("lab: no host %q", node)
	}
	byIP, err := fs.Validate()
	if err != nil {
		return fmt.Errorf("lab: %s's fault set: %w", node, err)
	}
	s := share{}
	for ip, lf := range byIP {
		peer := l.byIP[ip]
		if peer == nil || peer == h {
			return fmt.Errorf("lab: %s's fault set names %s, which is not another host of the lab", node, ip)
		}
		if lf.In.Active() || lf.Out.Active() {
			s[peer] = lf
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rules == nil {
		return errors.New("lab: closed")
	}
	old := l.shares[node]
	l.shares[node] = s
	// Delays first, so that every packet the new rules queue finds its
	// delay; a queued packet whose link has none is let through at once.
	l.delayer.setDelays(l.delays())
	if err := l.rules.setShare(h, s); err != nil {
		l.shares[node] = old
		l.delayer.setDelays(l.delays())
		return err
	}
	return nil
}

// delays computes every directed link's delay from all shares: a link's
// delay is the sum of its source's "out" and its destination's "in".
func (l *Lab) delays() map[linkKey]delaySpec {
	out := map[linkKey]delaySpec{}
	add := func(from, to *Host, f *api.DirFaults) {
		if f == nil || (f.DelayMS == 0 && f.JitterMS == 0) {
			return
		}
		k := linkKey{from.Addr, to.Addr}
		d := out[k]
		d.delay += time.Duration(f.DelayMS) * time.Millisecond
		d.jitter += time.Duration(f.JitterMS) * time.Millisecond
		out[k] = d
	}
	for _, h := range l.hosts {
		for peer, lf := range l.shares[h.Name] {
			add(peer, h, lf.In)
			add(h, peer, lf.Out)
		}
	}
	return out
}

// share is one host's faults, by peer.
type share map[*Host]api.LinkFaults
