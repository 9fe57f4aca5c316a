package node

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// errLinkDown is what a dial or write on a faulted link fails with.
var errLinkDown = errors.New("link down (fault injection)")

// faultTransport is memberlist's NetTransport with per-peer link faults
// applied to both UDP packets and TCP streams. Peers are told apart by IP,
// since every node has its own loopback address; for the same reason TCP
// dials leave from the node's own IP.
//
// With no faults set, outbound traffic costs one atomic load, and inbound
// traffic one extra goroutine hop.
type faultTransport struct {
	inner   *memberlist.NetTransport
	localIP net.IP
	faults  atomic.Pointer[faultTable]

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	done      chan struct{} // closed when Shutdown starts
	innerDone chan struct{} // closed when the inner transport is down
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

// newFaultTransport binds UDP and TCP on addr.
func newFaultTransport(addr netip.AddrPort, mlLog *log.Logger) (*faultTransport, error) {
	none, err := newFaultTable(nil)
	if err != nil {
		return nil, err
	}
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{addr.Addr().String()},
		BindPort:  int(addr.Port()),
		Logger:    mlLog,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip transport: %w", err)
	}
	t := &faultTransport{
		inner:     inner,
		localIP:   net.IP(addr.Addr().AsSlice()),
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		done:      make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.faults.Store(none)
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t, nil
}

// setFaults replaces the fault table.
func (t *faultTransport) setFaults(ft *faultTable) { t.faults.Store(ft) }

// getFaults returns the current fault table.
func (t *faultTransport) getFaults() *faultTable { return t.faults.Load() }

// addrIP returns the IP of a "host:port" address, or an invalid Addr.
func addrIP(addr string) netip.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// netAddrIP returns the IP of a UDP or TCP address, or an invalid Addr.
func netAddrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return addrIP(a.String())
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *faultTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport: lost packets
// are silently dropped, delayed ones sent later.
func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ft := t.faults.Load()
	if ft.empty() {
		return t.inner.WriteToAddress(b, a)
	}
	_, out := ft.lookup(addrIP(a.Addr))
	if lost(out) {
		return time.Now(), nil
	}
	if d := delay(out); d > 0 {
		buf := append([]byte(nil), b...)
		time.AfterFunc(d, func() {
			select {
			case <-t.done:
			default:
				_, _ = t.inner.WriteToAddress(buf, a)
			}
		})
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport. It dials
// from the node's own IP, so that the peer can match the stream by IP; a
// dropped or lost link fails at once, a delayed one dials late.
func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ip := addrIP(a.Addr)
	_, out := t.faults.Load().lookup(ip)
	if lost(out) {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errLinkDown)
	}
	if d := delay(out); d > 0 {
		if timeout > 0 && d >= timeout {
			t.sleep(timeout)
			return nil, fmt.Errorf("dial %s: i/o timeout (delayed by fault injection)", a.Addr)
		}
		if !t.sleep(d) {
			return nil, fmt.Errorf("dial %s: transport shut down", a.Addr)
		}
		timeout -= d
	}
	dialer := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: t.localIP}}
	conn, err := dialer.Dial("tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: conn, t: t, peer: ip}, nil
}

// StreamCh implements memberlist.Transport.
func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport.
func (t *faultTransport) Shutdown() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.done)
		err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}

// sleep waits for d, or until shutdown; it reports whether d passed.
func (t *faultTransport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.done:
		return false
	}
}

// forwardPackets passes inbound packets on to memberlist, applying the
// faults of the link they came from.
func (t *faultTransport) forwardPackets() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		var p *memberlist.Packet
		select {
		case p = <-in:
		case <-t.innerDone:
			return
		}
		if ft := t.faults.Load(); !ft.empty() {
			f, _ := ft.lookup(netAddrIP(p.From))
			if lost(f) {
				continue
			}
			if d := delay(f); d > 0 {
				time.AfterFunc(d, func() {
					p.Timestamp = time.Now()
					t.deliverPacket(p)
				})
				continue
			}
		}
		t.deliverPacket(p)
	}
}

func (t *faultTransport) deliverPacket(p *memberlist.Packet) {
	select {
	case t.packetCh <- p:
	case <-t.done:
	}
}

// forwardStreams passes inbound streams on to memberlist, applying the
// faults of the link they came from: a lost stream is closed, a delayed
// one handed over late.
func (t *faultTransport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		var conn net.Conn
		select {
		case conn = <-in:
		case <-t.innerDone:
			return
		}
		peer := netAddrIP(conn.RemoteAddr())
		conn = &faultConn{Conn: conn, t: t, peer: peer}
		if ft := t.faults.Load(); !ft.empty() {
			f, _ := ft.lookup(peer)
			if lost(f) {
				_ = conn.Close()
				continue
			}
			if d := delay(f); d > 0 {
				go func() {
					if !t.sleep(d) {
						_ = conn.Close()
						return
					}
					t.deliverStream(conn)
				}()
				continue
			}
		}
		t.deliverStream(conn)
	}
}

func (t *faultTransport) deliverStream(conn net.Conn) {
	select {
	case t.streamCh <- conn:
	case <-t.done:
		_ = conn.Close()
	}
}

// faultConn is a TCP stream to or from peer. Its writes obey the current
// "out" faults of the link: a dropped link fails and closes the stream, a
// delayed one delays each write. Its reads fail once the "in" direction is
// dropped.
type faultConn struct {
	net.Conn
	t    *faultTransport
	peer netip.Addr
}

// Write implements net.Conn.
func (c *faultConn) Write(b []byte) (int, error) {
	if ft := c.t.faults.Load(); !ft.empty() {
		_, out := ft.lookup(c.peer)
		if out != nil && out.Drop {
			_ = c.Conn.Close()
			return 0, errLinkDown
		}
		if d := delay(out); d > 0 {
			if !c.t.sleep(d) {
				return 0, net.ErrClosed
			}
		}
	}
	return c.Conn.Write(b)
}

// Read implements net.Conn.
func (c *faultConn) Read(b []byte) (int, error) {
	if ft := c.t.faults.Load(); !ft.empty() {
		if in, _ := ft.lookup(c.peer); in != nil && in.Drop {
			_ = c.Conn.Close()
			return 0, errLinkDown
		}
	}
	return c.Conn.Read(b)
}
