package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/node"
)

func selftestCommand() *cli.Command {
	return &cli.Command{
		Name:  "selftest",
		Usage: "prove the checkers work here: run every bug in the scenario that exposes it, and the correct server under every nemesis",
		Description: "Runs each deliberate node bug (ec-counter test --bug list) in its scenario, expecting the\n" +
			"checkers to catch it, and the correct server with no faults and under each nemesis, expecting\n" +
			"it to pass. Prints a table; exits 0 only if every bug was caught in every run and the correct\n" +
			"server passed every run, 1 otherwise.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "seeds", Value: 1, Usage: "runs per scenario (seeds 1..N)"},
			&cli.StringFlag{Name: "store", Value: "store", Usage: "`DIR` where the runs are stored (under selftest-*)"},
			&cli.IntFlag{Name: "parallel", Value: 2, Usage: "runs at once"},
			netFlag(),
			&cli.StringSliceFlag{Name: "only", Usage: "run only these scenarios: bug names, or correct-no-faults, correct-partition, ... (an unknown name lists them all)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usageError(fmt.Errorf("selftest takes no arguments, got %q", c.Args().Slice()))
			}
			if c.Int("seeds") < 1 || c.Int("parallel") < 1 {
				return usageError(fmt.Errorf("--seeds and --parallel must be at least 1"))
			}
			net, ran, err := enterNetwork(c.Context, c.String("net"))
			if ran || err != nil {
				return err
			}
			ctx := c.Context // cancelled by an interrupt (onInterrupt)
			rows, err := harness.Selftest(ctx, harness.SelftestOptions{
				Seeds: c.Int("seeds"), Store: c.String("store"), Parallel: c.Int("parallel"), Only: c.StringSlice("only"),
				Net: net,
			}, os.Stdout)
			if rows == nil && err != nil {
				return usageError(err)
			}
			fmt.Println()
			if terr := harness.WriteSelftestTable(os.Stdout, rows); terr != nil {
				return harnessFailure(terr)
			}
			if err != nil {
				return harnessFailure(fmt.Errorf("selftest stopped: %w", err))
			}
			skipped := 0
			for _, r := range rows {
				if !r.OK() {
					return cli.Exit("selftest FAILED: see the rows marked FAIL", exitInvalid)
				}
				if r.Skipped != "" {
					skipped++
				}
			}
			if skipped > 0 {
				fmt.Printf("selftest passed, but %d of %d scenarios could not run here (see above): every bug that ran was caught and the correct server passed every run\n", skipped, len(rows))
				return nil
			}
			fmt.Println("selftest passed: every bug was caught and the correct server passed every run")
			return nil
		},
	}
}

// bugNames lists the node's deliberate bugs.
func bugNames() []string {
	var names []string
	for _, b := range node.Bugs() {
		names = append(names, b.Name)
	}
	return names
}

// checkBug validates a --bug value; "list" prints the bugs.
func checkBug(name string) (listed bool, err error) {
	if name == "list" {
		for _, b := range node.Bugs() {
			fmt.Printf("%-20s %s\n", b.Name, b.Description)
		}
		return true, nil
	}
	for _, n := range bugNames() {
		if n == name {
			return false, nil
		}
	}
	return false, fmt.Errorf("unknown --bug %q; known: %s", name, strings.Join(bugNames(), ", "))
}
