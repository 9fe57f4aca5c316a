package harness

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
)

// The cluster is what the nemesis acts on.
var _ nemesis.Cluster = (*cluster)(nil)

// Nodes returns the node names in order.
func (c *cluster) Nodes() []string { return c.names() }

// GossipAddr returns a node's gossip address.
func (c *cluster) GossipAddr(node string) string {
	s, _ := c.spec(node)
	return s.Addrs.Gossip
}

// httpAddrs returns every node's HTTP address, by name.
func (c *cluster) httpAddrs() map[string]string {
	m := make(map[string]string, len(c.specs))
	for _, s := range c.specs {
		m[s.Name] = s.Addrs.HTTP
	}
	return m
}

// Kill SIGKILLs a node and waits for it to exit.
func (c *cluster) Kill(ctx context.Context, node string) error {
	p := c.proc(node)
	if p == nil {
		return fmt.Errorf("no node %q", node)
	}
	p.kill()
	return nil
}

// Crash SIGKILLs a node, waits for it to exit, and cuts the power of its
// data directory's file system: every write and directory change not yet
// fsynced is lost.
func (c *cluster) Crash(ctx context.Context, node string) (nemesis.CrashLoss, error) {
	p := c.proc(node)
	if p == nil {
		return nemesis.CrashLoss{}, fmt.Errorf("no node %q", node)
	}
	fs := c.disks[node]
	if fs == nil {
		return nemesis.CrashLoss{}, fmt.Errorf("%s's data directory is not on the power-loss file system", node)
	}
	if err := p.killAll(5 * time.Second); err != nil && c.logf != nil {
		// The node is dead; what is left of its group dies with SIGKILL
		// too. The crash goes ahead, as a failed crash would leave the
		// node down for the rest of the run.
		c.logf("crash %s: %v; crashing its disk anyway", node, err)
	}
	lost := fs.Crash()
	return nemesis.CrashLoss{Writes: lost.Writes, Bytes: int64(lost.Bytes), Entries: lost.Entries}, nil
}

// Restart starts a killed node again, with the same name, addresses and
// data directory, and waits until its HTTP API answers (it may not see
// its peers yet: a partition may be in force) and it proves to be this
// run's node (cluster.owned).
func (c *cluster) Restart(ctx context.Context, node string) error {
	if g := c.gate(node); g != nil {
		g.close() // the node's clients wait until it is read
		defer g.open()
	}
	p := c.proc(node)
	if p == nil || !p.running() {
		var err error
		if p, err = c.startNode(node); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitReady(rctx, c.http, p, 0); err != nil {
		return err
	}
	if err := c.owned(rctx, p); err != nil {
		return err
	}
	if c.afterRestart != nil {
		c.afterRestart(ctx, node)
	}
	return nil
}

// Pause stops a node with SIGSTOP.
func (c *cluster) Pause(ctx context.Context, node string) error {
	return c.signal(node, syscall.SIGSTOP)
}

// Resume continues a paused node with SIGCONT.
func (c *cluster) Resume(ctx context.Context, node string) error {
	return c.signal(node, syscall.SIGCONT)
}

func (c *cluster) signal(node string, sig syscall.Signal) error {
	p := c.proc(node)
	if p == nil {
		return fmt.Errorf("no node %q", node)
	}
	return p.signal(sig)
}

// schedule builds the run's fault schedule: the scripted one, else one
// generated from the seed for the kinds asked for,
// spanning the expected client phase. It returns nil when no fault is asked
// for.
func (cfg *Config) schedule(nodes []string) (nemesis.Schedule, error) {
	if cfg.Script != "" {
		s, err := nemesis.ParseSchedule(strings.NewReader(cfg.Script), nodes, cfg.Seed)
		if err != nil {
			return nil, fieldErr("nemesis_schedule", "%s: %v", cmp.Or(cfg.NemesisSchedule, "the script"), err)
		}
		return s, nil
	}
	if len(cfg.Nemesis) == 0 {
		return nil, nil
	}
	s, err := nemesis.Generate(cfg.Seed, cfg.Nemesis, cfg.NemesisInterval, cfg.expectedClientPhase(), nodes)
	if err != nil {
		return nil, fieldErr("nemesis", "%v", err)
	}
	return s, nil
}

// expectedClientPhase is how long the clients should take at their rate,
// or a minute when they run back to back.
func (cfg *Config) expectedClientPhase() time.Duration {
	if cfg.Rate <= 0 {
		return max(time.Minute, cfg.Workload.Duration())
	}
	return max(time.Duration(float64(cfg.Requests)/cfg.Rate*float64(time.Second)), cfg.Workload.Duration())
}

// NemesisNone is --nemesis none: a run without faults.
const NemesisNone = "none"

// UseDefaultFaults sets Nemesis to the fault kinds a run injects when its
// user named none (docs/faults.md "Faults: the nemesis"): every kind of --nemesis
// all, and crash, that this network can inject for these nodes, so that a
// default run is never refused for a fault nobody asked for by name.
// NemesisLeftOut records each kind left out and why. Call it once the
// network, node command, disk and hosts are set.
func (cfg *Config) UseDefaultFaults() {
	cfg.Nemesis, cfg.NemesisDefault, cfg.NemesisLeftOut = nil, true, map[string]string{}
	leave := func(why string, kinds ...string) {
		for _, k := range kinds {
			if _, ok := cfg.NemesisLeftOut[k]; !ok {
				cfg.NemesisLeftOut[k] = why
			}
		}
	}
	network := cfg.network()
	if network == NetLoopback && !strings.Contains(cfg.NodeCmd, "{admin_token_file}") {
		leave("the node command passes no {admin_token_file}: the loopback network's faults go through the node's admin API", "partition", "delay", "loss")
	}
	if network == NetHosts {
		leave("not on SSH hosts (no power-loss file system there)", nemesis.FCrash)
		leave("on SSH hosts it needs NFQUEUE on every host: name it with --nemesis to have the preflight check it", "delay")
		if cfg.Hosts != nil && cfg.usedHosts().SharedAddrs() != "" {
			leave("two nodes share an address, which rules by address cannot cut apart", "partition", "delay", "loss")
		}
	}
	switch {
	case cfg.Disk == DiskPlain:
		leave("--disk plain cannot lose unsynced writes", nemesis.FCrash)
	case !lab.Inside():
		leave("it needs the power-loss file system, mounted only in the lab's private namespaces (--net lab or auto)", nemesis.FCrash)
	case !fuseUsable():
		leave("/dev/fuse cannot be opened here, and the power-loss file system needs it", nemesis.FCrash)
	}
	nodes := nodeNames(max(cfg.Nodes, 1))
	for _, k := range nemesis.DefaultKinds() {
		if _, out := cfg.NemesisLeftOut[k]; out {
			continue
		}
		// A kind the cluster cannot take (a partition of one node) is
		// left out too, in the nemesis's own words.
		if _, err := nemesis.Generate(cfg.Seed, []string{k}, time.Second, time.Minute, nodes); err != nil {
			leave(err.Error(), k)
			continue
		}
		cfg.Nemesis = append(cfg.Nemesis, k)
	}
	if len(cfg.NemesisLeftOut) == 0 {
		cfg.NemesisLeftOut = nil
	}
}

// fuseUsable reports whether this process can open /dev/fuse, which the
// power-loss file system mounts through.
func fuseUsable() bool {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
