package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/google/nftables"

	"github.com/ec-counter/ec-counter/api"
)

// hostDelays is one line a Fleet sends to a host's delayer: the delay of
// every link of the host's node, by peer address.
type hostDelays struct {
	In  map[string]api.DirFaults `json:"in,omitempty"`  // on packets from the peer
	Out map[string]api.DirFaults `json:"out,omitempty"` // on packets to the peer
}

// ServeDelays is the delayer of one node on an SSH host (docs/ssh-hosts.md "Nodes on SSH hosts"), run there by the harness as `ec-counter host-delayer`. It
// makes nftables table ip <table> whose input and output chains send the
// node's delayed links (addr is the node's address) to netfilter queue
// num, where the same delayer as the lab's holds each packet for its
// link's delay ± jitter. Each line read from in replaces every delay (a
// hostDelays object); it answers "ok" or "error: ..." on out once the
// rules are in force. It deletes its table and returns when in ends: when
// the harness's SSH session does, even if the harness died.
func ServeDelays(ctx context.Context, table string, num uint16, addr netip.Addr, in io.Reader, out io.Writer) (err error) {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: table})
	accept := nftables.ChainPolicyAccept
	chains := map[bool]*nftables.Chain{}
	for _, c := range []struct {
		in   bool
		name string
		hook *nftables.ChainHook
	}{{true, "din", nftables.ChainHookInput}, {false, "dout", nftables.ChainHookOutput}} {
		chains[c.in] = conn.AddChain(&nftables.Chain{
			Name: c.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: c.hook, Priority: nftables.ChainPriorityFilter, Policy: &accept,
		})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("create nftables table ip %s: %w", table, err)
	}
	defer func() {
		conn.DelTable(t)
		if derr := conn.Flush(); derr != nil && err == nil {
			err = fmt.Errorf("delete nftables table ip %s: %w", table, derr)
		}
	}()
	d, err := startDelayer(num)
	if err != nil {
		return err
	}
	defer d.close()

	apply := func(line []byte) error {
		var hd hostDelays
		if err := json.Unmarshal(line, &hd); err != nil {
			return err
		}
		delays := map[linkKey]delaySpec{}
		type rule struct {
			in   bool
			peer netip.Addr
		}
		var rules []rule
		for _, dir := range []struct {
			in    bool
			links map[string]api.DirFaults
		}{{true, hd.In}, {false, hd.Out}} {
			for p, f := range dir.links {
				peer, err := netip.ParseAddr(p)
				if err != nil || !peer.Is4() {
					return fmt.Errorf("peer %q is not an IPv4 address", p)
				}
				if err := f.Validate(); err != nil {
					return err
				}
				spec := delaySpec{time.Duration(f.DelayMS) * time.Millisecond, time.Duration(f.JitterMS) * time.Millisecond}
				if spec.delay == 0 && spec.jitter == 0 {
					continue
				}
				k := linkKey{addr, peer}
				if dir.in {
					k = linkKey{peer, addr}
				}
				delays[k] = spec
				rules = append(rules, rule{dir.in, peer})
			}
		}
		// Delays first, so that every packet the new rules queue finds its
		// delay (a queued packet without one passes at once).
		d.setDelays(delays)
		conn.FlushChain(chains[true])
		conn.FlushChain(chains[false])
		for _, r := range rules {
			e := append(matchAddr(!r.in, r.peer), queueTarget(num))
			conn.AddRule(&nftables.Rule{Table: t, Chain: chains[r.in], Exprs: e})
		}
		return conn.Flush()
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := apply(sc.Bytes()); err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
			continue
		}
		fmt.Fprintln(out, "ok")
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
