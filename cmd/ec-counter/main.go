// Command ec-counter runs the ec-counter fault-injection harness and its
// counter server: see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/harness"
	"github.com/urfave/cli/v2"
)

// Exit codes of docs/store-and-exit-codes.md "Exit codes".
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
	for _, cmd := range app.Commands {
		cmd.Action = onInterrupt(cmd.Name, cmd.Action)
	}
	return exitCode(app.Run(os.Args))
}

// interruptSignals are the signals that stop a command (docs/store-and-exit-codes.md "Exit codes").
var interruptSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// onInterrupt makes every interrupt of a command end the same way: exit
// 255 with a line saying so, in whatever phase the command was. That is
// not Go's default: a process started with SIGINT ignored (a shell's
// background job) would run on, and the harness inside the lab, the first
// process of its PID namespace, is not killed by a signal it does not
// handle, so Go exits 2, the code of an unknown verdict.
//
// Commands that start processes or change hosts (test, selftest, shrink,
// cleanup, doctor, client) see their context cancelled and stop in order;
// a second signal exits at once (in the lab the kernel still removes every
// namespace and process; on SSH hosts the next run sweeps). Commands that
// only read (check, runs, show, junit-merge) exit at once. node and serve
// keep their own contract: SIGTERM or SIGINT is a clean stop, exit 0;
// host-delayer stops with its SSH session.
func onInterrupt(name string, action cli.ActionFunc) cli.ActionFunc {
	if action == nil {
		return nil
	}
	switch name {
	case "node", "serve", "host-delayer":
		return action
	case "test", "selftest", "shrink", "cleanup", "doctor", "client":
		return func(c *cli.Context) error {
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			interrupted := watchInterrupts(func(n int) {
				if n == 1 {
					cancel()
					return
				}
				fmt.Fprintln(os.Stderr, "ec-counter: interrupted twice: exiting at once")
				os.Exit(exitCrashed)
			})
			defer interrupted.stop()
			c.Context = ctx
			err := action(c)
			if !interrupted.seen() {
				return err
			}
			if ec, ok := errors.AsType[cli.ExitCoder](err); ok && ec.ExitCode() == exitCrashed {
				return err // it says what was stopped, or the lab's child did
			}
			return cli.Exit("ec-counter: interrupted", exitCrashed)
		}
	}
	return func(c *cli.Context) error {
		interrupted := watchInterrupts(func(int) {
			fmt.Fprintln(os.Stderr, "ec-counter: interrupted")
			os.Exit(exitCrashed)
		})
		defer interrupted.stop()
		return action(c)
	}
}

// interrupts watches for interruptSignals while a command runs.
type interrupts struct {
	sigs  chan os.Signal
	done  chan struct{}
	count atomic.Int32
}

// watchInterrupts calls on with the count so far at each interrupt signal,
// until stop.
func watchInterrupts(on func(n int)) *interrupts {
	in := &interrupts{sigs: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(in.sigs, interruptSignals...)
	go func() {
		for {
			select {
			case <-in.sigs:
				on(int(in.count.Add(1)))
			case <-in.done:
				return
			}
		}
	}()
	return in
}

// seen reports whether an interrupt arrived.
func (in *interrupts) seen() bool { return in.count.Load() > 0 }

// stop stops watching.
func (in *interrupts) stop() {
	signal.Stop(in.sigs)
	close(in.done)
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
