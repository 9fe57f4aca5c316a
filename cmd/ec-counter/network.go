package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/lab"
)

// netFlag is --net of test and selftest.
func netFlag() cli.Flag {
	return &cli.StringFlag{
		Name: "net", Value: harness.NetAuto,
		Usage: "`NETWORK` the nodes run on: lab (each node a network namespace of its own, faults by the kernel; no root needed), " +
			"loopback (127.x addresses, faults through each node's admin API), or auto (the lab where this machine can build it)",
	}
}

// enterNetwork prepares the network a command asked for. For lab and
// auto, this process re-runs itself inside the private namespaces the lab
// needs (lab.Reexec) unless it already runs there; then ran is true and
// err carries the child's exit code. Otherwise it returns the network to
// use: auto falls back to loopback, saying why, where the lab cannot be
// built; lab refuses (254).
func enterNetwork(ctx context.Context, net string) (use string, ran bool, err error) {
	switch net {
	case harness.NetLoopback:
		return net, false, nil
	case harness.NetLab, harness.NetAuto:
	default:
		return "", false, usageError(fmt.Errorf("--net must be auto, lab or loopback, got %q", net))
	}
	if !lab.Inside() {
		code, rerr := lab.Reexec()
		if rerr == nil {
			return "", true, exitWith(code)
		}
		if net == harness.NetLab {
			return "", false, usageError(fmt.Errorf("--net lab: %w", rerr))
		}
		fmt.Fprintf(os.Stderr, "ec-counter: the lab is not available (%v); running on the loopback network\n", rerr)
		return harness.NetLoopback, false, nil
	}
	if err := lab.Init(); err != nil {
		return "", false, harnessFailure(err)
	}
	if net == harness.NetAuto {
		if _, perr := lab.Probe(ctx); perr != nil {
			fmt.Fprintf(os.Stderr, "ec-counter: the lab does not work here (%v); running on the loopback network ('ec-counter doctor' says more)\n", perr)
			return harness.NetLoopback, false, nil
		}
	}
	return harness.NetLab, false, nil
}
