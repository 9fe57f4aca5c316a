package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/internal/labtest"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/runstore"
)

// startTestCluster starts n real ec-counter node processes for a benchmark
// or test, on the loopback network or in a lab (NetLab), and stops them at
// cleanup.
func startTestCluster(tb testing.TB, bin string, n int, network string) *cluster {
	return startTestClusterOn(tb, bin, n, network, diskOptions{})
}

// startTestClusterOn is startTestCluster with the data directories on the
// given disk.
func startTestClusterOn(tb testing.TB, bin string, n int, network string, disk diskOptions, nodeFlags ...string) *cluster {
	tb.Helper()
	run, err := runstore.Create(filepath.Join(tb.TempDir(), "root"), "bench", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	var addrs []runstore.NodeAddrs
	var hosts []*lab.Host
	if network == NetLab {
		labtest.Need(tb)
		lb, err := lab.Build(context.Background(), nodeNames(n))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { lb.Close() })
		hosts = lb.Hosts()
		addrs = hostAddrs(hosts)
	} else {
		addrs, err = allocateAddrs(n, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)))
		if err != nil {
			tb.Fatal(err)
		}
	}
	tmpl := bin + DefaultNodeCmd[len("{self}"):]
	for _, f := range nodeFlags {
		tmpl += " " + f
	}
	cl, err := newCluster(run, n, tmpl, 3*time.Second, addrs, hosts, nil, disk)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.stop() })
	if err := cl.start(context.Background(), 30*time.Second); err != nil {
		tb.Fatal(err)
	}
	return cl
}

// BenchmarkPropagation measures how long a newly set value takes to reach
// every node of a real cluster: each iteration sets a fresh maximum on one
// node and polls every node until all report it. It reports the median and
// the maximum over the iterations.
//
// Each size runs on the loopback network and in the lab, side by side; at
// 10 nodes also without the eager push of a set to a few members
// (--no-eager-push), which left the slowest sets to gossip and push/pull.
//
//	go test ./harness -run XXX -bench 'Propagation$' -benchtime 200x
func BenchmarkPropagation(b *testing.B) {
	type variant struct {
		nodes int
		push  bool
	}
	for _, v := range []variant{{3, true}, {10, true}, {10, false}, {30, true}} {
		for _, network := range []string{NetLoopback, NetLab} {
			name := fmt.Sprintf("nodes=%d/net=%s", v.nodes, network)
			var flags []string
			if !v.push {
				name += "/no-eager-push"
				flags = append(flags, "--no-eager-push")
			}
			b.Run(name, func(b *testing.B) {
				bin, _ := buildBinaries(b)
				cl := startTestClusterOn(b, bin, v.nodes, network, diskOptions{}, flags...)
				benchPropagation(b, cl)
			})
		}
	}
}

// BenchmarkPropagationLarge is BenchmarkPropagation at 100 nodes, apart
// because each set takes seconds to reach them all on two cores.
//
//	go test ./harness -run XXX -bench PropagationLarge -benchtime 20x
func BenchmarkPropagationLarge(b *testing.B) {
	for _, network := range []string{NetLoopback, NetLab} {
		b.Run("nodes=100/net="+network, func(b *testing.B) {
			bin, _ := buildBinaries(b)
			benchPropagation(b, startTestClusterOn(b, bin, 100, network, diskOptions{}))
		})
	}
}

// benchPropagation sets b.N fresh maxima, round robin over the nodes, and
// reports how long each took to reach every node.
func benchPropagation(b *testing.B, cl *cluster) {
	n := len(cl.specs)
	clients := make([]*counterClient, n)
	for i, s := range cl.specs {
		clients[i] = newCounterClient(s.Addrs.HTTP)
		defer clients[i].close()
	}
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := int64(1000 + i)
		start := time.Now()
		if _, _, err := clients[i%n].set(ctx, v); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
					if got, err := c.get(ctx); err == nil && got >= v {
						return
					}
					time.Sleep(time.Millisecond)
				}
				b.Errorf("value %d did not reach %s in 10 s", v, c.base)
			}()
		}
		wg.Wait()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkSetDisk measures the node's acknowledged sets on a plain data
// directory and on the power-loss file system, side by side: the latency of
// one set at a time (median, p99) and durable sets per second with 8
// clients at once (the node commits them in groups). It needs the lab's
// private mount namespace.
//
//	go test ./harness -run XXX -bench SetDisk -benchtime 2000x
func BenchmarkSetDisk(b *testing.B) {
	for _, disk := range []string{DiskPlain, DiskLazy} {
		b.Run("disk="+disk, func(b *testing.B) {
			labtest.Need(b)
			bin, _ := buildBinaries(b)
			cl := startTestClusterOn(b, bin, 1, NetLoopback, diskOptions{lazy: disk == DiskLazy})
			c := newCounterClient(cl.specs[0].Addrs.HTTP)
			defer c.close()
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, _, err := c.set(ctx, int64(i+1)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")

			// Throughput: 8 clients for one second.
			var wg sync.WaitGroup
			var mu sync.Mutex
			done := 0
			next := int64(b.N + 1)
			deadline := time.Now().Add(time.Second)
			for range 8 {
				wg.Go(func() {
					cc := newCounterClient(cl.specs[0].Addrs.HTTP)
					defer cc.close()
					for time.Now().Before(deadline) {
						mu.Lock()
						next++
						v := next
						mu.Unlock()
						if _, _, err := cc.set(ctx, v); err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						done++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(done), "sets/s")
		})
	}
}

// BenchmarkCrashRestart measures a crash of one node on the power-loss
// file system, from SIGKILL to the restarted node answering its health
// check, and checks that the value it acknowledged before survived.
//
//	go test ./harness -run XXX -bench CrashRestart -benchtime 20x
func BenchmarkCrashRestart(b *testing.B) {
	labtest.Need(b)
	bin, _ := buildBinaries(b)
	cl := startTestClusterOn(b, bin, 1, NetLoopback, diskOptions{lazy: true})
	node := cl.specs[0].Name
	ctx := context.Background()
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		c := newCounterClient(cl.specs[0].Addrs.HTTP)
		if _, _, err := c.set(ctx, int64(i+1)); err != nil {
			b.Fatal(err)
		}
		c.close()
		start := time.Now()
		if _, err := cl.Crash(ctx, node); err != nil {
			b.Fatal(err)
		}
		if err := cl.Restart(ctx, node); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		c = newCounterClient(cl.specs[0].Addrs.HTTP)
		v, err := c.get(ctx)
		c.close()
		if err != nil || v != int64(i+1) {
			b.Fatalf("after a crash: %d, %v; want the acknowledged %d", v, err, i+1)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
