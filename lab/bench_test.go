package lab

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// BenchmarkBuild measures building a lab (namespaces, links, addresses,
// routes, the table and its chains, the delayer) and tearing it down, per
// host.
//
//	go test ./lab -run XXX -bench Build -benchtime 5x
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			needLab(b)
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("n%d", i+1)
			}
			var build time.Duration
			for b.Loop() {
				start := time.Now()
				l, err := Build(context.Background(), names)
				if err != nil {
					b.Fatal(err)
				}
				build += time.Since(start)
				l.Close()
			}
			b.ReportMetric(float64(build.Microseconds())/1000/float64(b.N)/float64(n), "build-ms/host")
		})
	}
}

// udpPair returns a UDP echo server on host to and a client socket on host
// from, connected to it.
func udpPair(b *testing.B, l *Lab) (tx net.Conn, rx net.PacketConn) {
	a, c := l.hosts[0], l.hosts[1]
	if err := inNetns(c.ns, func() error {
		var err error
		rx, err = net.ListenPacket("udp", net.JoinHostPort(c.Addr.String(), "9002"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if err := inNetns(a.ns, func() error {
		var err error
		tx, err = net.Dial("udp", net.JoinHostPort(c.Addr.String(), "9002"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close(); rx.Close() })
	return tx, rx
}

// BenchmarkDelayAccuracy sends UDP packets one at a time over a link with
// 10, 50 and 200 ms of delay on one direction and reports the measured
// one-way time (send to receive, both clocks this process's) as median,
// p99 and max.
//
//	go test ./lab -run XXX -bench DelayAccuracy -benchtime 200x
func BenchmarkDelayAccuracy(b *testing.B) {
	for _, ms := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("delay=%dms", ms), func(b *testing.B) {
			needLab(b)
			l, err := Build(context.Background(), []string{"n1", "n2"})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			tx, rx := udpPair(b, l)
			fs := api.FaultSet{Links: map[string]api.LinkFaults{l.hosts[1].Addr.String() + ":1": {Out: &api.DirFaults{DelayMS: ms}}}}
			if err := l.SetFaults(context.Background(), "n1", fs); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64)
			var got []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := tx.Write([]byte("x")); err != nil {
					b.Fatal(err)
				}
				rx.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, _, err := rx.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
				got = append(got, time.Since(start))
			}
			slices.Sort(got)
			q := func(p float64) float64 { return float64(got[int(p*float64(len(got)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "median-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
		})
	}
}

// BenchmarkDelayerRate offers the delayer UDP packets at rising rates, for
// one second each, over a link with 10 ms of delay, and reports the highest
// rate it passed with under 0.1% loss and the first rate at which it lost
// more (0 if none did).
//
//	go test ./lab -run XXX -bench DelayerRate -benchtime 1x
func BenchmarkDelayerRate(b *testing.B) {
	needLab(b)
	for b.Loop() {
		l, err := Build(context.Background(), []string{"n1", "n2"})
		if err != nil {
			b.Fatal(err)
		}
		tx, rx := udpPair(b, l)
		fs := api.FaultSet{Links: map[string]api.LinkFaults{l.hosts[1].Addr.String() + ":1": {Out: &api.DirFaults{DelayMS: 10}}}}
		if err := l.SetFaults(context.Background(), "n1", fs); err != nil {
			b.Fatal(err)
		}
		if pc, ok := rx.(*net.UDPConn); ok {
			pc.SetReadBuffer(16 << 20)
		}
		sustained, broke := 0, 0
		for _, rate := range []int{5000, 10000, 20000, 40000, 80000, 160000} {
			count := make(chan int)
			go func() {
				n, buf := 0, make([]byte, 64)
				for {
					rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					if _, _, err := rx.ReadFrom(buf); err != nil {
						count <- n
						return
					}
					n++
				}
			}()
			sent, start := 0, time.Now()
			for time.Since(start) < time.Second {
				due := int(time.Since(start).Seconds() * float64(rate))
				for ; sent < due; sent++ {
					tx.Write([]byte("x"))
				}
				time.Sleep(200 * time.Microsecond)
			}
			got := <-count
			if loss := 1 - float64(got)/float64(sent); loss < 0.001 {
				sustained = rate
			} else {
				broke = rate
				b.Logf("%d packets/s: %d of %d arrived; queue drops so far %d", rate, got, sent, l.QueueDrops())
				break
			}
		}
		l.Close()
		b.ReportMetric(float64(sustained), "sustained-pkt/s")
		b.ReportMetric(float64(broke), "lossy-at-pkt/s")
	}
}
