package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "re-check a stored run directory or a history.jsonl file",
		ArgsUsage: "PATH",
		Description: "Reads the history, runs every checker and prints the verdict with its explanations.\n" +
			"Exit code: 0 valid, 1 invalid, 2 unknown, 254 bad usage (e.g. unreadable history).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON instead of the summary"},
		},
		Action: func(c *cli.Context) error {
			args, err := positional(c)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageError(errors.New("check takes exactly one PATH (a run directory or a history.jsonl)"))
			}
			path, err := runstore.FindHistory(args[0])
			if err != nil {
				return usageError(err)
			}
			// Read within a bound whatever the file is: a FIFO nobody
			// writes to is an empty history, not a hang.
			f, err := runstore.OpenHistory(path)
			if err != nil {
				return usageError(err)
			}
			defer f.Close()
			k, err := checker.CheckHistory(f)
			res := k.Result()
			if err != nil {
				if !errors.Is(err, histories.ErrTruncated) {
					return usageError(fmt.Errorf("%s: %w", path, err))
				}
				fmt.Fprintf(os.Stderr, "warning: %s: %v; checking the %d complete ops before it\n", path, err, res.Checks.Stats.Ops)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return harnessFailure(err)
				}
			} else {
				fmt.Printf("%s: %d ops\n", path, res.Checks.Stats.Ops)
				res.WriteSummary(os.Stdout)
			}
			return exitWith(verdictExit(res.Valid))
		},
	}
}
