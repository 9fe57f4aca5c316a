package labhosts

import (
	"context"
	"syscall"
	"testing"

	"github.com/ec-counter/ec-counter/api"
)

// BenchmarkFleetFaultStep times one fault step on an SSH test host, from
// the call to the fault being in force (SetFaults returns once nft -f, or
// the delayer, has answered): a partition's drop rule, a delay, and a
// signal to a process group.
func BenchmarkFleetFaultStep(b *testing.B) {
	f, hf := delayingFleet(b)
	ctx := context.Background()
	peer := hf.Hosts[1].NodeAddr + ":7946"
	for _, c := range []struct {
		name string
		fs   api.FaultSet
	}{
		{"partition", api.FaultSet{Links: map[string]api.LinkFaults{peer: {In: &api.DirFaults{Drop: true}}}}},
		{"delay", api.FaultSet{Links: map[string]api.LinkFaults{peer: {In: &api.DirFaults{DelayMS: 50, JitterMS: 5}}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fs := c.fs
				if i%2 == 1 {
					fs = api.FaultSet{} // the heal
				}
				if err := f.SetFaults(ctx, "n1", fs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	p, err := f.Start(ctx, "n2", []string{"sleep", "600"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("signal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sig := syscall.SIGSTOP
			if i%2 == 1 {
				sig = syscall.SIGCONT
			}
			if err := p.Signal(sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	p.Signal(syscall.SIGKILL)
	<-p.Done()
}
