package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/node"
)

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "run one counter server",
		Description: "Serves the counter's HTTP API (GET/POST /v1/counter, GET /v1/health) and gossips with\n" +
			"--peers through memberlist. Logs to stderr; exits 0 after a clean shutdown on SIGTERM or SIGINT.\n" +
			"--name, --http, --gossip and --data-dir are required. --bug switches on a deliberate bug, to show\n" +
			"that the test harness catches it ('--bug list' lists them).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "unique node `NAME`, e.g. n1"},
			&cli.StringFlag{Name: "http", Usage: "`HOST:PORT` of the HTTP API"},
			&cli.StringFlag{Name: "gossip", Usage: "`IP:PORT` to gossip on, UDP and TCP (one loopback IP per node)"},
			&cli.StringFlag{Name: "peers", Usage: "other nodes' gossip addresses `IP:PORT,...` (may be empty)"},
			&cli.StringFlag{Name: "data-dir", Usage: "`DIR` for the durable counter (created if missing)"},
			&cli.StringFlag{Name: "admin-token-file", Usage: "`FILE` holding the admin API's bearer token (admin API off without it)"},
			&cli.DurationFlag{Name: "gossip-interval", Value: node.DefaultGossipInterval, Usage: "memberlist gossip `INTERVAL` (× ⌈nodes/10⌉ above 10 nodes, unless given)"},
			&cli.DurationFlag{Name: "push-pull-interval", Value: node.DefaultPushPullInterval, Usage: "memberlist full state sync (push/pull) `INTERVAL` (scaled likewise)"},
			&cli.DurationFlag{Name: "probe-interval", Value: node.DefaultProbeInterval, Usage: "memberlist failure detection `INTERVAL` (scaled likewise)"},
			&cli.DurationFlag{Name: "rejoin-interval", Value: node.DefaultRejoinInterval, Usage: "`INTERVAL` between joins of peers not seen alive (scaled likewise)"},
			&cli.BoolFlag{Name: "no-eager-push", Usage: "leave a client's set to gossip alone, instead of also sending it at once to up to 8 members"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error"},
			&cli.StringFlag{Name: "bug", Usage: "switch on the deliberate bug `NAME`, to test the checkers; 'list' lists them"},
		},
		Action: runNode,
	}
}

func runNode(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError(fmt.Errorf("node takes no arguments, got %q", c.Args().Slice()))
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
	// Checked here rather than by the flag parser, so that "--bug list"
	// works alone.
	var missing []string
	for _, f := range []string{"name", "http", "gossip", "data-dir"} {
		if !c.IsSet(f) {
			missing = append(missing, "--"+f)
		}
	}
	if len(missing) > 0 {
		return usageError(fmt.Errorf("node: missing required flags %s", strings.Join(missing, ", ")))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usageError(fmt.Errorf("--log-level: %w", err))
	}
	var peers []string
	for p := range strings.SplitSeq(c.String("peers"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}
	cfg := node.Config{
		Name:             c.String("name"),
		HTTPAddr:         c.String("http"),
		GossipAddr:       c.String("gossip"),
		Peers:            peers,
		DataDir:          c.String("data-dir"),
		AdminTokenFile:   c.String("admin-token-file"),
		GossipInterval:   setDuration(c, "gossip-interval"),
		PushPullInterval: setDuration(c, "push-pull-interval"),
		ProbeInterval:    setDuration(c, "probe-interval"),
		RejoinInterval:   setDuration(c, "rejoin-interval"),
		NoEagerPush:      c.Bool("no-eager-push"),
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Bug:              c.String("bug"),
	}
	if err := cfg.Validate(); err != nil {
		return usageError(err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	if err := node.Run(ctx, cfg); err != nil {
		return harnessFailure(fmt.Errorf("node: %w", err))
	}
	return nil
}

// setDuration is the value of a duration flag the command line set, or 0,
// which lets the node pick its default for the cluster's size.
func setDuration(c *cli.Context, name string) time.Duration {
	if !c.IsSet(name) {
		return 0
	}
	return c.Duration(name)
}
