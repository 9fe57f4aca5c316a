package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ec-counter/ec-counter/api"
)

// Fleet is one run's SSH hosts (docs/ssh-hosts.md "Nodes on SSH hosts"): one node per
// entry of the hosts file. Everything a run puts on a host is tagged with
// the run's tag, ecc_<12 hex digits>: its directory <dir>/<tag>, its lock
// files <dir>/<tag>.<node>.lock, its nftables tables inet <tag>_<node>, and
// its processes, whose command lines name the run's directory. The lock is
// held by an SSH session for as long as the run lives, so the next run
// against the host tells a dead run's leftovers (removed, and said) from a
// live run's (never touched). The same session holds a lock per node port,
// <dir>/ports/<node_addr>_<port>.lock, which a second run on the same
// ports finds held and is refused.
type Fleet struct {
	tag    string
	hosts  []*fleetHost
	byIP   map[netip.Addr]*fleetHost
	logf   func(format string, args ...any)
	delay  bool // every host runs a delayer
	closed bool
}

// fleetHost is one entry of the fleet: the node it runs, and the SSH
// connection to its host.
type fleetHost struct {
	node     string
	r        *remote
	dir      string // the host's dir, absolute
	addr     netip.Addr
	lifeline *session // holds the run's lock on the host
	lifePID  int      // the lifeline's process on the host
	delayer  *session // the host's delayer; nil unless the fleet delays

	mu     sync.Mutex
	faults bool // its table may exist
}

// runDir is where this run keeps this node's files on the host.
func (h *fleetHost) runDir(tag string) string { return path.Join(h.dir, tag, h.node) }

// table is the name of this node's nftables table.
func (h *fleetHost) table(tag string) string { return tag + "_" + h.node }

// ErrPreflight marks a run refused because a host is not fit for it
// (docs/ssh-hosts.md "Nodes on SSH hosts"): a usage error, reported before any node
// starts.
var ErrPreflight = errors.New("a host failed the preflight")

// FleetOptions says what a run needs from its hosts.
type FleetOptions struct {
	// Nft requires nftables on every host: the schedule has network faults.
	Nft bool
	// Arch requires every host to run this binary (it will be uploaded).
	Arch bool
	// Delay runs a delayer on every host (this binary, host-delayer),
	// which needs NFQUEUE there, and this binary uploaded (Install's self).
	Delay bool
	// Logf prints progress and what the sweep of dead runs removed.
	Logf func(format string, args ...any)
}

// OpenFleet connects to every host of hf (node i on hf.Hosts[i], named by
// nodes[i]), checks each (Preflight: a failure is ErrPreflight, and
// nothing has started), takes the run's locks, removes what dead runs
// left on the hosts, and makes the run's directories. Close undoes all of
// it.
func OpenFleet(ctx context.Context, hf *HostsFile, nodes []string, opts FleetOptions) (_ *Fleet, err error) {
	if len(nodes) != len(hf.Hosts) {
		return nil, fmt.Errorf("%d nodes for %d hosts", len(nodes), len(hf.Hosts))
	}
	tagBytes := make([]byte, 6)
	rand.Read(tagBytes)
	f := &Fleet{tag: "ecc_" + hex.EncodeToString(tagBytes), byIP: map[netip.Addr]*fleetHost{}, logf: opts.Logf, delay: opts.Delay}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	f.hosts = make([]*fleetHost, len(nodes))
	reports := make([]HostReport, len(nodes))
	var g errgroup.Group
	for i, spec := range hf.Hosts {
		g.Go(func() error {
			rep, r := checkHost(ctx, spec, opts, false)
			reports[i] = rep
			if r != nil {
				f.hosts[i] = &fleetHost{node: nodes[i], r: r, dir: rep.Dir, addr: netip.MustParseAddr(spec.NodeAddr)}
			}
			return nil
		})
	}
	g.Wait()
	defer func() {
		if err != nil {
			f.Close(context.WithoutCancel(ctx), nil)
		}
	}()
	problems := make([]string, len(reports))
	for i, rep := range reports {
		problems[i] = strings.Join(rep.Problems(), "; ")
	}
	if err := preflightFailed(hf, problems); err != nil {
		return f, err
	}
	for _, h := range f.hosts {
		f.byIP[h.addr] = h
	}
	// Locks first: a concurrent sweep must see this run alive before its
	// directory exists, and a concurrent run must find its ports taken.
	held := make([]string, len(f.hosts))
	if err := f.each(ctx, func(ctx context.Context, h *fleetHost) (err error) {
		held[slices.Index(f.hosts, h)], err = f.lock(ctx, h)
		return err
	}); err != nil {
		return f, err
	}
	if err := preflightFailed(hf, held); err != nil {
		return f, err
	}
	if err := f.each(ctx, func(ctx context.Context, h *fleetHost) error {
		removed, left, err := sweep(ctx, h.r, h.dir, h.r.spec.Nft)
		for _, l := range removed {
			f.logf("hosts: %s: a dead run's leftover removed: %s", h.r, l)
		}
		for _, l := range left {
			f.logf("hosts: %s: a dead run's leftover could NOT be removed: %s", h.r, l)
		}
		return err
	}); err != nil {
		return f, err
	}
	// Then the ports, once dead runs' nodes are gone: whatever still
	// listens on them is another process, whose answers would pass for
	// this run's nodes'.
	busy := make([]string, len(f.hosts))
	if err := f.each(ctx, func(ctx context.Context, h *fleetHost) error {
		uses, err := portUses(ctx, h.r, h.dir, false)
		busy[slices.Index(f.hosts, h)] = strings.Join(uses.problems(h.r.spec), "; ")
		return err
	}); err != nil {
		return f, err
	}
	if err := preflightFailed(hf, busy); err != nil {
		return f, err
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("harness %s pid %d started %s", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	err = f.each(ctx, func(ctx context.Context, h *fleetHost) error {
		_, err := h.r.run(ctx, fmt.Sprintf("mkdir -p %s/data && echo %s > %s/info",
			q(h.runDir(f.tag)), q(info), q(h.runDir(f.tag))), nil)
		return err
	})
	return f, err
}

// preflightFailed is ErrPreflight naming each host whose problem (by
// index, "" for none) refuses the run, or nil when there is none.
func preflightFailed(hf *HostsFile, problems []string) error {
	var failed []string
	for i, p := range problems {
		if p != "" {
			failed = append(failed, fmt.Sprintf("host %d (%s): %s", i+1, hf.Hosts[i].Address, p))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w (see 'ec-counter doctor --hosts FILE'):\n  %s", ErrPreflight, strings.Join(failed, "\n  "))
}

// each runs fn on every host at once and returns the first error.
func (f *Fleet) each(ctx context.Context, fn func(context.Context, *fleetHost) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, h := range f.hosts {
		g.Go(func() error { return fn(ctx, h) })
	}
	return g.Wait()
}

// lifelineScript takes a run's locks on a host and holds them for as long
// as its standard input lasts: the run's lock, <dir>/<tag>.<node>.lock,
// then each node port's, <dir>/ports/<addr>_<port>.lock, without waiting,
// writing the run's tag in each. It prints "locked PID" (the process that
// holds them: cat, which ends when the harness's SSH session does, even if
// the harness died), or "held ADDR_PORT TAG INFO" for a port lock another
// live run holds. Runs as root: sh -c SCRIPT sh DIR TAG NODE ADDR_PORT...
const lifelineScript = `dir=$1 tag=$2 node=$3; shift 3
cd "$dir" && mkdir -p ports || exit 1
exec 3>>"$tag.$node.lock" && flock 3 || exit 1
n=4
for p in "$@"; do
  l="ports/$p.lock"
  eval "exec $n>>\"\$l\"" || exit 1
  if ! flock -n $n; then
    t=$(head -c 64 "$l" 2>/dev/null | tr -cd 'a-z0-9_')
    info=$(cat "$t"/*/info 2>/dev/null | head -n 1)
    echo "held $p $t $info"
    rm -f "$tag.$node.lock"
    exit 0
  fi
  n=$((n + 1))
done
for p in "$@"; do echo "$tag" >"ports/$p.lock"; done
echo "locked $$"
exec cat >/dev/null
`

// portLock names a node port's lock file in ports/.
func portLock(addr netip.Addr, port int) string { return fmt.Sprintf("%s_%d", addr, port) }

// lock takes the node's locks (lifelineScript) through a session that
// lives as long as the SSH connection. It returns why the run cannot have
// the host ("" when it has its locks): a port held by a live run.
func (f *Fleet) lock(ctx context.Context, h *fleetHost) (string, error) {
	spec := h.r.spec
	s, err := h.r.start(ctx, "exec sh -c "+q(lifelineScript)+" sh "+
		qJoin(h.dir, f.tag, h.node, portLock(h.addr, spec.HTTPPort), portLock(h.addr, spec.GossipPort)))
	if err != nil {
		return "", fmt.Errorf("take the run's lock: %w", err)
	}
	l, err := s.exchange(ctx, nil, 10*time.Second)
	if pid, ok := strings.CutPrefix(l, "locked "); err == nil && ok {
		if h.lifePID, err = strconv.Atoi(pid); err == nil {
			h.lifeline = s
			return "", nil
		}
	}
	s.s.Close()
	if held, ok := strings.CutPrefix(l, "held "); err == nil && ok {
		port, rest, _ := strings.Cut(held, " ")
		port = port[strings.LastIndex(port, "_")+1:]
		tag, info, _ := strings.Cut(rest, " ")
		return heldBy(port, h.addr.String(), tag, printable(info)), nil
	}
	return "", fmt.Errorf("%s: take the run's lock in %s: %q, %v", h.r, h.dir, printable(l), err)
}

// Tag returns the run's tag on the hosts.
func (f *Fleet) Tag() string { return f.tag }

// host returns the entry of node.
func (f *Fleet) host(node string) *fleetHost {
	for _, h := range f.hosts {
		if h.node == node {
			return h
		}
	}
	return nil
}

// NodePaths are where a node's files are on its host.
type NodePaths struct {
	Self      string // this binary's copy, when Install uploaded it
	Cmd       string // the node command's copy, when Install uploaded it
	DataDir   string
	TokenFile string
}

// Paths returns node's paths on its host.
func (f *Fleet) Paths(node string) NodePaths {
	h := f.host(node)
	if h == nil {
		return NodePaths{}
	}
	dir := h.runDir(f.tag)
	return NodePaths{
		Self: path.Join(dir, "ec-counter"), Cmd: path.Join(dir, "node-cmd"),
		DataDir: path.Join(dir, "data"), TokenFile: path.Join(dir, "admin-token"),
	}
}

// Install puts the run's files on every host: the admin token, this
// binary (self) when not "", and the node command's executable (cmd)
// when not "". Executables go to a cache in each host's dir, by content,
// so a second run uploads nothing, and are linked from the run's directory.
func (f *Fleet) Install(ctx context.Context, self, cmd string, token []byte) error {
	type exe struct{ local, sum, name string }
	var exes []exe
	for _, e := range []exe{{local: self, name: "ec-counter"}, {local: cmd, name: "node-cmd"}} {
		if e.local == "" {
			continue
		}
		sum, err := fileSum(e.local)
		if err != nil {
			return err
		}
		e.sum = sum
		exes = append(exes, e)
	}
	return f.each(ctx, func(ctx context.Context, h *fleetHost) error {
		p := f.Paths(h.node)
		if _, err := h.r.run(ctx, fmt.Sprintf("umask 077 && cat > %s", q(p.TokenFile)), strings.NewReader(string(token))); err != nil {
			return fmt.Errorf("write the admin token: %w", err)
		}
		for _, e := range exes {
			cached := path.Join(h.dir, "bin", e.sum)
			if _, err := h.r.run(ctx, "test -x "+q(cached), nil); err != nil {
				var ee *ssh.ExitError
				if !errors.As(err, &ee) {
					return err
				}
				if err := h.r.upload(ctx, e.local, cached); err != nil {
					return err
				}
			}
			if _, err := h.r.run(ctx, fmt.Sprintf("ln -sf %s %s", q(cached), q(path.Join(h.runDir(f.tag), e.name))), nil); err != nil {
				return err
			}
		}
		if f.delay {
			if self == "" {
				return errors.New("delay needs this binary on the hosts (Install's self)")
			}
			return f.startDelayer(ctx, h)
		}
		return nil
	})
}

// startDelayer starts h's delayer over an SSH session of its own and waits
// until its rules and queue are ready (its answer to an empty line of
// delays).
func (f *Fleet) startDelayer(ctx context.Context, h *fleetHost) error {
	sum := sha256.Sum256([]byte(f.tag + h.node))
	queue := 1000 + (int(sum[0])<<8|int(sum[1]))%64000 // spread, so runs rarely share one
	s, err := h.r.start(ctx, fmt.Sprintf("exec %s host-delayer --table %s --queue %d --addr %s 2>&1",
		q(f.Paths(h.node).Self), q(h.table(f.tag)+"_delay"), queue, h.addr))
	if err != nil {
		return fmt.Errorf("start the delayer: %w", err)
	}
	h.delayer = s
	if err := setDelays(ctx, s, hostDelays{}); err != nil {
		return fmt.Errorf("%s: start the delayer: %w", h.r, err)
	}
	return nil
}

// setDelays sends a host's delayer every delay of its node and waits for
// its answer: "ok" once its rules are in force.
func setDelays(ctx context.Context, s *session, hd hostDelays) error {
	line, err := json.Marshal(hd)
	if err != nil {
		return err
	}
	a, err := s.exchange(ctx, line, 10*time.Second)
	switch {
	case err != nil:
		return fmt.Errorf("the delayer: %w", err)
	case a != "ok":
		return errors.New(strings.TrimPrefix(a, "error: "))
	}
	return nil
}

// fileSum returns the first 16 hex digits of a file's SHA-256.
func fileSum(name string) (string, error) {
	file, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Proc is a node process on its host, started detached: in a session and
// process group of its own, so it outlives the SSH session that started
// it, and a signal to its group reaches whatever it started.
type Proc struct {
	h    *fleetHost
	pgid int
	done chan struct{}
	err  error
}

// Start starts node's command (args, already expanded) on its host, its
// standard output and error appended to its log there, and watches it
// until it exits.
func (f *Fleet) Start(ctx context.Context, node string, args []string) (*Proc, error) {
	h := f.host(node)
	if h == nil {
		return nil, fmt.Errorf("hosts: no node %q", node)
	}
	// The wrapper records the exit status. It ignores the signals that
	// stop a node (sent to the whole group), so that it lives to write it;
	// the node, started in a subshell that restores them, does not.
	wrapper := "trap '' TERM INT HUP; (trap - TERM INT HUP; exec " + qJoin(args...) + ") & wait $!; echo $? > exit"
	// The run's directory is the wrapper's $0: its command line names it,
	// whatever the node's does, for the sweep of a dead run.
	cmd := fmt.Sprintf("cd %s && rm -f exit && { setsid sh -c %s %s >>log 2>&1 </dev/null & echo $!; }",
		q(h.runDir(f.tag)), q(wrapper), q(h.runDir(f.tag)+"/"))
	out, err := h.r.run(ctx, cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", node, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 1 {
		return nil, fmt.Errorf("start %s on %s: no pid (%q)", node, h.r, out)
	}
	p := &Proc{h: h, pgid: pid, done: make(chan struct{})}
	go p.watch(f.tag)
	return p, nil
}

// watchScript waits until process $1 has exited and prints the exit
// status its wrapper wrote in file $3 (nothing when a signal killed it).
// It also ends, printing "lifeline gone", once process $2, the run's
// lifeline on the host, has: a harness that died leaves no loop behind.
// Until /proc has no such process or shows it a zombie: an init that is
// slow to reap (some container inits take seconds) must not delay the
// news. Shell built-ins only, but for the sleep.
const watchScript = `while read -r l 2>/dev/null </proc/$1/stat; do
  s=${l##*) }; [ "${s%% *}" = Z ] && break
  read -r m 2>/dev/null </proc/$2/stat || m=
  case $m in *"(cat) "[!Z]*) ;; *) echo "lifeline gone"; exit 0 ;; esac
  sleep 0.05
done
cat "$3" 2>/dev/null || true
`

// watch waits on the host until the process has exited, and reads the
// exit status its wrapper wrote (none when a signal killed it).
func (p *Proc) watch(tag string) {
	defer close(p.done)
	cmd := "sh -c " + q(watchScript) + " sh " + qJoin(strconv.Itoa(p.pgid), strconv.Itoa(p.h.lifePID), path.Join(p.h.runDir(tag), "exit"))
	out, err := p.h.r.runUntil(context.Background(), cmd)
	switch status := strings.TrimSpace(string(out)); {
	case err != nil:
		p.err = fmt.Errorf("lost sight of it: %w", err)
	case status == "lifeline gone":
		p.err = errors.New("lost sight of it: the run's lock on its host was released")
	case status == "":
		p.err = errors.New("killed by a signal")
	case status != "0":
		p.err = fmt.Errorf("exit status %s", status)
	}
}

// Pid returns the process's id on its host (also its group's).
func (p *Proc) Pid() int { return p.pgid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended, once Done is closed: nil for exit status 0.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
	if name == "" {
		return fmt.Errorf("no name for signal %d", int(sig))
	}
	// kill -s NAME: dash (Debian's sh, under sudo) reads "-9 -- -PGID" wrong.
	_, err := p.h.r.run(ctx, fmt.Sprintf("kill -s %s -- -%d", name, p.pgid), nil)
	return err
}

// InNode reports false: faults are nftables rules on the hosts, in force
// whatever the node processes do.
func (f *Fleet) InNode() bool { return false }

// nftRefused is an nft command the host refused: nft -f applies a file
// atomically, so the node's faults did not change.
type nftRefused struct{ err error }

func (e *nftRefused) Error() string   { return e.err.Error() }
func (e *nftRefused) Unwrap() error   { return e.err }
func (e *nftRefused) Unchanged() bool { return true }

// SetFaults replaces node's share of the network faults with fs (docs/node.md "Admin API (fault injection)" body): one nft -f on its host, atomic, replacing the
// node's table: "in" faults in a chain on the input hook, by the peer's
// source address, "out" faults on the output hook, by its destination.
// Loss is nftables numgen; delay and jitter go to the host's delayer
// (FleetOptions.Delay), whose answer comes first.
func (f *Fleet) SetFaults(ctx context.Context, node string, fs api.FaultSet) error {
	h := f.host(node)
	if h == nil {
		return fmt.Errorf("hosts: no node %q", node)
	}
	byIP, err := fs.Validate()
	if err != nil {
		return fmt.Errorf("hosts: %s's fault set: %w", node, err)
	}
	script, err := f.nftScript(h, byIP)
	if err != nil {
		return err
	}
	// A step under way finishes even if ctx ends (the client phase did):
	// cut off halfway, it would leave the node's faults unknown, and a
	// delayer cut off mid-answer is of no more use.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = true
	if h.delayer != nil {
		hd := hostDelays{In: map[string]api.DirFaults{}, Out: map[string]api.DirFaults{}}
		for ip, lf := range byIP {
			if lf.In != nil && (lf.In.DelayMS > 0 || lf.In.JitterMS > 0) {
				hd.In[ip.String()] = api.DirFaults{DelayMS: lf.In.DelayMS, JitterMS: lf.In.JitterMS}
			}
			if lf.Out != nil && (lf.Out.DelayMS > 0 || lf.Out.JitterMS > 0) {
				hd.Out[ip.String()] = api.DirFaults{DelayMS: lf.Out.DelayMS, JitterMS: lf.Out.JitterMS}
			}
		}
		// The delays, then the drops and losses: two steps, so a failure
		// of the second leaves the faults unknown, not unchanged.
		if err := setDelays(ctx, h.delayer, hd); err != nil {
			return fmt.Errorf("hosts: set %s's delays: %w", node, err)
		}
	}
	if _, err := h.r.run(ctx, h.r.spec.Nft+" -f -", strings.NewReader(script)); err != nil {
		var ee *ssh.ExitError
		if errors.As(err, &ee) && h.delayer == nil { // else the delays did change
			return &nftRefused{fmt.Errorf("hosts: install %s's faults: %w", node, err)}
		}
		return fmt.Errorf("hosts: install %s's faults: %w", node, err)
	}
	return nil
}

// nftScript is the nft file that replaces h's table with the faults of
// byIP (no table when there are none).
func (f *Fleet) nftScript(h *fleetHost, byIP map[netip.Addr]api.LinkFaults) (string, error) {
	t := "inet " + h.table(f.tag)
	var b strings.Builder
	fmt.Fprintf(&b, "table %s\ndelete table %s\n", t, t)
	var in, out []string
	ips := make([]netip.Addr, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range ips {
		lf := byIP[ip]
		if peer := f.byIP[ip]; peer == nil || peer == h {
			return "", fmt.Errorf("hosts: %s's fault set names %s, which is not another node's address", h.node, ip)
		}
		for _, d := range []struct {
			rules *[]string
			match string
			f     *api.DirFaults
		}{
			// Both ends: several nodes may share a machine, each with an
			// address of its own.
			{&in, "ip saddr " + ip.String() + " ip daddr " + h.addr.String(), lf.In},
			{&out, "ip saddr " + h.addr.String() + " ip daddr " + ip.String(), lf.Out},
		} {
			switch {
			case !d.f.Active():
			case (d.f.DelayMS > 0 || d.f.JitterMS > 0) && !f.delay:
				return "", fmt.Errorf("hosts: %s: delay needs the hosts' delayers, which this run did not start", h.node)
			case d.f.Drop:
				*d.rules = append(*d.rules, d.match+" drop")
			case d.f.Loss > 0:
				*d.rules = append(*d.rules, fmt.Sprintf("%s numgen random mod %d < %d drop", d.match, lossScale, int(math.Round(d.f.Loss*lossScale))))
			}
		}
	}
	if len(in)+len(out) == 0 {
		return b.String(), nil
	}
	fmt.Fprintf(&b, "table %s {\n", t)
	for _, c := range []struct {
		name, hook string
		rules      []string
	}{{"in", "input", in}, {"out", "output", out}} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority -10; policy accept;\n", c.name, c.hook)
		for _, r := range c.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// Close removes the run from every host: its nftables tables, then, once
// the caller has stopped the nodes, it brings each node's log and data
// directory home (fetch, when not nil, names the local log file and data
// directory of a node), deletes the run's directory and lock, and closes
// the connections. It returns every error, joined. Only the first call
// does anything.
func (f *Fleet) Close(ctx context.Context, fetch func(node string) (log, data string)) error {
	if f.closed {
		return nil
	}
	f.closed = true
	var mu sync.Mutex
	var errs []error
	add := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, h := range f.hosts {
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer h.r.close()
			if h.lifeline == nil {
				return // nothing of this run is on the host
			}
			failed := false
			fail := func(err error) {
				failed = true
				add(err)
			}
			if h.delayer != nil { // it deletes its table and ends
				if err := h.delayer.close(10 * time.Second); err != nil {
					fail(fmt.Errorf("%s's delayer: %w", h.node, err))
				}
			}
			if h.faults {
				t := "inet " + h.table(f.tag)
				if _, err := h.r.run(ctx, h.r.spec.Nft+" -f -", strings.NewReader(fmt.Sprintf("table %s\ndelete table %s\n", t, t))); err != nil {
					fail(fmt.Errorf("remove %s's faults: %w", h.node, err))
				}
			}
			dir := h.runDir(f.tag)
			if fetch != nil {
				log, data := fetch(h.node)
				err := h.r.fetch(ctx, dir, func(name string) string {
					switch {
					case name == "log":
						return log
					case name == "data" || strings.HasPrefix(name, "data/"):
						return filepath.Join(data, strings.TrimPrefix(strings.TrimPrefix(name, "data"), "/"))
					}
					return ""
				})
				if err != nil {
					fail(fmt.Errorf("bring %s's log and data home: %w", h.node, err))
				}
			}
			// Whatever still runs from the node's directory (a start that
			// timed out after it had begun, say) goes before its files.
			if out, err := h.r.run(ctx, "sh -s", strings.NewReader(killNaming+"killnaming "+q(dir+"/")+"\n")); err != nil {
				fail(fmt.Errorf("stop what runs from %s's directory: %w", h.node, err))
			} else if len(out) > 0 {
				f.logf("hosts: %s: still running after the run, killed: %s", h.r, strings.TrimSpace(string(out)))
			}
			if failed {
				// Kept for a look, and for the next run's sweep once the
				// lock is free.
				add(fmt.Errorf("%s's files left in %s on %s: the next run against it, or ec-counter cleanup --hosts, removes them", h.node, dir, h.r))
				h.lifeline.s.Close()
				return
			}
			lock := path.Join(h.dir, f.tag+"."+h.node+".lock")
			if _, err := h.r.run(ctx, fmt.Sprintf("rm -rf %s; rmdir %s 2>/dev/null; rm -f %s", q(dir), q(path.Join(h.dir, f.tag)), q(lock)), nil); err != nil {
				add(err)
			}
			h.lifeline.s.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
