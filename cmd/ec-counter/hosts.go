package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/lab"
)

// hostsFlag is --hosts of doctor and cleanup.
func hostsFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "hosts", Usage: usage}
}

// readHostsFlag reads the hosts file of --hosts (usage error if bad).
func readHostsFlag(c *cli.Context) (*lab.HostsFile, error) {
	hf, err := lab.ReadHosts(c.String("hosts"))
	if err != nil {
		return nil, usageError(fmt.Errorf("--hosts: %w", err))
	}
	return hf, nil
}

// doctorHosts prints the preflight of every host of --hosts as a table (a
// run with network faults and this binary as the node: the most a run
// needs) and exits 0 if all pass, 1 if not.
func doctorHosts(c *cli.Context) error {
	hf, err := readHostsFlag(c)
	if err != nil {
		return err
	}
	reps := lab.CheckHosts(c.Context, hf, lab.FleetOptions{Nft: true, Arch: true, Delay: true})
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSSH\tROOT\tNFTABLES\tNFQUEUE\tCLOCK\tDISK FREE\tSYSTEM\tPORTS\tVERDICT")
	failed := 0
	var notes []string
	for _, r := range reps {
		verdict := "ok"
		if p := r.Problems(); len(p) > 0 {
			verdict = "FAIL: " + strings.Join(p, "; ")
			failed++
		}
		switch {
		case r.SSH != nil:
			fmt.Fprintf(tw, "%s\tNO\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Address, verdict)
			continue
		case !r.Checked(): // no root, or the checks failed: nothing more is known
			fmt.Fprintf(tw, "%s\tyes\t%s\t-\t-\t-\t-\t-\t-\t%s\n", r.Address, orDash(r.Root), verdict)
			continue
		}
		queue := "no (delay needs it)"
		if r.NFQueue {
			queue = "yes"
		}
		ports := "free"
		if u := r.Ports; u != nil && len(u.Held)+len(u.Listeners) > 0 {
			ports = "IN USE"
		} else if u != nil && len(u.DeadRuns) > 0 {
			ports = "a dead run's"
			for _, d := range u.DeadRuns {
				notes = append(notes, fmt.Sprintf("%s: a dead run's node listens (the next run, or ec-counter cleanup --hosts, removes it): %s", r.Address, d))
			}
		}
		fmt.Fprintf(tw, "%s\tyes\t%s\t%s\t%s\t%+.3fs\t%d MiB\t%s\t%s\t%s\n", r.Address, r.Root, orDash(r.Nft), queue,
			r.Skew.Round(time.Millisecond).Seconds(), r.Free>>20, orDash(r.Arch), ports, verdict)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Println(n)
	}
	if failed > 0 {
		fmt.Printf("\n%d of %d hosts cannot take a run: 'ec-counter test --hosts' stops with 254 before any node starts\n", failed, len(reps))
		return cli.Exit("", exitInvalid)
	}
	fmt.Printf("\nall %d hosts can take a run (partition, delay, loss, kill and pause; crash runs on this machine only)\n", len(reps))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "remove what dead runs left on SSH hosts: their processes, nftables tables and files",
		Description: "A run on SSH hosts (test --hosts) removes what it put there when it ends; a harness that was killed\n" +
			"cannot. Every run does this sweep when it starts; cleanup does it on demand. A run is dead when no\n" +
			"harness holds its lock on the host; a live run is never touched, nor anything not tagged by a run.\n" +
			"Exit code: 0 done, 1 a host could not be swept or something a dead run left could not be removed\n" +
			"(each named), 254 bad usage.",
		Flags: []cli.Flag{hostsFlag("the hosts `FILE` (docs/ssh-hosts.md \"Nodes on SSH hosts\")")},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 || c.String("hosts") == "" {
				return usageError(fmt.Errorf("usage: ec-counter cleanup --hosts FILE"))
			}
			hf, err := readHostsFlag(c)
			if err != nil {
				return err
			}
			failed := false
			for _, r := range lab.Cleanup(c.Context, hf) {
				for _, l := range r.Removed {
					fmt.Printf("%s: removed %s\n", r.Address, l)
				}
				for _, l := range r.Left {
					failed = true
					fmt.Printf("%s: NOT REMOVED: %s\n", r.Address, l)
				}
				switch {
				case r.Err != nil:
					failed = true
					fmt.Printf("%s: FAILED: %v\n", r.Address, r.Err)
				case len(r.Removed)+len(r.Left) == 0:
					fmt.Printf("%s: nothing left by dead runs\n", r.Address)
				}
			}
			if failed {
				return cli.Exit("", exitInvalid)
			}
			return nil
		},
	}
}

// hostDelayerCommand is what the harness runs on an SSH host to delay its
// node's links (lab.ServeDelays); not for users.
func hostDelayerCommand() *cli.Command {
	return &cli.Command{
		Name:   "host-delayer",
		Hidden: true,
		Usage:  "delay a node's links on an SSH host (run by the harness over SSH)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "table", Required: true},
			&cli.UintFlag{Name: "queue", Required: true},
			&cli.StringFlag{Name: "addr", Required: true},
		},
		Action: func(c *cli.Context) error {
			addr, err := netip.ParseAddr(c.String("addr"))
			if err != nil || !addr.Is4() || c.Uint("queue") > 65535 || !strings.HasPrefix(c.String("table"), "ecc_") {
				return usageError(fmt.Errorf("host-delayer: --table ecc_..., --queue 0-65535 and an IPv4 --addr, got %q %d %q", c.String("table"), c.Uint("queue"), c.String("addr")))
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := lab.ServeDelays(ctx, c.String("table"), uint16(c.Uint("queue")), addr, os.Stdin, os.Stdout); err != nil {
				return harnessFailure(err)
			}
			return nil
		},
	}
}
