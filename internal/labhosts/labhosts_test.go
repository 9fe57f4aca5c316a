package labhosts

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/lab"
)

// netns returns the network namespace of a test host, from its address
// 10.98.K.(10+i): ecch-K-i (scripts/lab-hosts.sh).
func netns(t *testing.T, h lab.HostSpec) string {
	t.Helper()
	var k, last int
	if _, err := fmt.Sscanf(h.Address, "10.98.%d.%d", &k, &last); err != nil {
		t.Fatalf("not a test host address: %s", h.Address)
	}
	return fmt.Sprintf("ecch-%d-%d", k, last-10)
}

// inHost runs a command in a test host's network namespace.
func inHost(t *testing.T, h lab.HostSpec, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", netns(t, h)}, args...)...).CombinedOutput()
	return string(out), err
}

// connects reports whether a TCP connection from host from to to's SSH port
// is made within 3 seconds (room for a loaded machine; a dropped SYN never is).
func connects(t *testing.T, from, to lab.HostSpec) bool {
	t.Helper()
	_, err := inHost(t, from, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+to.NodeAddr+"/22")
	return err == nil
}

func TestUpDownLeavesNothing(t *testing.T) {
	Need(t)
	dir := filepath.Join(t.TempDir(), "hosts")
	if out, err := exec.Command(Script(), "up", "2", dir).CombinedOutput(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	hf, err := lab.ReadHosts(filepath.Join(dir, "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range lab.CheckHosts(context.Background(), hf, lab.FleetOptions{Nft: true, Arch: true}) {
		if !r.OK() {
			t.Errorf("%s fails the preflight: %v", r.Address, r.Problems())
		}
	}
	if !connects(t, hf.Hosts[0], hf.Hosts[1]) {
		t.Error("host 1 cannot reach host 2")
	}
	names := []string{netns(t, hf.Hosts[0]), netns(t, hf.Hosts[1])}
	bridge := names[0][:strings.LastIndex(names[0], "-")]
	Down(t, dir)
	list, _ := exec.Command("ip", "netns", "list").Output()
	for _, n := range names {
		if strings.Contains(string(list)+"\n", n+" ") || strings.Contains(string(list)+"\n", n+"\n") {
			t.Errorf("namespace %s left: %s", n, list)
		}
	}
	if err := exec.Command("ip", "link", "show", bridge).Run(); err == nil {
		t.Errorf("bridge %s left", bridge)
	}
	if out, err := exec.Command("pgrep", "-af", dir).Output(); err == nil {
		t.Errorf("processes left: %s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left (%v)", dir, err)
	}
}

// procState returns a local process's state letter (the hosts share this
// machine's process table).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

func TestFleetFaultsAndSignalsBite(t *testing.T) {
	_, hf := Up(t, 2)
	ctx := context.Background()
	var logs []string
	f, err := lab.OpenFleet(ctx, hf, []string{"n1", "n2"}, lab.FleetOptions{Nft: true, Logf: func(format string, args ...any) {
		logs = append(logs, fmt.Sprintf(format, args...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			f.Close(ctx, nil)
		}
	}()
	h1, h2 := hf.Hosts[0], hf.Hosts[1]
	if !connects(t, h2, h1) {
		t.Fatal("host 2 cannot reach host 1 before any fault")
	}

	// n1 drops what comes from n2: host 2 cannot connect to host 1, this
	// machine (the clients) still can.
	drop := api.FaultSet{Links: map[string]api.LinkFaults{h2.NodeAddr + ":7946": {In: &api.DirFaults{Drop: true}}}}
	if err := f.SetFaults(ctx, "n1", drop); err != nil {
		t.Fatal(err)
	}
	if connects(t, h2, h1) {
		t.Error("host 2 reaches host 1 through n1's partition")
	}
	if c, err := net.DialTimeout("tcp", h1.NodeAddr+":22", time.Second); err != nil {
		t.Errorf("the harness's machine is cut from host 1 too: %v", err)
	} else {
		c.Close()
	}
	rules, _ := inHost(t, h1, "nft", "list", "table", "inet", f.Tag()+"_n1")
	if !strings.Contains(rules, "ip saddr "+h2.NodeAddr+" ip daddr "+h1.NodeAddr+" drop") {
		t.Errorf("n1's table:\n%s", rules)
	}
	if err := f.SetFaults(ctx, "n1", api.FaultSet{}); err != nil {
		t.Fatal(err)
	}
	if !connects(t, h2, h1) {
		t.Error("host 2 cannot reach host 1 after the heal")
	}
	if tables, _ := inHost(t, h1, "nft", "list", "tables"); strings.Contains(tables, f.Tag()) {
		t.Errorf("a heal left the table: %s", tables)
	}
	// Delay is refused, and refused atomically (nothing changes).
	delay := api.FaultSet{Links: map[string]api.LinkFaults{h2.NodeAddr + ":7946": {In: &api.DirFaults{DelayMS: 100}}}}
	if err := f.SetFaults(ctx, "n1", delay); err == nil {
		t.Error("delay accepted on SSH hosts")
	}

	// Signals reach the process's group; the exit status comes home.
	p, err := f.Start(ctx, "n1", []string{"sleep", "600"})
	if err != nil {
		t.Fatal(err)
	}
	waitState := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); procState(p.Pid()) != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is in state %s, want %s", p.Pid(), procState(p.Pid()), want)
			}
		}
	}
	waitState("S")
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState("T")
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState("S")
	// A live run is never swept.
	for _, r := range lab.Cleanup(ctx, hf) {
		if r.Err != nil || len(r.Removed) > 0 {
			t.Errorf("cleanup of a live run on %s: removed %v, %v", r.Address, r.Removed, r.Err)
		}
	}
	if procState(p.Pid()) == "gone" {
		t.Fatal("cleanup killed a live run's process")
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
		if p.Err() == nil || !strings.Contains(p.Err().Error(), "signal") {
			t.Errorf("killed process ended with %v", p.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the kill was not seen")
	}
	q, err := f.Start(ctx, "n2", []string{"sh", "-c", "echo hello; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	<-q.Done()
	if q.Err() == nil || q.Err().Error() != "exit status 3" {
		t.Errorf("exit 3 came home as %v", q.Err())
	}
	live, err := f.Start(ctx, "n2", []string{"sleep", "600"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetFaults(ctx, "n2", drop2(h1)); err != nil {
		t.Fatal(err)
	}

	// Close leaves nothing of the run on the hosts but the executable cache
	// and the port locks (kept, for the next run), and brings the logs home.
	local := t.TempDir()
	live.Signal(syscall.SIGKILL)
	<-live.Done()
	closed = true
	if err := f.Close(ctx, func(node string) (string, string) {
		return filepath.Join(local, node+".log"), filepath.Join(local, node)
	}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(local, "n2.log")); err != nil || !strings.Contains(string(b), "hello") {
		t.Errorf("n2's log at home: %q, %v", b, err)
	}
	for _, h := range hf.Hosts {
		if tables, _ := inHost(t, h, "nft", "list", "tables"); strings.Contains(tables, "ecc_") {
			t.Errorf("%s: tables left: %s", h.Address, tables)
		}
		entries, _ := os.ReadDir(h.Dir)
		for _, e := range entries {
			if e.Name() != "bin" && e.Name() != "ports" {
				t.Errorf("%s: %s left in %s", h.Address, e.Name(), h.Dir)
			}
		}
	}
	if out, err := exec.Command("pgrep", "-af", f.Tag()).Output(); err == nil {
		t.Errorf("processes left: %s", out)
	}
	if len(logs) > 0 {
		t.Errorf("fresh hosts had leftovers: %v", logs)
	}
}

func drop2(to lab.HostSpec) api.FaultSet {
	return api.FaultSet{Links: map[string]api.LinkFaults{to.NodeAddr + ":7946": {Out: &api.DirFaults{Drop: true}}}}
}

// connectTime times a TCP connection from host from (nil: this machine) to
// to's SSH port.
func connectTime(t *testing.T, from *lab.HostSpec, to lab.HostSpec) time.Duration {
	t.Helper()
	start := time.Now()
	if from == nil {
		c, err := net.DialTimeout("tcp", to.NodeAddr+":22", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return time.Since(start)
	}
	// bash's own clock around the connect: no ip netns exec start-up in it.
	out, err := inHost(t, *from, "bash", "-c", "s=$EPOCHREALTIME; exec 3<>/dev/tcp/"+to.NodeAddr+"/22; e=$EPOCHREALTIME; echo $s $e")
	if err != nil {
		t.Fatalf("connect: %v %s", err, out)
	}
	var s, e float64
	if _, err := fmt.Sscan(out, &s, &e); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	return time.Duration((e - s) * float64(time.Second))
}

// delayingFleet opens a fleet of nodes n1 and n2 on two new test hosts,
// with delayers (ec-counter, built for it), closed when tb ends.
func delayingFleet(tb testing.TB) (*lab.Fleet, *lab.HostsFile) {
	tb.Helper()
	_, hf := Up(tb, 2)
	bin := filepath.Join(tb.TempDir(), "ec-counter")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ec-counter").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	f, err := lab.OpenFleet(ctx, hf, []string{"n1", "n2"}, lab.FleetOptions{Nft: true, Delay: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close(ctx, nil) })
	if err := f.Install(ctx, bin, "", []byte("token\n")); err != nil {
		tb.Fatal(err)
	}
	return f, hf
}

func TestFleetDelayBites(t *testing.T) {
	f, hf := delayingFleet(t)
	ctx := context.Background()
	h1, h2 := hf.Hosts[0], hf.Hosts[1]
	delay := api.FaultSet{Links: map[string]api.LinkFaults{h2.NodeAddr + ":7946": {In: &api.DirFaults{DelayMS: 300}}}}
	if err := f.SetFaults(ctx, "n1", delay); err != nil {
		t.Fatal(err)
	}
	// A delayed link is slow every time; one that is not is fast at least
	// once in 5 tries, however loaded the machine (CI's is).
	fastest := func(from *lab.HostSpec) time.Duration {
		d := time.Hour
		for range 5 {
			d = min(d, connectTime(t, from, h1))
		}
		return d
	}
	if d := connectTime(t, &h2, h1); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("host 2 to host 1 with 300ms of delay on n1's way in: connected in %s", d)
	}
	if d := fastest(nil); d > 150*time.Millisecond {
		t.Errorf("this machine to host 1: %s; client traffic must not be delayed", d)
	}
	if tables, _ := inHost(t, h1, "nft", "list", "tables"); !strings.Contains(tables, "table ip "+f.Tag()+"_n1_delay") {
		t.Errorf("no delayer table on host 1: %s", tables)
	}
	if err := f.SetFaults(ctx, "n1", api.FaultSet{}); err != nil {
		t.Fatal(err)
	}
	if d := fastest(&h2); d > 150*time.Millisecond {
		t.Errorf("host 2 to host 1 after the heal: %s", d)
	}
	if err := f.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, h := range hf.Hosts {
		if tables, _ := inHost(t, h, "nft", "list", "tables"); strings.Contains(tables, "ecc_") {
			t.Errorf("%s: tables left: %s", h.Address, tables)
		}
	}
	if out, err := exec.Command("pgrep", "-af", "host-delayer").Output(); err == nil && strings.Contains(string(out), f.Tag()) {
		t.Errorf("delayers left: %s", out)
	}
}
