// Command ec-counter runs the ec-counter fault-injection harness and its
// counter server: see README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/harness"
	"github.com/urfave/cli/v2"
)

// Exit codes of README "Exit codes".
const (
	exitValid   = 0
	exitInvalid = 1
	exitUnknown = 2
	exitUsage   = 254
	exitCrashed = 255
)

func main() { os.Exit(run()) }

// verdictExit is the exit code of one run's or one history's verdict.
func verdictExit(v checker.Validity) int {
	switch v {
	case checker.Valid:
		return exitValid
	case checker.Invalid:
		return exitInvalid
	}
	return exitUnknown
}

// campaignExit is a campaign's exit code: exitCrashed if any run crashed,
// else exitInvalid if any was invalid, else exitUnknown if any was
// unknown, else exitValid.
func campaignExit(runs []harness.CampaignRun) int {
	code := exitValid
	for _, r := range runs {
		if r.Outcome == nil {
			return exitCrashed
		}
		switch c := verdictExit(r.Outcome.Result.Valid); {
		case c == exitInvalid:
			code = exitInvalid
		case c == exitUnknown && code == exitValid:
			code = exitUnknown
		}
	}
	return code
}

// run runs the command line in os.Args and returns the exit code.
func run() int {
	app := &cli.App{
		Name:                 "ec-counter",
		Usage:                "fault-injection test harness for an eventually-consistent max counter",
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			testCommand(),
			checkCommand(),
			nodeCommand(),
			clientCommand(),
			selftestCommand(),
			runsCommand(),
			showCommand(),
			serveCommand(),
			doctorCommand(),
			junitMergeCommand(),
			shrinkCommand(),
			cleanupCommand(),
			hostDelayerCommand(),
		},
		CommandNotFound: func(c *cli.Context, name string) {
			cli.HandleExitCoder(cli.Exit(fmt.Sprintf("ec-counter: no command %q; see 'ec-counter help'", name), exitUsage))
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError(err)
		},
	}
	return exitCode(app.Run(os.Args))
}

// usageError marks err as bad usage (exit 254).
func usageError(err error) error {
	return cli.Exit(fmt.Sprintf("ec-counter: %v", err), exitUsage)
}

// harnessFailure marks err as a failure of ec-counter itself (exit 255).
func harnessFailure(err error) error {
	return cli.Exit(fmt.Sprintf("ec-counter: %v", err), exitCrashed)
}

// exitCode prints err and maps it to a process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitValid
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "ec-counter: %v\n", err)
	// urfave/cli reports unknown flags and commands as plain errors.
	return exitUsage
}
