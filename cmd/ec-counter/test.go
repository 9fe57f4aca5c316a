package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ec-counter/ec-counter/harness"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/workload"
)

func testCommand() *cli.Command {
	d := harness.Defaults()
	return &cli.Command{
		Name:  "test",
		Usage: "run a cluster of real nodes under clients (and faults), check the history, store the run",
		Description: "Starts --nodes server processes (in the lab, or on loopback addresses: --net), runs --clients clients of --requests\n" +
			"random requests each, waits for convergence, checks the history and stores everything under\n" +
			"--store. Exit code: 0 valid, 1 invalid, 2 unknown, 254 bad usage, 255 harness failure.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "TOML `FILE` with the same keys as the flags (num_servers and num_clients also accepted); flags override it"},
			&cli.StringFlag{Name: "name", Value: d.Name, Usage: "test name: runs are stored under STORE/NAME/"},
			&cli.IntFlag{Name: "nodes", Aliases: []string{"num_servers"}, Value: d.Nodes, Usage: "number of server processes"},
			&cli.IntFlag{Name: "clients", Aliases: []string{"num_clients"}, Value: d.Clients, Usage: "number of clients; client i talks to node i mod nodes"},
			&cli.IntFlag{Name: "requests", Value: d.Requests, Usage: "requests per client"},
			&cli.Float64Flag{Name: "rate", Value: d.Rate, Usage: "requests per second per client (0: back to back)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the client operations (random when absent; always printed)"},
			&cli.DurationFlag{Name: "request-timeout", Value: d.RequestTimeout, Usage: "timeout of each client request"},
			&cli.DurationFlag{Name: "converge-timeout", Value: d.ConvergeTimeout, Usage: "how long nodes may take to agree after the last set"},
			&cli.StringFlag{Name: "store", Value: d.Store, Usage: "`DIR` where runs are stored"},
			&cli.IntFlag{Name: "test-count", Value: 1, Usage: "run a campaign of `N` runs with consecutive seeds; exit 255 if any crashed, else 1 if any was invalid, else 2 if any unknown"},
			&cli.StringFlag{Name: "junit", Usage: "write the runs as JUnit XML to `FILE` (one testcase per run)"},
			&cli.IntFlag{Name: "parallel", Value: 1, Usage: "run up to `P` runs of a campaign at once, each with its own addresses, lab and run directory"},
			&cli.StringFlag{Name: "shard", Usage: "run only the `K/M`-th of M slices of the campaign's seeds (a CI matrix of M machines runs the campaign once; combine their JUnit files with 'ec-counter junit-merge')"},
			&cli.StringFlag{Name: "bug", Usage: "run every node with a deliberate `BUG` switched on, to see the checkers catch it; 'list' describes them"},
			&cli.StringFlag{Name: "nemesis", Usage: "comma-separated fault `KINDS` to inject on a seeded schedule (partition, delay, loss, link, kill, pause, crash, or a shape); 'list' describes them; none: no faults (default: every kind of all, and crash, that this network can inject for these nodes)"},
			&cli.DurationFlag{Name: "nemesis-interval", Value: d.NemesisInterval, Usage: "about how long each fault lasts, and each clean stretch between faults"},
			&cli.StringFlag{Name: "nemesis-schedule", Usage: "scripted fault schedule `FILE` (see nemesis/SCHEDULE.md), instead of --nemesis"},
			&cli.StringFlag{Name: "workload", Usage: "send the requests of `FILE` (JSON Lines, one request a line, as a run's workload.jsonl) instead of the seeded ones; it fixes --clients and --requests"},
			&cli.StringFlag{Name: "values", Value: d.Values, Usage: "set `VALUES` of the workload: boundaries (climb across 2^31, 2^32 and 2^53, where integer-width bugs show) or small (readable histories)"},
			netFlag(),
			&cli.StringFlag{Name: "hosts", Usage: "run the nodes on the SSH hosts of TOML `FILE`, one node per [[host]] (docs/ssh-hosts.md \"Nodes on SSH hosts\"); faults by nftables there"},
			&cli.StringFlag{Name: "disk", Value: d.Disk, Usage: "`DISK` under the nodes' data directories: plain, lazy (a power-loss file system: a crash loses what was not fsynced), torn (lazy, and a crash keeps a random prefix of each file's unsynced writes), or auto (lazy when the nemesis can crash)"},
			&cli.StringFlag{Name: "node-cmd", Value: d.NodeCmd, Usage: "node command `TEMPLATE` with {name} {http} {gossip} {peers} {peer_http} {data_dir} {admin_token_file} ({self}: this binary)"},
		},
		Before: applyConfigFile,
		Action: runTest,
	}
}

func runTest(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError(fmt.Errorf("test takes no arguments, got %q", c.Args().Slice()))
	}
	if c.String("nemesis") == "list" {
		for _, line := range nemesis.Describe() {
			fmt.Println(line)
		}
		return nil
	}
	if b := c.String("bug"); b != "" {
		listed, err := checkBug(b)
		if err != nil {
			return usageError(err)
		}
		if listed {
			return nil
		}
	}
	cfg := harness.Defaults()
	if path := c.String("hosts"); path != "" {
		// The nodes run elsewhere: this process stays in this machine's
		// network, from which the hosts are reached.
		hf, err := lab.ReadHosts(path)
		if err != nil {
			return usageError(fmt.Errorf("--hosts: %w", err))
		}
		if c.Int("parallel") > 1 {
			return usageError(errors.New("--parallel: runs on the same --hosts would share their ports: run them one at a time"))
		}
		abs, err := filepath.Abs(path) // the replay command works from anywhere
		if err != nil {
			return usageError(err)
		}
		cfg.Hosts, cfg.HostsFile = hf, abs
		cfg.Net = c.String("net")
		if !c.IsSet("nodes") {
			c.Set("nodes", strconv.Itoa(len(hf.Hosts)))
		}
	} else {
		net, ran, err := enterNetwork(c.Context, c.String("net"))
		if ran || err != nil {
			return err
		}
		cfg.Net = net
	}
	cfg.Name = c.String("name")
	cfg.Nodes = c.Int("nodes")
	cfg.Clients = c.Int("clients")
	cfg.Requests = c.Int("requests")
	cfg.Rate = c.Float64("rate")
	cfg.Seed, cfg.HasSeed = c.Uint64("seed"), c.IsSet("seed")
	cfg.RequestTimeout = c.Duration("request-timeout")
	cfg.ConvergeTimeout = c.Duration("converge-timeout")
	cfg.Store = c.String("store")
	cfg.NodeCmd = c.String("node-cmd")
	defaultFaults := false
	switch k := c.String("nemesis"); {
	case k == harness.NemesisNone: // a run without faults
	case k != "":
		cfg.Nemesis = strings.Split(k, ",")
	default:
		defaultFaults = c.String("nemesis-schedule") == ""
	}
	cfg.NemesisInterval = c.Duration("nemesis-interval")
	if path := c.String("nemesis-schedule"); path != "" {
		script, err := readSchedule(path)
		if err != nil {
			return usageError(err)
		}
		cfg.Script, cfg.NemesisSchedule = script, path
	}
	if path := c.String("workload"); path != "" {
		if c.IsSet("clients") || c.IsSet("requests") {
			return usageError(errors.New("--workload fixes the clients and their requests: drop --clients and --requests"))
		}
		w, err := readWorkload(c.Context, path)
		if err != nil {
			return usageError(err)
		}
		cfg.SetWorkload(w, path)
	}
	cfg.Bug = c.String("bug")
	cfg.Values = c.String("values")
	cfg.Disk = c.String("disk")
	cfg.Command, cfg.Program = os.Args, programName()
	if defaultFaults {
		cfg.UseDefaultFaults() // once the network, node command, disk and hosts are known
	}
	if err := cfg.Validate(); err != nil {
		return usageError(flagNames(err))
	}
	ctx := c.Context // cancelled by an interrupt (onInterrupt)
	if c.Int("test-count") != 1 || c.String("junit") != "" || c.IsSet("parallel") || c.IsSet("shard") {
		return runCampaign(ctx, c, cfg)
	}
	if term.IsTerminal(int(os.Stdout.Fd())) {
		cfg.Progress = os.Stdout // a live line; none in pipes and CI logs
	}
	o, err := harness.Run(ctx, cfg, os.Stdout)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return cli.Exit("ec-counter: interrupted; nodes stopped", exitCrashed)
		}
		if errors.Is(err, harness.ErrFaultsUnsupported) || errors.Is(err, lab.ErrPreflight) {
			return usageError(err)
		}
		return harnessFailure(err)
	}
	return exitWith(verdictExit(o.Result.Valid))
}

// exitWith returns an error carrying code without a message, or nil for 0.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}

// runCampaign runs --test-count runs, prints their table, writes --junit,
// and exits with the campaign's code.
func runCampaign(ctx context.Context, c *cli.Context, cfg harness.Config) error {
	opts := harness.CampaignOptions{Count: c.Int("test-count"), Parallel: c.Int("parallel")}
	if s := c.String("shard"); s != "" {
		k, m, ok := strings.Cut(s, "/")
		var err1, err2 error
		opts.Shard, err1 = strconv.Atoi(k)
		opts.Shards, err2 = strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || opts.Shards < 1 {
			return usageError(fmt.Errorf("--shard must be K/M, such as 2/4, got %q", s))
		}
	}
	if c.Int("parallel") < 1 {
		return usageError(fmt.Errorf("--parallel must be at least 1, got %d", c.Int("parallel")))
	}
	if path := c.String("junit"); path != "" {
		// Fail now, not after the whole campaign.
		f, err := os.Create(path)
		if err != nil {
			return usageError(fmt.Errorf("--junit: %w", err))
		}
		f.Close()
	}
	runs, err := harness.Campaign(ctx, cfg, opts, os.Stdout, term.IsTerminal(int(os.Stdout.Fd())))
	var fe *harness.FieldError
	switch {
	case errors.As(err, &fe):
		return usageError(flagNames(err))
	case errors.Is(err, harness.ErrFaultsUnsupported) || errors.Is(err, lab.ErrPreflight):
		return usageError(err)
	}
	fmt.Println()
	if terr := harness.WriteCampaignTable(os.Stdout, runs); terr != nil {
		return harnessFailure(terr)
	}
	if path := c.String("junit"); path != "" {
		f, ferr := os.Create(path)
		if ferr == nil {
			ferr = harness.WriteJUnit(f, cfg.Name, runs)
			if cerr := f.Close(); ferr == nil {
				ferr = cerr
			}
		}
		if ferr != nil {
			return harnessFailure(fmt.Errorf("--junit: %w", ferr))
		}
		fmt.Printf("JUnit XML: %s\n", path)
	}
	if err != nil {
		return harnessFailure(fmt.Errorf("campaign stopped: %w", err))
	}
	return exitWith(campaignExit(runs))
}

// maxScheduleFile bounds a --nemesis-schedule file.
const maxScheduleFile = 1 << 20

// readSchedule reads a scripted schedule file.
func readSchedule(path string) (string, error) {
	b, err := boundedfile.ReadFile(path, maxScheduleFile)
	if err != nil {
		return "", fmt.Errorf("--nemesis-schedule: %w", err)
	}
	return string(b), nil
}

// readWorkload reads and parses a --workload file; an interrupt stops it.
func readWorkload(ctx context.Context, path string) (workload.Workload, error) {
	w, err := workload.ParseFile(ctx, path)
	if err := cmp.Or(ctx.Err(), err); err != nil {
		return nil, fmt.Errorf("--workload: %w", err)
	}
	return w, nil
}

// programName is how a replay command names this program: "go run
// ./cmd/ec-counter" when it runs from go run's build cache, else
// "ec-counter".
func programName() string {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		return "go run ./cmd/ec-counter"
	}
	return "ec-counter"
}

// flagNames renders the harness's settings errors with the flags that set
// them: the Config field request_timeout is the flag --request-timeout.
func flagNames(err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
		var fe *harness.FieldError
		if errors.As(e, &fe) {
			msgs[i] = fe.Name(func(field string) string { return "--" + strings.ReplaceAll(field, "_", "-") })
		}
	}
	return errors.New(strings.Join(msgs, "\n"))
}
