package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// Check is one capability Probe tried.
type Check struct {
	Name   string // what was tried, e.g. "nftables rules"
	OK     bool
	Detail string // the measurement, or why it failed
}

// Probe builds a two-host lab and tries every kind of fault on real
// traffic: a connection between the hosts, a partition that must cut it,
// loss rules, and a delay that must hold packets. It runs only inside the
// namespace Reexec makes. It returns one Check per step, stopping at the
// first failure, and nil error only if the lab works.
func Probe(ctx context.Context) ([]Check, error) {
	var checks []Check
	fail := func(name string, err error) ([]Check, error) {
		checks = append(checks, Check{Name: name, Detail: err.Error()})
		return checks, fmt.Errorf("%s: %w", name, err)
	}
	if !Inside() {
		return fail("private namespace", errors.New("not inside the namespace Reexec makes"))
	}
	start := time.Now()
	l, err := Build(ctx, []string{"p1", "p2"})
	if err != nil {
		return fail("hosts (namespaces, veth pairs, nftables, queue)", err)
	}
	defer l.Close()
	checks = append(checks, Check{Name: "hosts (namespaces, veth pairs, nftables, queue)", OK: true,
		Detail: fmt.Sprintf("2 hosts in %s", time.Since(start).Round(time.Millisecond))})
	a, b := l.hosts[0], l.hosts[1]

	var ln net.Listener
	if err := inNetns(b.ns, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(b.Addr.String(), "9"))
		return err
	}); err != nil {
		return fail("traffic between hosts", err)
	}
	defer ln.Close()
	go serveEcho(ln)
	dial := func(timeout time.Duration) (time.Duration, error) {
		var c net.Conn
		t0 := time.Now()
		err := inNetns(a.ns, func() error {
			var err error
			c, err = net.DialTimeout("tcp", net.JoinHostPort(b.Addr.String(), "9"), timeout)
			return err
		})
		if err != nil {
			return 0, err
		}
		c.Close()
		return time.Since(t0), nil
	}
	if _, err := dial(time.Second); err != nil {
		return fail("traffic between hosts", err)
	}
	checks = append(checks, Check{Name: "traffic between hosts", OK: true, Detail: "TCP through the router"})

	set := func(f *api.DirFaults) error {
		fs := api.FaultSet{Links: map[string]api.LinkFaults{}}
		if f != nil {
			fs.Links[b.Addr.String()+":1"] = api.LinkFaults{Out: f}
		}
		return l.SetFaults(ctx, a.Name, fs)
	}
	if err := set(&api.DirFaults{Drop: true}); err != nil {
		return fail("partition (nftables drop)", err)
	}
	if _, err := dial(100 * time.Millisecond); err == nil {
		return fail("partition (nftables drop)", errors.New("a connection got through the drop rule"))
	}
	checks = append(checks, Check{Name: "partition (nftables drop)", OK: true, Detail: "connection cut"})
	if err := set(&api.DirFaults{Loss: 0.5}); err != nil {
		return fail("loss (nftables numgen)", err)
	}
	checks = append(checks, Check{Name: "loss (nftables numgen)", OK: true, Detail: "rule accepted"})
	const delay = 30 * time.Millisecond
	if err := set(&api.DirFaults{DelayMS: int(delay / time.Millisecond)}); err != nil {
		return fail("delay (NFQUEUE to the delayer)", err)
	}
	took, err := dial(time.Second)
	if err == nil && took < delay {
		err = fmt.Errorf("a connection took %s with %s of delay", took, delay)
	}
	if err != nil {
		return fail("delay (NFQUEUE to the delayer)", err)
	}
	checks = append(checks, Check{Name: "delay (NFQUEUE to the delayer)", OK: true,
		Detail: fmt.Sprintf("connect took %s with %s of delay", took.Round(100*time.Microsecond), delay)})
	if err := set(nil); err != nil {
		return fail("heal", err)
	}
	return checks, nil
}

// serveEcho echoes back what every connection to ln sends, until ln closes.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}
