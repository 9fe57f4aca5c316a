package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Preflight limits (README "Nodes on SSH hosts").
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
	Free    int64         // bytes free in Dir
	Arch    string        // uname -sm
	NeedArc bool          // this binary must run there
	Missing []string      // tools not installed
	Err     error         // the checks themselves failed
}

// Problems lists why the host cannot take the run; none means it can.
func (r HostReport) Problems() []string {
	if r.SSH != nil {
		return []string{r.SSH.Error()}
	}
	var p []string
	if r.Root == "" {
		p = append(p, "neither root nor passwordless sudo (sudo -n): nftables and signals need root")
	}
	if r.Err != nil {
		return append(p, r.Err.Error())
	}
	if r.NeedNft && r.Nft != "ok" {
		p = append(p, "nftables: "+r.Nft)
	}
	if r.NeedQ && !r.NFQueue {
		p = append(p, "no NFQUEUE (nfnetlink_queue), which delay needs")
	}
	if r.Skew > MaxClockSkew || r.Skew < -MaxClockSkew {
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
	return p
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

// checkHost runs the preflight on one host; it returns the connection
// when the host could be reached.
func checkHost(ctx context.Context, spec HostSpec, opts FleetOptions) (HostReport, *remote) {
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
	t0 := time.Now()
	out, err := r.run(ctx, "sh -s -- "+q(spec.Dir)+" "+q(spec.Nft), strings.NewReader(probeScript))
	rtt := time.Since(t0)
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
			rep.Arch = v
		case "free_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			rep.Free = kb << 10
		case "nft":
			rep.Nft = v
		case "nfqueue":
			rep.NFQueue = true
		case "missing":
			rep.Missing = append(rep.Missing, v)
		}
	}
	if rep.Dir == "" {
		rep.Err = fmt.Errorf("cannot create or enter %s", spec.Dir)
	}
	return rep, r
}

// CheckHosts runs the preflight on every host of hf at once, as a run
// needing opts would, and returns a report per host, in file order.
func CheckHosts(ctx context.Context, hf *HostsFile, opts FleetOptions) []HostReport {
	reps := make([]HostReport, len(hf.Hosts))
	var wg sync.WaitGroup
	for i, spec := range hf.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, r := checkHost(ctx, spec, opts)
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
// of each, printing a line per process. Scripts that use it are read from
// standard input (sh -s), so that their own command lines never name what
// they kill.
const killNaming = `killnaming() {
  for f in $(grep -laF "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f%/cmdline}; pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
    pg=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f3)
    [ -n "$pg" ] && [ "$pg" -gt 1 ] && kill -s KILL -- "-$pg" 2>/dev/null
    kill -s KILL "$pid" 2>/dev/null
    echo "process $pid: $cmd"
  done
}
`

// sweepScript removes what dead runs left in the host's dir: a run whose
// directory exists and none of whose lock files is held. It kills every
// process whose command line names the run's directory (and its process
// group), deletes the run's nftables tables, and removes its files,
// printing a line for each thing removed. Runs as root, with the dir
// (absolute) and the nft command as arguments.
const sweepScript = killNaming + `dir=$1 nft=$2
cd "$dir" 2>/dev/null || exit 0
dir=$(pwd)
echo "dir $dir"
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
  killnaming "$dir/$run/"
  if command -v "$nft" >/dev/null 2>&1; then
    "$nft" list tables 2>/dev/null | while read -r _ fam t; do
      case $t in "$run"_*) "$nft" delete table "$fam" "$t" && echo "nftables table $fam $t" ;; esac
    done
  fi
  rm -rf "$run" "$run".*.lock && echo "files $dir/$run"
done
`

// sweep removes dead runs' leftovers from one host and says what it
// removed, a line each.
func sweep(ctx context.Context, r *remote, dir, nft string) ([]string, error) {
	out, err := r.run(ctx, "sh -s -- "+q(dir)+" "+q(nft), strings.NewReader(sweepScript))
	if err != nil {
		return nil, fmt.Errorf("remove dead runs' leftovers: %w", err)
	}
	var lines []string
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
			l = strings.ReplaceAll(l, strings.TrimSuffix(dir, "/")+"/"+run+"/", run+"/")
		}
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// CleanupReport is what Cleanup did on one host.
type CleanupReport struct {
	Address string
	Removed []string // a line per thing removed
	Err     error
}

// Cleanup removes what dead runs left on every host of hf (README "Nodes
// on SSH hosts"): never anything of a run that is still alive.
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
			reps[i].Removed, reps[i].Err = sweep(ctx, r, spec.Dir, spec.Nft)
		}()
	}
	wg.Wait()
	return reps
}
