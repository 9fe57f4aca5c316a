package node

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// newTestTransport starts a fault transport on a random loopback IP and a
// free port.
func newTestTransport(t testing.TB) (*faultTransport, string) {
	t.Helper()
	ip := randomLoopback()
	tr, err := newFaultTransport(netip.AddrPortFrom(ip, 0), log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr, netip.AddrPortFrom(ip, uint16(tr.inner.GetAutoBindPort())).String()
}

// setTestFaults sets faults on tr from a JSON fault set.
func setTestFaults(t testing.TB, tr *faultTransport, body string) {
	t.Helper()
	ft, err := parseFaultSet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	tr.setFaults(ft)
}

// countPackets counts the packets tr receives within d.
func countPackets(tr *faultTransport, d time.Duration) (n int, first time.Time) {
	timeout := time.After(d)
	for {
		select {
		case <-tr.PacketCh():
			if n == 0 {
				first = time.Now()
			}
			n++
		case <-timeout:
			return n, first
		}
	}
}

func TestTransportPackets(t *testing.T) {
	t.Parallel()
	a, aAddr := newTestTransport(t)
	b, bAddr := newTestTransport(t)
	send := func(n int) {
		t.Helper()
		for range n {
			if _, err := a.WriteTo([]byte("ping"), bAddr); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(addr, dir, faults string) string {
		return fmt.Sprintf(`{"links": {%q: {%q: %s}}}`, addr, dir, faults)
	}

	send(1)
	select {
	case p := <-b.PacketCh():
		if got, want := netAddrIP(p.From), netip.MustParseAddrPort(aAddr).Addr(); got != want || string(p.Buf) != "ping" {
			t.Errorf("got %q from %v, want ping from %v", p.Buf, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet without faults")
	}

	for name, c := range map[string]struct {
		on      *faultTransport
		faults  string
		sent    int
		min     int
		max     int
		minWait time.Duration
	}{
		"out drop":  {a, link(bAddr, "out", `{"drop": true}`), 20, 0, 0, 0},
		"in drop":   {b, link(aAddr, "in", `{"drop": true}`), 20, 0, 0, 0},
		"out loss":  {a, link(bAddr, "out", `{"loss": 1}`), 20, 0, 0, 0},
		"in loss":   {b, link(aAddr, "in", `{"loss": 0.5}`), 400, 100, 300, 0},
		"out delay": {a, link(bAddr, "out", `{"delay_ms": 150, "jitter_ms": 20}`), 5, 5, 5, 120 * time.Millisecond},
		"in delay":  {b, link(aAddr, "in", `{"delay_ms": 150}`), 5, 5, 5, 140 * time.Millisecond},
		"other ip":  {a, link("127.0.0.2:7946", "out", `{"drop": true}`), 5, 5, 5, 0},
		"empty dir": {b, link(aAddr, "in", `{}`), 5, 5, 5, 0},
	} {
		setTestFaults(t, c.on, c.faults)
		start := time.Now()
		send(c.sent)
		n, first := countPackets(b, 400*time.Millisecond)
		if n < c.min || n > c.max {
			t.Errorf("%s: %d of %d packets arrived, want %d..%d", name, n, c.sent, c.min, c.max)
		}
		if n > 0 && first.Sub(start) < c.minWait {
			t.Errorf("%s: first packet after %v, want ≥ %v", name, first.Sub(start), c.minWait)
		}
		setTestFaults(t, c.on, `{"links": {}}`)
	}
}

func TestTransportStreams(t *testing.T) {
	t.Parallel()
	a, aAddr := newTestTransport(t)
	b, bAddr := newTestTransport(t)
	aIP := netip.MustParseAddrPort(aAddr).Addr()

	// accept returns the next stream b hands to memberlist, or nil.
	accept := func(d time.Duration) net.Conn {
		select {
		case c := <-b.StreamCh():
			t.Cleanup(func() { c.Close() })
			return c
		case <-time.After(d):
			return nil
		}
	}

	// No faults: the stream leaves from a's own IP and works both ways.
	conn, err := a.DialTimeout(bAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	in := accept(5 * time.Second)
	if in == nil {
		t.Fatal("no stream without faults")
	}
	if got := netAddrIP(in.RemoteAddr()); got != aIP {
		t.Errorf("stream comes from %v, want a's IP %v", got, aIP)
	}
	if _, err := conn.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}

	// A link dropped mid-stream fails writes.
	setTestFaults(t, a, fmt.Sprintf(`{"links": {%q: {"out": {"drop": true}}}}`, bAddr))
	if _, err := conn.Write([]byte("x")); err == nil {
		t.Error("write on a dropped link succeeded")
	}
	// ... and new dials.
	if _, err := a.DialTimeout(bAddr, time.Second); err == nil {
		t.Error("dial on a dropped link succeeded")
	}
	setTestFaults(t, a, `{"links": {}}`)

	// Inbound drop: b closes the stream without handing it over.
	setTestFaults(t, b, fmt.Sprintf(`{"links": {%q: {"in": {"drop": true}}}}`, aAddr))
	conn2, err := a.DialTimeout(bAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if c := accept(300 * time.Millisecond); c != nil {
		t.Error("stream on an inbound-dropped link was handed over")
	}
	_ = conn2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn2.Read(buf); err != io.EOF {
		t.Errorf("read on a stream b dropped: %v, want EOF", err)
	}
	setTestFaults(t, b, `{"links": {}}`)

	// Delay: the dial and the hand-over are both late.
	setTestFaults(t, a, fmt.Sprintf(`{"links": {%q: {"out": {"delay_ms": 100}}}}`, bAddr))
	setTestFaults(t, b, fmt.Sprintf(`{"links": {%q: {"in": {"delay_ms": 100}}}}`, aAddr))
	start := time.Now()
	conn3, err := a.DialTimeout(bAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	if c := accept(5 * time.Second); c == nil {
		t.Error("delayed stream never handed over")
	} else if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("delayed stream handed over after %v, want ≥ 200ms", d)
	}
	// A delay longer than the dial timeout is a timeout.
	if _, err := a.DialTimeout(bAddr, 50*time.Millisecond); err == nil {
		t.Error("dial delayed beyond its timeout succeeded")
	}
}

// BenchmarkPacketRoundTrip measures a UDP ping-pong through plain
// NetTransports and through fault transports with no faults set: the
// difference is what the fault hook costs when it is idle.
func BenchmarkPacketRoundTrip(b *testing.B) {
	b.Run("net", func(b *testing.B) {
		mk := func() (memberlist.Transport, string) {
			ip := randomLoopback()
			tr, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
				BindAddrs: []string{ip.String()}, Logger: log.New(io.Discard, "", 0),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = tr.Shutdown() })
			return tr, netip.AddrPortFrom(ip, uint16(tr.GetAutoBindPort())).String()
		}
		x, xAddr := mk()
		y, yAddr := mk()
		pingPong(b, x, xAddr, y, yAddr)
	})
	b.Run("fault", func(b *testing.B) {
		x, xAddr := newTestTransport(b)
		y, yAddr := newTestTransport(b)
		pingPong(b, x, xAddr, y, yAddr)
	})
}

func pingPong(b *testing.B, x memberlist.Transport, xAddr string, y memberlist.Transport, yAddr string) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case p := <-y.PacketCh():
				_, _ = y.WriteTo(p.Buf, xAddr)
			case <-done:
				return
			}
		}
	}()
	msg := []byte("ping")
	b.ResetTimer()
	for b.Loop() {
		if _, err := x.WriteTo(msg, yAddr); err != nil {
			b.Fatal(err)
		}
		select {
		case <-x.PacketCh():
		case <-time.After(time.Second):
			b.Fatal("packet lost on loopback")
		}
	}
}
