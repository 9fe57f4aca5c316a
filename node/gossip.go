package node

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip messages (broadcasts and push/pull state) are a version byte
// followed by the value as a big-endian int64.
const (
	msgVersion = 1
	msgLen     = 9
)

func encodeValue(v int64) []byte {
	b := make([]byte, msgLen)
	b[0] = msgVersion
	binary.BigEndian.PutUint64(b[1:], uint64(v))
	return b
}

func decodeValue(b []byte) (int64, bool) {
	if len(b) != msgLen || b[0] != msgVersion {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[1:])), true
}

// delegate plugs the counter into memberlist: raised values are broadcast,
// and full state is exchanged on push/pull. Merging is max.
type delegate struct {
	counter *durableCounter
	queue   *memberlist.TransmitLimitedQueue
	log     *slog.Logger
	// ml is the node's memberlist once it runs; push sends a value a
	// client set straight to up to eagerFanout members; nil turns it off.
	ml   *atomic.Pointer[memberlist.Memberlist]
	push bool
}

// eagerFanout bounds how many members a node sends a value a client set
// at once, besides gossiping it: all of them in a small cluster; in a large
// one, gossip carries it on from those.
const eagerFanout = 8

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate: nodes carry no metadata.
func (d *delegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg implements memberlist.Delegate: a broadcast value is merged.
func (d *delegate) NotifyMsg(b []byte) { d.merge(b, "broadcast") }

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate: the durable value.
func (d *delegate) LocalState(join bool) []byte { return encodeValue(d.counter.getDurable()) }

// MergeRemoteState implements memberlist.Delegate: the peer's value is merged.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.merge(buf, "push/pull") }

func (d *delegate) merge(b []byte, via string) {
	v, ok := decodeValue(b)
	if !ok {
		d.log.Warn("ignoring malformed gossip message", "via", via, "len", len(b))
		return
	}
	d.counter.merge(v)
}

// broadcast queues v for gossip, replacing any older value still queued.
// A value a client set on this node (fromSet) is also sent at once to up
// to eagerFanout other members, chosen at random: gossip piggybacks on its
// rounds and misses some, which made the slowest of sets wait for a
// push/pull (docs/node.md "The node: command line, HTTP API and admin API"). Values merged from peers are only
// gossiped, or every node would send every value to every other.
func (d *delegate) broadcast(v int64, fromSet bool) {
	msg := encodeValue(v)
	d.queue.QueueBroadcast(valueBroadcast(msg))
	if !fromSet || !d.push || d.ml == nil {
		return
	}
	ml := d.ml.Load()
	if ml == nil {
		return
	}
	self := ml.LocalNode().Name
	var peers []*memberlist.Node
	for _, m := range ml.Members() {
		if m.Name != self {
			peers = append(peers, m)
		}
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	for _, m := range peers[:min(len(peers), eagerFanout)] {
		if err := ml.SendBestEffort(m, msg); err != nil {
			d.log.Debug("eager push failed", "to", m.Name, "err", err)
		}
	}
}

// valueBroadcast is a gossiped counter value. Values only rise, so a newer
// one supersedes any still queued.
type valueBroadcast []byte

var _ memberlist.NamedBroadcast = valueBroadcast(nil)

// Invalidates implements memberlist.Broadcast.
func (b valueBroadcast) Invalidates(other memberlist.Broadcast) bool {
	_, ok := other.(valueBroadcast)
	return ok
}

// Name implements memberlist.NamedBroadcast.
func (b valueBroadcast) Name() string { return "counter" }

// Message implements memberlist.Broadcast.
func (b valueBroadcast) Message() []byte { return b }

// Finished implements memberlist.Broadcast.
func (b valueBroadcast) Finished() {}

// memberlistConfig returns memberlist's configuration for a cluster on
// loopback.
func memberlistConfig(s *settings, d *delegate, ms *memberSet, t memberlist.Transport) *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.Name = s.Name
	c.BindAddr = s.gossip.Addr().String()
	c.BindPort = int(s.gossip.Port())
	c.AdvertiseAddr = c.BindAddr
	c.AdvertisePort = c.BindPort
	c.Transport = t
	if !s.bug.leavesGossipOut() { // no-gossip
		c.Delegate = d
	}
	c.Events = ms

	c.GossipInterval = s.GossipInterval
	c.PushPullInterval = s.PushPullInterval
	c.ProbeInterval = s.ProbeInterval
	c.ProbeTimeout = min(100*time.Millisecond, s.ProbeInterval/2)
	c.TCPTimeout = time.Second
	c.RetransmitMult = 3
	// Dead nodes are forgotten quickly (the rejoin loop brings them back),
	// and a restarted node may take its old name back at once.
	c.GossipToTheDeadTime = 2 * s.PushPullInterval
	c.DeadNodeReclaimTime = s.ProbeInterval
	return c
}

// logWriter turns memberlist's "[LEVEL] memberlist: msg" lines into slog
// records.
type logWriter struct{ log *slog.Logger }

// Write implements io.Writer; p is one log line.
func (w logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG] ", slog.LevelDebug},
		{"[INFO] ", slog.LevelInfo},
		{"[WARN] ", slog.LevelWarn},
		{"[ERR] ", slog.LevelError},
		{"[ERROR] ", slog.LevelError},
	} {
		if m, ok := strings.CutPrefix(msg, l.prefix); ok {
			msg, level = m, l.level
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.log.Log(context.Background(), level, msg, "component", "memberlist")
	return len(p), nil
}

var _ io.Writer = logWriter{}

// memberSet tracks the members memberlist sees alive (or suspect), from its
// events: memberlist's own Members() hands out nodes it keeps mutating.
type memberSet struct {
	mu sync.Mutex
	m  map[string]netip.AddrPort // by node name
}

var _ memberlist.EventDelegate = (*memberSet)(nil)

func newMemberSet() *memberSet { return &memberSet{m: make(map[string]netip.AddrPort)} }

// NotifyJoin implements memberlist.EventDelegate.
func (ms *memberSet) NotifyJoin(n *memberlist.Node) { ms.update(n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (ms *memberSet) NotifyUpdate(n *memberlist.Node) { ms.update(n) }

// NotifyLeave implements memberlist.EventDelegate.
func (ms *memberSet) NotifyLeave(n *memberlist.Node) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.m, n.Name)
}

func (ms *memberSet) update(n *memberlist.Node) {
	ip, _ := netip.AddrFromSlice(n.Addr)
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.m[n.Name] = netip.AddrPortFrom(ip.Unmap(), n.Port)
}

// names returns the members' names, sorted.
func (ms *memberSet) names() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	names := make([]string, 0, len(ms.m))
	for n := range ms.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// has reports whether a member has address a.
func (ms *memberSet) has(a netip.AddrPort) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.m {
		if m == a {
			return true
		}
	}
	return false
}

// hasAll reports whether every address in as is a member's.
func (ms *memberSet) hasAll(as []netip.AddrPort) bool {
	for _, a := range as {
		if !ms.has(a) {
			return false
		}
	}
	return true
}

// rejoin joins every configured peer that is not among the members,
// concurrently, and reports how many it reached.
func rejoin(ml *memberlist.Memberlist, members *memberSet, peers []netip.AddrPort, log *slog.Logger) int {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		joined int
	)
	for _, p := range peers {
		if members.has(p) {
			continue
		}
		wg.Go(func() {
			n, err := ml.Join([]string{p.String()})
			if err != nil {
				log.Debug("cannot join peer", "peer", p, "err", err)
				return
			}
			log.Info("joined peer", "peer", p)
			mu.Lock()
			joined += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return joined
}

// rejoinLoop calls rejoin now and then every interval until ctx is done:
// memberlist alone never heals a partition that outlasted dead-node reaping.
// b is a deliberate bug, or nil.
func rejoinLoop(ctx context.Context, ml *memberlist.Memberlist, members *memberSet, peers []netip.AddrPort, interval time.Duration, b *bug, log *slog.Logger) {
	if len(peers) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rejoin(ml, members, peers, log)
		if b.stopsRejoining(members.hasAll(peers)) { // no-rejoin
			log.Info("cluster formed: no longer re-joining peers")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
