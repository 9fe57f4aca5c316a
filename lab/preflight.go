package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Preflight limits (docs/ssh-hosts.md "Nodes on SSH hosts").
const (
	MaxClockSkew = 5 * time.Second // node logs and the history must line up
	MinFreeDisk  = 256 << 20       // bytes free in the host's dir
)

// HostReport is what the preflight found on one host.
type HostReport struct {
	Address string
	Dir     string        // the host's dir, absolute
	SSH     error         // reaching and logging in
	Root    string        // "root" or "sudo", "" when neither works
	Nft     string        // "ok", else why nftables cannot be used
	NeedNft bool          // the run needs nftables
	NFQueue bool          // the kernel has NFQUEUE (for delay)
	NeedQ   bool          // the run needs NFQUEUE (it delays)
	Skew    time.Duration // the host's clock minus this machine's
	RTT     time.Duration // the round trip the clock was read in: Skew is known within half of it
	Free    int64         // bytes free in Dir
	Arch    string        // uname -sm
	NeedArc bool          // this binary must run there
	Missing []string      // tools not installed
	Err     error         // the checks themselves failed
	// Ports is what uses the node's ports, when the preflight looked
	// (doctor does; a run looks once it holds their locks).
	Ports *PortUses
}

// Checked reports whether the checks after the login ran: they need
// root, and a host that answers.
func (r HostReport) Checked() bool { return r.SSH == nil && r.Root != "" && r.Err == nil }

// notChecked names the checks that need root, for a host without it.
const notChecked = "not checked without it: nftables, NFQUEUE, clock, free disk, system, tools, ports"

// Problems lists why the host cannot take the run; none means it can.
// Only checks that ran are listed; those that could not run are named as
// such.
func (r HostReport) Problems() []string {
	if r.SSH != nil {
		return []string{r.SSH.Error()}
	}
	if r.Root == "" {
		return []string{"neither root nor passwordless sudo (sudo -n): nftables and signals need root (" + notChecked + ")"}
	}
	if r.Err != nil {
		return []string{r.Err.Error()}
	}
	var p []string
	if r.NeedNft && r.Nft != "ok" {
		p = append(p, "nftables: "+r.Nft)
	}
	if r.NeedQ && !r.NFQueue {
		p = append(p, "no NFQUEUE (nfnetlink_queue), which delay needs")
	}
	// The host read its clock somewhere in the round trip: blame the clock
	// only when it is off by more than the limit wherever that was.
	if off := r.Skew.Abs() - r.RTT/2; off > MaxClockSkew {
		p = append(p, fmt.Sprintf("clock off by %s (more than %s): sync it (chrony, ntp)", r.Skew.Round(time.Millisecond), MaxClockSkew))
	}
	if r.Free < MinFreeDisk {
		p = append(p, fmt.Sprintf("%d MiB free in %s (need %d)", r.Free>>20, r.Dir, MinFreeDisk>>20))
	}
	if r.NeedArc && r.Arch != wantArch() {
		p = append(p, fmt.Sprintf("runs %q, this binary is for %q", r.Arch, wantArch()))
	}
	if len(r.Missing) > 0 {
		p = append(p, "not installed: "+strings.Join(r.Missing, ", "))
	}
	if r.Ports != nil {
		p = append(p, r.Ports.problems(r.spec())...)
	}
	return p
}

// spec is the part of the host's entry the report's ports are about.
func (r HostReport) spec() HostSpec {
	if r.Ports == nil {
		return HostSpec{}
	}
	return r.Ports.spec
}

// OK reports whether the host can take the run.
func (r HostReport) OK() bool { return len(r.Problems()) == 0 }

// wantArch is uname -sm of a machine this binary runs on.
func wantArch() string {
	m := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}[runtime.GOARCH]
	return "Linux " + m
}

// probeScript prints what the preflight needs, as key=value lines; it runs
// as root with the host's dir and nft command as arguments.
const probeScript = `dir=$1 nft=$2
echo "time=$(date +%s%N)"
mkdir -p "$dir" && cd "$dir" && echo "dir=$(pwd)"
echo "arch=$(uname -sm)"
echo "free_kb=$(df -Pk . | awk 'NR==2 {print $4}')"
if ! command -v "$nft" >/dev/null 2>&1; then echo "nft=$nft is not installed"
elif out=$("$nft" list tables 2>&1); then echo "nft=ok"
else echo "nft=$nft list tables fails: $(echo "$out" | head -n 1)"; fi
if [ -e /proc/net/netfilter/nfnetlink_queue ] || modprobe -q nfnetlink_queue 2>/dev/null; then echo nfqueue=yes; fi
for t in flock setsid tar; do command -v $t >/dev/null 2>&1 || echo "missing=$t"; done
`

// probeTimeout bounds the preflight's probe of a host.
const probeTimeout = 20 * time.Second

// checkHost runs the preflight on one host; it returns the connection
// when the host could be reached. With ports, it also says what uses the
// node's ports (a run looks once it holds their locks).
func checkHost(ctx context.Context, spec HostSpec, opts FleetOptions, ports bool) (HostReport, *remote) {
	rep := HostReport{Address: spec.Address, NeedNft: opts.Nft || opts.Delay, NeedArc: opts.Arch || opts.Delay, NeedQ: opts.Delay}
	r, err := dial(ctx, spec)
	if err != nil {
		rep.SSH = err
		return rep, nil
	}
	plain := *r
	plain.sudo = ""
	switch {
	case spec.User == "root":
		rep.Root = "root"
	default:
		if _, err := plain.run(ctx, "sudo -n true", nil); err == nil {
			rep.Root = "sudo"
		}
	}
	if rep.Root == "" {
		return rep, r
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	t0 := time.Now()
	out, err := r.run(pctx, "sh -s -- "+q(spec.Dir)+" "+q(spec.Nft), strings.NewReader(probeScript))
	rtt := time.Since(t0)
	rep.RTT = rtt
	if err != nil {
		rep.Err = err
		return rep, r
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "time":
			ns, _ := strconv.ParseInt(v, 10, 64)
			// The host read its clock between t0 and t0+rtt: take the middle.
			rep.Skew = time.Unix(0, ns).Sub(t0.Add(rtt / 2))
		case "dir":
			rep.Dir = v
		case "arch":
			rep.Arch = printable(v)
		case "free_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			rep.Free = kb << 10
		case "nft":
			rep.Nft = printable(v)
		case "nfqueue":
			rep.NFQueue = true
		case "missing":
			rep.Missing = append(rep.Missing, printable(v))
		}
	}
	if rep.Dir == "" {
		rep.Err = fmt.Errorf("cannot create or enter %s", spec.Dir)
		return rep, r
	}
	if ports {
		uses, err := portUses(ctx, r, rep.Dir, true)
		if err != nil {
			rep.Err = err
			return rep, r
		}
		rep.Ports = uses
	}
	return rep, r
}

// PortUses is what uses a node's ports on its host.
type PortUses struct {
	spec HostSpec
	// Held lists the port locks a live run holds: "PORT TAG INFO".
	Held []string
	// Listeners lists the processes bound to a port: "PROTO PORT PID CMD"
	// (PID 0 when it could not be found).
	Listeners []string
	// DeadRuns lists listeners that are a dead run's nodes, which the
	// next run's sweep (or cleanup) removes; they refuse nothing.
	DeadRuns []string
}

// problems says why the ports refuse a run, a line each.
func (u *PortUses) problems(spec HostSpec) []string {
	if u == nil {
		return nil
	}
	var p []string
	for _, h := range u.Held {
		port, rest, _ := strings.Cut(h, " ")
		tag, info, _ := strings.Cut(rest, " ")
		p = append(p, heldBy(port, spec.NodeAddr, tag, info))
	}
	for _, l := range u.Listeners {
		f := strings.SplitN(l, " ", 4)
		for len(f) < 4 {
			f = append(f, "")
		}
		who := "another process"
		if f[2] != "0" && f[2] != "" {
			who += fmt.Sprintf(" (pid %s: %s)", f[2], strings.TrimSpace(f[3]))
		}
		p = append(p, fmt.Sprintf("%s port %s on %s is in use by %s", f[0], f[1], spec.NodeAddr, who))
	}
	return p
}

// heldBy says that a live run (tag and info, when known) holds a port.
func heldBy(port, addr, tag, info string) string {
	who := "a live run"
	if tag != "" {
		who += " " + tag
	}
	if info = strings.TrimSpace(info); info != "" {
		who += " (" + info + ")"
	}
	return fmt.Sprintf("port %s on %s is held by %s: one run at a time on a host's ports", port, addr, who)
}

// portsScript prints what uses a node's ports: "held PORT TAG INFO" for a
// port whose run lock (DIR/ports/ADDR_PORT.lock) is held (with $5 = 1,
// read from /proc/locks, which takes no lock), and "PROTO PORT PID CMD"
// for a TCP listener on either port, or a UDP socket on the gossip port,
// on the node's address or any (/proc/net: no tools needed). Runs as
// root: sh -s -- DIR ADDR HTTP_PORT GOSSIP_PORT LOCKS LE_HEX BE_HEX
// HTTP_HEX GOSSIP_HEX.
const portsScript = `dir=$1 addr=$2 http=$3 gossip=$4 locks=$5 le=$6 be=$7 hh=$8 gh=$9
if [ "$locks" = 1 ]; then
  for p in $http $gossip; do
    l="$dir/ports/${addr}_$p.lock"
    [ -e "$l" ] || continue
    set -- $(ls -di "$l")
    grep -q ":$1 " /proc/locks 2>/dev/null || continue
    t=$(head -c 64 "$l" 2>/dev/null | tr -cd 'a-z0-9_')
    info=$(cat "$dir/$t"/*/info 2>/dev/null | head -n 1)
    echo "held $p $t $info"
  done
fi
for f in tcp tcp6 udp udp6; do
  [ -r /proc/net/$f ] || continue
  while read -r sl local rem st txrx tr retr uid to ino rest; do
    hex=${local##*:} a=${local%:*}
    case $f in
      tcp*) [ "$st" = 0A ] || continue
            if [ "$hex" = "$hh" ]; then port=$http; elif [ "$hex" = "$gh" ]; then port=$gossip; else continue; fi ;;
      *) [ "$hex" = "$gh" ] || continue; port=$gossip ;;
    esac
    case $a in
      "$le"|"$be"|00000000|00000000000000000000000000000000|0000000000000000FFFF0000"$le"|00000000000000000000FFFF"$be") ;;
      *) continue ;;
    esac
    pid=0 cmd=
    for fd in $(find /proc/[0-9]*/fd -lname "socket:\[$ino\]" 2>/dev/null | head -n 1); do
      pid=${fd#/proc/}; pid=${pid%%/*}
      cmd=$(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null | head -c 300)
    done
    echo "${f%6} $port $pid $cmd"
  done </proc/net/$f
done
`

// portUses finds what uses the ports of r's node (portsScript); with
// locks, it also looks for their run locks held by a live run. A listener
// whose command line names a run's directory in dir (absolute) is a dead
// run's node when its lock is free: DeadRuns.
func portUses(ctx context.Context, r *remote, dir string, locks bool) (*PortUses, error) {
	spec := r.spec
	a := netip.MustParseAddr(spec.NodeAddr).As4()
	le := fmt.Sprintf("%02X%02X%02X%02X", a[3], a[2], a[1], a[0])
	be := fmt.Sprintf("%02X%02X%02X%02X", a[0], a[1], a[2], a[3])
	lk := "0"
	if locks {
		lk = "1"
	}
	args := qJoin(dir, spec.NodeAddr, strconv.Itoa(spec.HTTPPort), strconv.Itoa(spec.GossipPort), lk, le, be,
		fmt.Sprintf("%04X", spec.HTTPPort), fmt.Sprintf("%04X", spec.GossipPort))
	out, err := r.run(ctx, "sh -s -- "+args, strings.NewReader(portsScript))
	if err != nil {
		return nil, fmt.Errorf("look at what uses the node's ports: %w", err)
	}
	u := &PortUses{spec: spec}
	seen := map[string]bool{}
	for l := range strings.Lines(string(out)) {
		l = printable(strings.TrimSpace(l))
		if seen[l] || l == "" {
			continue
		}
		seen[l] = true
		if h, ok := strings.CutPrefix(l, "held "); ok {
			u.Held = append(u.Held, h)
			continue
		}
		if locks && strings.Contains(l, path.Join(dir, "ecc_")) {
			if len(u.Held) == 0 { // else it is the live run's node
				u.DeadRuns = append(u.DeadRuns, l)
			}
			continue
		}
		u.Listeners = append(u.Listeners, l)
	}
	return u, nil
}

// CheckHosts runs the preflight on every host of hf at once, as a run
// needing opts would, and returns a report per host, in file order. It
// also says what uses each node's ports (HostReport.Ports), which a run
// checks once it holds their locks.
func CheckHosts(ctx context.Context, hf *HostsFile, opts FleetOptions) []HostReport {
	reps := make([]HostReport, len(hf.Hosts))
	var wg sync.WaitGroup
	for i, spec := range hf.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, r := checkHost(ctx, spec, opts, true)
			if r != nil {
				r.close()
			}
			reps[i] = rep
		}()
	}
	wg.Wait()
	return reps
}

// killNaming defines the shell function killnaming, which SIGKILLs every
// process whose command line contains its argument, and the process group
// of each, printing a line per process (every command line is read before
// any kill, so that each is shown whole). Scripts that use it are read from
// standard input (sh -s), so that their own command lines never name what
// they kill.
const killNaming = `killnaming() {
  list=
  for f in $(grep -laF "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f%/cmdline}; pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
    [ -n "$cmd" ] || continue
    pg=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f3)
    list="$list $pid:${pg:-0}"
    echo "process $pid: $cmd"
  done
  for e in $list; do
    pid=${e%%:*} pg=${e#*:}
    [ "$pg" -gt 1 ] && kill -s KILL -- "-$pg" 2>/dev/null
    kill -s KILL "$pid" 2>/dev/null
  done
}
`

// sweepScript removes what dead runs left in the host's dir: a run whose
// directory exists and none of whose lock files is held. It kills every
// process whose command line names the run's directory (and its process
// group), waits for them to be gone, deletes the run's nftables tables,
// and removes its files, printing a line for each thing removed, and a
// line "left ..." for each that could not be. Runs as root, with the dir
// and the nft command as arguments.
const sweepScript = killNaming + `dir=$1 nft=$2
cd "$dir" 2>/dev/null || exit 0
dir=$(pwd)
echo "dir $dir"
base=${dir%/}
for run in ecc_*; do
  [ -d "$run" ] || continue
  case $run in *[!a-z0-9_]*) continue ;; esac
  alive=
  for l in "$run".*.lock; do
    [ -e "$l" ] || continue
    flock -n "$l" true || alive=1
  done
  [ -n "$alive" ] && continue
  info=$(cat "$run"/*/info 2>/dev/null | head -n 1)
  echo "run $run (${info:-no info})"
  killnaming "$base/$run/"
  i=0
  while :; do
    left=
    for f in $(grep -laF "$base/$run/" /proc/[0-9]*/cmdline 2>/dev/null); do
      [ -e "$f" ] && left="$left $f"
    done
    [ -z "$left" ] && break
    i=$((i + 1))
    if [ $i -gt 60 ]; then
      for f in $left; do
        p=${f%/cmdline}
        echo "left process ${p#/proc/}: $(tr '\0' ' ' <"$f" 2>/dev/null)"
      done
      break
    fi
    sleep 0.05
  done
  if command -v "$nft" >/dev/null 2>&1; then
    "$nft" list tables 2>/dev/null | while read -r _ fam t; do
      case $t in
        "$run"_*)
          if "$nft" delete table "$fam" "$t"; then echo "nftables table $fam $t"
          else echo "left nftables table $fam $t"; fi ;;
      esac
    done
  fi
  if rm -rf "$run" "$run".*.lock; then echo "files $base/$run"
  else echo "left files $base/$run"; fi
done
`

// sweep removes dead runs' leftovers from one host and says what it
// removed, and what it could not, a line each.
func sweep(ctx context.Context, r *remote, dir, nft string) (removed, left []string, err error) {
	out, err := r.run(ctx, "sh -s -- "+q(dir)+" "+q(nft), strings.NewReader(sweepScript))
	if err != nil {
		return nil, nil, fmt.Errorf("remove dead runs' leftovers: %w", err)
	}
	run := "" // the dead run the lines are about
	for l := range strings.Lines(string(out)) {
		l = strings.TrimSpace(l)
		if abs, ok := strings.CutPrefix(l, "dir "); ok {
			dir = abs
			continue
		}
		if tag, ok := strings.CutPrefix(l, "run "); ok {
			run, _, _ = strings.Cut(tag, " ")
		}
		if run != "" {
			// Command lines name the run's files by their full paths.
			l = strings.ReplaceAll(l, path.Join(dir, run)+"/", run+"/")
		}
		l = printable(l)
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		switch what, ok := strings.CutPrefix(l, "left "); {
		case ok:
			left = append(left, what)
		case l != "":
			removed = append(removed, l)
		}
	}
	return removed, left, nil
}

// CleanupReport is what Cleanup did on one host.
type CleanupReport struct {
	Address string
	Removed []string // a line per thing removed
	Left    []string // a line per thing of a dead run that could not be removed
	Err     error
}

// Cleanup removes what dead runs left on every host of hf (docs/ssh-hosts.md "Nodes on SSH hosts"): never anything of a run that is still alive.
func Cleanup(ctx context.Context, hf *HostsFile) []CleanupReport {
	reps := make([]CleanupReport, len(hf.Hosts))
	var wg sync.WaitGroup
	for i, spec := range hf.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i].Address = spec.Address
			r, err := dial(ctx, spec)
			if err != nil {
				reps[i].Err = err
				return
			}
			defer r.close()
			reps[i].Removed, reps[i].Left, reps[i].Err = sweep(ctx, r, spec.Dir, spec.Nft)
		}()
	}
	wg.Wait()
	return reps
}
