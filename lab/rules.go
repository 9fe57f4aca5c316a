package lab

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/ec-counter/ec-counter/api"
)

// ruleset is a lab's nftables table on the router (this namespace), named
// lab<L>, with a base chain on the forward hook. Every host has four chains
// of its own, holding its share of the faults, so that installing one
// host's share never touches another's:
//
//	in-i    drops and losses of traffic from a peer to host i
//	out-i   drops and losses of traffic from host i to a peer
//	din-i   traffic from a peer to host i to delay (queued to the delayer)
//	dout-i  traffic from host i to a peer to delay
//
// The base chain jumps to every host's in and out chains first, then to
// the delay chains, so a packet is dropped or lost before it is queued
// (a queued packet leaves the hook).
type ruleset struct {
	conn    *nftables.Conn
	table   *nftables.Table
	chain   map[string]*nftables.Chain
	queue   uint16
	pending int // messages queued in conn since the last flush
}

// maxBatch bounds the messages of one netlink batch: the kernel acknowledges
// each, and more acknowledgements than the socket's receive buffer holds
// (net.core.rmem_max, which a user namespace cannot raise) fail the batch
// with ENOBUFS.
const maxBatch = 100

// queued counts one message and sends the batch when it is full.
func (r *ruleset) queued() error {
	r.pending++
	if r.pending < maxBatch {
		return nil
	}
	return r.flush()
}

// flush sends the messages queued so far.
func (r *ruleset) flush() error {
	r.pending = 0
	return r.conn.Flush()
}

// lossScale is the resolution of loss: numgen draws in [0, lossScale).
const lossScale = 10000

func chainName(kind string, h *Host) string { return fmt.Sprintf("%s-%d", kind, h.index) }

// newRuleset creates the lab's table and chains, empty of faults.
func newRuleset(id int, hosts []*Host) (*ruleset, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("lab: nftables: %w", err)
	}
	r := &ruleset{conn: conn, chain: map[string]*nftables.Chain{}, queue: uint16(id)}
	r.table = conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: fmt.Sprintf("lab%d", id)})
	accept := nftables.ChainPolicyAccept
	base := conn.AddChain(&nftables.Chain{
		Name: "forward", Table: r.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	r.pending = 2
	for _, kind := range []string{"in", "out", "din", "dout"} {
		for _, h := range hosts {
			name := chainName(kind, h)
			r.chain[name] = conn.AddChain(&nftables.Chain{Name: name, Table: r.table})
			if err == nil {
				err = r.queued()
			}
		}
	}
	for _, kind := range []string{"in", "out", "din", "dout"} {
		for _, h := range hosts {
			e := matchAddr(kind == "in" || kind == "din", h.Addr)
			e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: chainName(kind, h)})
			conn.AddRule(&nftables.Rule{Table: r.table, Chain: base, Exprs: e})
			if err == nil {
				err = r.queued()
			}
		}
	}
	if err == nil {
		err = r.flush()
	}
	if err != nil {
		r.pending = 0
		_ = r.close() // whatever part of the table was made
		return nil, fmt.Errorf("lab: create nftables table %s: %w", r.table.Name, err)
	}
	return r, nil
}

// setShare replaces host h's four chains with share s: atomically when
// they take fewer than maxBatch rules (a host with faults towards up to
// about 45 peers), else in consecutive batches.
func (r *ruleset) setShare(h *Host, s share) error {
	var err error
	for _, kind := range []string{"in", "out", "din", "dout"} {
		r.conn.FlushChain(r.chain[chainName(kind, h)])
		r.pending++
	}
	for peer, lf := range s {
		// "in": traffic from peer to h, keyed on its source; "out": from
		// h to peer, keyed on its destination.
		for _, d := range []struct {
			kind  string
			bySrc bool
			f     *api.DirFaults
		}{{"in", true, lf.In}, {"out", false, lf.Out}} {
			if !d.f.Active() {
				continue
			}
			add := func(kind string, tail ...expr.Any) {
				e := append(matchAddr(!d.bySrc, peer.Addr), tail...)
				r.conn.AddRule(&nftables.Rule{Table: r.table, Chain: r.chain[chainName(kind, h)], Exprs: e})
				if err == nil {
					err = r.queued()
				}
			}
			switch {
			case d.f.Drop:
				add(d.kind, &expr.Verdict{Kind: expr.VerdictDrop})
				continue
			case d.f.Loss > 0:
				add(d.kind, lossExprs(d.f.Loss)...)
			}
			if d.f.DelayMS > 0 || d.f.JitterMS > 0 {
				add("d"+d.kind, queueTarget(r.queue))
			}
		}
	}
	if err == nil {
		err = r.flush()
	}
	if err != nil {
		r.pending = 0
		return fmt.Errorf("lab: install %s's faults: %w", h.Name, err)
	}
	return nil
}

// close deletes the table, and with it every chain and rule.
func (r *ruleset) close() error {
	r.conn.DelTable(r.table)
	if err := r.conn.Flush(); err != nil {
		return fmt.Errorf("lab: delete nftables table %s: %w", r.table.Name, err)
	}
	return nil
}

// matchAddr matches the IPv4 destination (dst) or source address a.
func matchAddr(dst bool, a netip.Addr) []expr.Any {
	off := uint32(12) // saddr
	if dst {
		off = 16
	}
	b := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

// lossExprs drops a packet with probability p: numgen random mod 10000 <
// p·10000. numgen writes host byte order, and cmp compares bytes, so the
// number is turned big-endian first, as nft itself does.
func lossExprs(p float64) []expr.Any {
	threshold := uint32(math.Round(p * lossScale))
	var data [4]byte
	binary.BigEndian.PutUint32(data[:], threshold)
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: lossScale, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: data[:]},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// queueTarget sends the packet to netfilter queue num. This kernel's
// nftables may lack its own queue statement (nft_queue), so the rule uses
// the xtables NFQUEUE target through nft_compat, as iptables-nft does:
// revision 3, struct xt_NFQ_info_v3 {u16 queuenum, queues_total, flags} in
// host byte order, padded to 8 bytes.
func queueTarget(num uint16) expr.Any {
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
