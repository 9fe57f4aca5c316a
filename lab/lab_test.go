package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// TestMain runs the package's tests inside the namespace Reexec makes, so
// that the lab tests never touch this machine's network. Where that is not
// possible the lab tests skip, unless EC_COUNTER_REQUIRE_LAB=1 (CI) makes
// them fail.
func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzz") {
			// The fuzzer talks to its workers over inherited descriptors
			// that a re-executed binary would not keep: fuzz here.
			os.Setenv("EC_COUNTER_LAB_TESTS_OUTSIDE", "fuzzing")
		}
	}
	if !Inside() && os.Getenv("EC_COUNTER_LAB_TESTS_OUTSIDE") == "" {
		code, err := Reexec()
		if err == nil {
			os.Exit(code)
		}
		fmt.Fprintf(os.Stderr, "lab tests run outside a namespace: %v\n", err)
		os.Setenv("EC_COUNTER_LAB_TESTS_OUTSIDE", err.Error())
	}
	if Inside() {
		if err := Init(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// needLab skips (or, in CI, fails) a test that needs the namespace.
func needLab(t testing.TB) {
	t.Helper()
	if Inside() {
		return
	}
	msg := "the lab is not available here: " + os.Getenv("EC_COUNTER_LAB_TESTS_OUTSIDE")
	if os.Getenv("EC_COUNTER_REQUIRE_LAB") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func buildLab(t *testing.T, n int) *Lab {
	t.Helper()
	needLab(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	l, err := Build(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// inHost runs f in h's network namespace.
func inHost(t *testing.T, h *Host, f func() error) error {
	t.Helper()
	return inNetns(h.ns, f)
}

// echoServer listens on h's address (TCP and UDP) and echoes what it gets.
func echoServer(t *testing.T, h *Host) (tcp net.Listener, udp net.PacketConn) {
	t.Helper()
	err := inHost(t, h, func() error {
		var err error
		if tcp, err = net.Listen("tcp", net.JoinHostPort(h.Addr.String(), "9000")); err != nil {
			return err
		}
		udp, err = net.ListenPacket("udp", net.JoinHostPort(h.Addr.String(), "9000"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close(); udp.Close() })
	go serveEcho(tcp)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, addr, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			udp.WriteTo(buf[:n], addr)
		}
	}()
	return tcp, udp
}

// dialFrom connects from host from to to's echo server.
func dialFrom(t *testing.T, from, to *Host, network string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := inHost(t, from, func() error {
		var err error
		c, err = net.DialTimeout(network, net.JoinHostPort(to.Addr.String(), "9000"), timeout)
		return err
	})
	return c, err
}

// roundTrip sends a line over c and waits for its echo, returning the time.
func roundTrip(c net.Conn, timeout time.Duration) (time.Duration, error) {
	c.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func gossip(h *Host) string { return h.Addr.String() + ":7946" }

func TestHostsReachEachOtherThroughTheRouter(t *testing.T) {
	l := buildLab(t, 3)
	hs := l.Hosts()
	echoServer(t, hs[1])
	c, err := dialFrom(t, hs[0], hs[1], "tcp", 2*time.Second)
	if err != nil {
		t.Fatalf("n1 → n2: %v", err)
	}
	defer c.Close()
	if _, err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// The router (this namespace) reaches every host directly.
	d, err := net.DialTimeout("tcp", net.JoinHostPort(hs[1].Addr.String(), "9000"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Nothing outside the lab is routed.
	err = inHost(t, hs[0], func() error {
		_, err := net.DialTimeout("tcp", "192.0.2.1:80", 300*time.Millisecond)
		return err
	})
	if err == nil {
		t.Error("a host reached an address outside the lab")
	}
}

// TestPartitionDropsPacketsBothProtocols shows a grudge cutting real TCP
// and UDP traffic one way, while the router (clients) still gets through,
// and the heal restoring it.
func TestPartitionDropsPacketsBothProtocols(t *testing.T) {
	l := buildLab(t, 3)
	hs := l.Hosts()
	echoServer(t, hs[1])
	// Established before the partition: a real half-open connection after.
	c, err := dialFrom(t, hs[0], hs[1], "tcp", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// n2 drops everything from n1.
	drop := api.FaultSet{Links: map[string]api.LinkFaults{gossip(hs[0]): {In: &api.DirFaults{Drop: true}}}}
	if err := l.SetFaults(context.Background(), "n2", drop); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, 500*time.Millisecond); err == nil {
		t.Error("established TCP connection n1 → n2 still works during the partition")
	}
	if _, err := dialFrom(t, hs[0], hs[1], "tcp", 500*time.Millisecond); err == nil {
		t.Error("new TCP connection n1 → n2 made during the partition")
	}
	u, err := dialFrom(t, hs[0], hs[1], "udp", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := roundTrip(u, 300*time.Millisecond); err == nil {
		t.Error("UDP n1 → n2 got through the partition")
	}
	// n3 → n2 is unaffected; so is the router.
	if c3, err := dialFrom(t, hs[2], hs[1], "tcp", time.Second); err != nil {
		t.Errorf("n3 → n2 cut too: %v", err)
	} else {
		c3.Close()
	}
	if d, err := net.DialTimeout("tcp", net.JoinHostPort(hs[1].Addr.String(), "9000"), time.Second); err != nil {
		t.Errorf("the router (clients) cut off from n2: %v", err)
	} else {
		d.Close()
	}
	// Heal.
	if err := l.SetFaults(context.Background(), "n2", api.FaultSet{Links: map[string]api.LinkFaults{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(u, time.Second); err != nil {
		t.Errorf("UDP n1 → n2 after the heal: %v", err)
	}
	c2, err := dialFrom(t, hs[0], hs[1], "tcp", time.Second)
	if err != nil {
		t.Fatalf("TCP n1 → n2 after the heal: %v", err)
	}
	c2.Close()
}

// TestDelayHoldsPackets measures the round trip over a delayed link: the
// delay is on n1's "out" only, so a round trip takes one delay more.
func TestDelayHoldsPackets(t *testing.T) {
	l := buildLab(t, 2)
	hs := l.Hosts()
	echoServer(t, hs[1])
	c, err := dialFrom(t, hs[0], hs[1], "tcp", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base, err := roundTrip(c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slow := api.FaultSet{Links: map[string]api.LinkFaults{gossip(hs[1]): {Out: &api.DirFaults{DelayMS: 200}}}}
	if err := l.SetFaults(context.Background(), "n1", slow); err != nil {
		t.Fatal(err)
	}
	var rtts []time.Duration
	for range 5 {
		d, err := roundTrip(c, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, d)
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	if rtts[0] < 200*time.Millisecond || rtts[len(rtts)-1] > 400*time.Millisecond {
		t.Errorf("round trips with 200ms delay: %v (without: %v); want within [200ms, 400ms]", rtts, base)
	}
	if err := l.SetFaults(context.Background(), "n1", api.FaultSet{Links: map[string]api.LinkFaults{}}); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(c, time.Second); err != nil || d > 100*time.Millisecond {
		t.Errorf("round trip after removing the delay: %v, %v", d, err)
	}
}

// TestLossDropsTheAskedShare sends 2,000 UDP packets over a link with 30%
// loss and counts what arrives.
func TestLossDropsTheAskedShare(t *testing.T) {
	l := buildLab(t, 2)
	hs := l.Hosts()
	var rx net.PacketConn
	if err := inHost(t, hs[1], func() error {
		var err error
		rx, err = net.ListenPacket("udp", net.JoinHostPort(hs[1].Addr.String(), "9001"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx net.Conn
	if err := inHost(t, hs[0], func() error {
		var err error
		tx, err = net.Dial("udp", net.JoinHostPort(hs[1].Addr.String(), "9001"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	lossy := api.FaultSet{Links: map[string]api.LinkFaults{gossip(hs[1]): {Out: &api.DirFaults{Loss: 0.3}}}}
	if err := l.SetFaults(context.Background(), "n1", lossy); err != nil {
		t.Fatal(err)
	}
	const sent = 2000
	got := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 64)
		for {
			rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := rx.ReadFrom(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	for i := range sent {
		if _, err := tx.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // stay clear of socket buffer limits
		}
	}
	n := <-got
	loss := 1 - float64(n)/sent
	t.Logf("30%% loss: %d of %d packets arrived, measured loss %.1f%%", n, sent, loss*100)
	if loss < 0.24 || loss > 0.36 {
		t.Errorf("measured loss %.1f%%, want 30 ± 6%%", loss*100)
	}
}

func TestSetFaultsRejectsStrangers(t *testing.T) {
	l := buildLab(t, 2)
	for _, fs := range []api.FaultSet{
		{Links: map[string]api.LinkFaults{"10.0.0.99:7946": {In: &api.DirFaults{Drop: true}}}},
		{Links: map[string]api.LinkFaults{gossip(l.Hosts()[0]): {In: &api.DirFaults{Drop: true}}}}, // itself
		{Links: map[string]api.LinkFaults{gossip(l.Hosts()[1]): {In: &api.DirFaults{Loss: 2}}}},
	} {
		if err := l.SetFaults(context.Background(), "n1", fs); err == nil {
			t.Errorf("SetFaults(%v) accepted", fs.Links)
		}
	}
	if err := l.SetFaults(context.Background(), "n9", api.FaultSet{}); err == nil {
		t.Error("SetFaults of an unknown node accepted")
	}
}

func TestBuildRefusesOutsideTheNamespace(t *testing.T) {
	if Inside() {
		old := os.Getenv(envInside)
		os.Unsetenv(envInside)
		defer os.Setenv(envInside, old)
	}
	_, err := Build(context.Background(), []string{"n1"})
	if err == nil {
		t.Fatal("Build outside the namespace succeeded")
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestProbe(t *testing.T) {
	needLab(t)
	checks, err := Probe(context.Background())
	for _, c := range checks {
		t.Logf("%-70s ok=%v %s", c.Name, c.OK, c.Detail)
	}
	if err != nil || len(checks) != 5 {
		t.Fatalf("probe: %v (%d checks)", err, len(checks))
	}
}

func TestNotAvailableErrorSaysHowToFix(t *testing.T) {
	err := &NotAvailableError{Err: errors.New("fork/exec /proc/self/exe: operation not permitted")}
	msg := err.Error()
	if !strings.Contains(msg, "operation not permitted") || !strings.Contains(msg, "doctor") {
		t.Errorf("message %q does not say what failed and where to look", msg)
	}
	if os.Geteuid() != 0 && !strings.Contains(msg, "unprivileged_userns_clone") {
		t.Errorf("message %q does not say how to enable user namespaces", msg)
	}
	if !errors.Is(err, err.Err) {
		t.Error("NotAvailableError does not unwrap")
	}
}

// TestInitMountsItsOwnProc: inside the namespaces, /proc lists this PID
// namespace, so process IDs read there can be signalled.
func TestInitMountsItsOwnProc(t *testing.T) {
	needLab(t)
	if !ProcMatches() {
		self, _ := os.Readlink("/proc/self")
		t.Fatalf("/proc/self is %s, not this process (pid %d)", self, os.Getpid())
	}
}
