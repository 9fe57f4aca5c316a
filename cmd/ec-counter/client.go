package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ec-counter/ec-counter/harness"
)

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:  "client",
		Usage: "run one standalone client against a server and print its history as JSON Lines",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Required: true, Usage: "the server's HTTP `HOST:PORT`"},
			&cli.IntFlag{Name: "requests", Value: 100, Usage: "number of requests"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random requests"},
			&cli.Float64Flag{Name: "rate", Value: 0, Usage: "requests per second (0: back to back)"},
			&cli.DurationFlag{Name: "request-timeout", Value: harness.Defaults().RequestTimeout, Usage: "timeout of each request"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usageError(fmt.Errorf("client takes no arguments, got %q", c.Args().Slice()))
			}
			if _, _, err := net.SplitHostPort(c.String("server")); err != nil {
				return usageError(fmt.Errorf("--server must be HOST:PORT: %w", err))
			}
			if n := c.Int("requests"); n < 1 || n > harness.MaxRequests {
				return usageError(fmt.Errorf("--requests must be between 1 and %d, got %d", harness.MaxRequests, n))
			}
			if r := c.Float64("rate"); !(r == 0 || r >= harness.MinRate && r <= harness.MaxRate) {
				return usageError(fmt.Errorf("--rate must be 0 (back to back) or between %g and %g, got %g", harness.MinRate, harness.MaxRate, r))
			}
			if d := c.Duration("request-timeout"); d <= 0 || d > 10*time.Minute {
				return usageError(fmt.Errorf("--request-timeout must be between 1ns and 10m, got %s", d))
			}
			ctx := c.Context // cancelled by an interrupt (onInterrupt)
			err := harness.StandaloneClient(ctx, c.String("server"), c.Int("requests"), c.Uint64("seed"), c.Float64("rate"), c.Duration("request-timeout"), os.Stdout)
			if err != nil {
				return harnessFailure(fmt.Errorf("client: %w", err))
			}
			return nil
		},
	}
}
