package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/runstore"
)

func shrinkCommand() *cli.Command {
	return &cli.Command{
		Name:      "shrink",
		Usage:     "shrink an invalid stored run to a smaller case that fails the same check",
		ArgsUsage: "RUN",
		Description: "RUN is an invalid run: a run directory, 'latest', or under --store: NAME/TIMESTAMP, NAME or\n" +
			"TIMESTAMP. With the run's configuration, shrink removes fault steps, shortens fault windows, and\n" +
			"removes requests, clients and nodes by delta debugging, keeping a reduction while the candidate fails\n" +
			"the same check in at least half of --tries runs. It writes RUN/shrink/ (schedule.txt, workload.jsonl,\n" +
			"summary.txt, run/) and prints the replay command last.\n" +
			"Exit code: 0 a smaller failing case found, 1 the failure did not reproduce, 254 bad usage or a run\n" +
			"that is not invalid, 255 harness failure.",
		Flags: []cli.Flag{
			storeFlag(),
			&cli.DurationFlag{Name: "budget", Value: 10 * time.Minute, Usage: "stop searching after `D` (the final reproduction included)"},
			&cli.IntFlag{Name: "tries", Value: 3, Usage: "judge each candidate by `N` runs: it fails when at least half of them (rounded up) fail"},
			&cli.IntFlag{Name: "parallel", Value: 6, Usage: "run up to `P` runs at once (with --tries 3, two candidates side by side)"},
		},
		Action: func(c *cli.Context) error {
			args, err := positional(c)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageError(errors.New("shrink takes exactly one RUN (a run directory, latest, NAME, TIMESTAMP or NAME/TIMESTAMP)"))
			}
			if c.Duration("budget") < time.Second {
				return usageError(fmt.Errorf("--budget must be at least 1s, got %s", c.Duration("budget")))
			}
			if c.Int("tries") < 1 || c.Int("tries") > 100 {
				return usageError(fmt.Errorf("--tries must be between 1 and 100, got %d", c.Int("tries")))
			}
			if c.Int("parallel") < 1 || c.Int("parallel") > 64 {
				return usageError(fmt.Errorf("--parallel must be between 1 and 64, got %d", c.Int("parallel")))
			}
			dir, err := runstore.Find(c.String("store"), args[0])
			if err != nil {
				return usageError(err)
			}
			rec, err := runstore.ReadRecord(dir)
			if err != nil {
				return usageError(err)
			}
			// Candidates run on the network the original ran on; on SSH
			// hosts this process stays in this machine's network.
			if rec.Network != harness.NetHosts {
				_, ran, err := enterNetwork(c.Context, cmp.Or(rec.Network, harness.NetAuto))
				if ran || err != nil {
					return err
				}
			}
			ctx := c.Context // cancelled by an interrupt (onInterrupt)
			r, err := harness.Shrink(ctx, dir, harness.ShrinkOptions{
				Budget: c.Duration("budget"), Tries: c.Int("tries"), Parallel: c.Int("parallel"), Program: programName(),
			}, os.Stdout)
			switch {
			case errors.Is(err, context.Canceled):
				return cli.Exit("ec-counter: interrupted; nodes stopped", exitCrashed)
			case errors.Is(err, harness.ErrNothingToShrink), errors.Is(err, harness.ErrShrinkBusy), errors.Is(err, lab.ErrPreflight):
				return usageError(err)
			case errors.Is(err, harness.ErrNotReproduced):
				return cli.Exit("ec-counter: "+err.Error(), exitInvalid)
			case err != nil:
				return harnessFailure(err)
			}
			summary, err := os.ReadFile(dir.File(runstore.ShrinkDir, runstore.ShrinkSummaryFile))
			if err != nil {
				return harnessFailure(err)
			}
			if r.Shrunk == r.Original {
				fmt.Println("no smaller case failed reliably: the original is already minimal for this search")
			}
			fmt.Printf("\n%s", summary) // its last line: "replay: <the command>"
			return nil
		},
	}
}
