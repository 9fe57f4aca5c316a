package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/report"
	"github.com/ec-counter/ec-counter/runstore"
)

// storeFlag is the --store flag of the commands that browse a store.
func storeFlag() cli.Flag {
	return &cli.StringFlag{Name: "store", Value: harness.Defaults().Store, Usage: "`DIR` where runs are stored"}
}

// positional returns the command's positional arguments, applying the
// flags found among them: urfave/cli v2 stops parsing flags at the first
// argument, and users write "show latest --store DIR".
func positional(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var flag cli.Flag
		for _, f := range c.Command.Flags {
			if slices.Contains(f.Names(), name) {
				flag = f
			}
		}
		if flag == nil {
			return nil, usageError(fmt.Errorf("flag provided but not defined: %s", a))
		}
		if !hasVal {
			if _, isBool := flag.(*cli.BoolFlag); isBool {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				return nil, usageError(fmt.Errorf("flag needs an argument: %s", a))
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, usageError(fmt.Errorf("invalid value %q for flag %s: %w", val, a, err))
		}
	}
	return pos, nil
}

// openStore returns the --store directory, or a usage error if it is not one.
func openStore(c *cli.Context) (string, error) {
	store := c.String("store")
	st, err := os.Stat(store)
	if err != nil {
		return "", usageError(fmt.Errorf("--store %s: %w", store, err))
	}
	if !st.IsDir() {
		return "", usageError(fmt.Errorf("--store %s is not a directory", store))
	}
	return store, nil
}

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list the stored runs, newest first",
		Description: "Prints one line per run of --store: test name, start time, seed, nemesis, verdict (valid,\n" +
			"invalid, unknown, or crashed/incomplete for runs without results), ops and directory. A file of a\n" +
			"run that cannot be read (not JSON, over its size bound, a device or a FIFO) is noted under the table.",
		Flags: []cli.Flag{
			storeFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the list as JSON"},
		},
		Action: func(c *cli.Context) error {
			if args, err := positional(c); err != nil || len(args) > 0 {
				return cmp.Or(err, usageError(fmt.Errorf("runs takes no arguments, got %q", args)))
			}
			store, err := openStore(c)
			if err != nil {
				return err
			}
			runs, err := report.List(store)
			if err != nil {
				return harnessFailure(err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(runs); err != nil {
					return harnessFailure(err)
				}
				return nil
			}
			if len(runs) == 0 {
				fmt.Printf("no runs in %s\n", store)
				return nil
			}
			if err := report.WriteTable(os.Stdout, runs); err != nil {
				return harnessFailure(err)
			}
			return nil
		},
	}
}

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a stored run's summary, verdicts and anomalies",
		ArgsUsage: "RUN",
		Description: "RUN is a run directory, 'latest', or under --store: NAME/TIMESTAMP, NAME (that test's newest\n" +
			"run) or TIMESTAMP (or a unique prefix of one). With --report, also (re)writes the run's report.html.",
		Flags: []cli.Flag{
			storeFlag(),
			&cli.BoolFlag{Name: "report", Usage: "also write the run's report.html"},
		},
		Action: func(c *cli.Context) error {
			args, err := positional(c)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return usageError(errors.New("show takes exactly one RUN (a run directory, latest, NAME, TIMESTAMP or NAME/TIMESTAMP)"))
			}
			dir, err := runstore.Find(c.String("store"), args[0])
			if err != nil {
				return usageError(err)
			}
			if c.Bool("report") {
				if err := report.Write(string(dir)); err != nil {
					return harnessFailure(err)
				}
			}
			run, err := report.Load(string(dir))
			if err != nil {
				return harnessFailure(err)
			}
			if err := run.WriteText(os.Stdout); err != nil {
				return harnessFailure(err)
			}
			return nil
		},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "browse the stored runs over HTTP",
		Description: "Serves an index of --store's runs, coloured by verdict and filterable, with each run's report\n" +
			"(written on demand), history, results, run record and logs, until SIGINT or SIGTERM.",
		Flags: []cli.Flag{
			storeFlag(),
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "`HOST:PORT` to listen on"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "also answer requests for host `NAME` (IP addresses and localhost always are; other names are refused, against DNS rebinding)"},
		},
		Action: func(c *cli.Context) error {
			if args, err := positional(c); err != nil || len(args) > 0 {
				return cmp.Or(err, usageError(fmt.Errorf("serve takes no arguments, got %q", args)))
			}
			store, err := openStore(c)
			if err != nil {
				return err
			}
			addr := c.String("addr")
			if _, port, err := net.SplitHostPort(addr); err != nil {
				return usageError(fmt.Errorf("--addr %q: want HOST:PORT, like 127.0.0.1:8080: %v", addr, err))
			} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
				return usageError(fmt.Errorf("--addr %q: port %q is not a number from 0 to 65535", addr, port))
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return harnessFailure(err)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := &http.Server{Handler: report.GuardHosts(report.Handler(store), c.StringSlice("allow-host")...), ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			fmt.Printf("serving the runs of %s at http://%s/ (Ctrl-C to stop)\n", store, ln.Addr())
			select {
			case err := <-served:
				return harnessFailure(fmt.Errorf("serve: %w", err))
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil {
				return harnessFailure(fmt.Errorf("shutdown: %w", err))
			}
			return nil
		},
	}
}
