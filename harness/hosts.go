package harness

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/runstore"
)

// openFleet connects to the run's SSH hosts (docs/ssh-hosts.md "Nodes on SSH hosts"), runs the preflight (a host that fails it refuses the run:
// lab.ErrPreflight, before any node starts), removes what dead runs
// left there, and returns each node's addresses. sched is the run's
// schedule: what it injects decides what the hosts must have.
func (r *runner) openFleet(ctx context.Context, sched nemesis.Schedule) ([]runstore.NodeAddrs, error) {
	start := time.Now()
	opts := lab.FleetOptions{
		Nft:   sched.NetworkFaults(),
		Arch:  strings.Contains(r.cfg.NodeCmd, "{self}"),
		Delay: delays(sched),
		Logf:  r.logf,
	}
	hosts := r.cfg.usedHosts()
	f, err := lab.OpenFleet(ctx, hosts, nodeNames(r.cfg.Nodes), opts)
	if err != nil {
		if f != nil {
			f.Close(context.WithoutCancel(ctx), nil)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	r.fleet = f
	r.rec.HostsTag = f.Tag()
	addrs := make([]runstore.NodeAddrs, len(hosts.Hosts))
	for i, h := range hosts.Hosts {
		addrs[i] = runstore.NodeAddrs{
			HTTP:   h.NodeAddr + ":" + strconv.Itoa(h.HTTPPort),
			Gossip: h.NodeAddr + ":" + strconv.Itoa(h.GossipPort),
		}
	}
	r.logf("network: %d SSH hosts ready in %s (run tag %s): faults by nftables on each host",
		len(addrs), time.Since(start).Round(time.Millisecond), f.Tag())
	return addrs, nil
}

// install puts what the nodes need on their hosts: the admin token, this
// binary when the node command runs it ({self}), and the node command's
// executable when the hosts file asks for it (upload_node_cmd).
func (r *runner) install(ctx context.Context, cl *cluster, sched nemesis.Schedule) error {
	start := time.Now()
	var self, cmd string
	if strings.Contains(r.cfg.nodeCommand(), "{self}") || delays(sched) { // the delayers are this binary
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		self = exe
	}
	if r.cfg.Hosts.UploadNodeCmd {
		for i := range cl.specs {
			p := r.fleet.Paths(cl.specs[i].Name)
			if cl.specs[i].Args[0] == p.Self {
				break // the node command is this binary, uploaded as self
			}
			cmd = cl.specs[i].Args[0]
			cl.specs[i].Args[0] = p.Cmd
		}
	}
	if err := r.fleet.Install(ctx, self, cmd, []byte(cl.token+"\n")); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	r.logf("hosts: node files installed in %s", time.Since(start).Round(time.Millisecond))
	return nil
}
