package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/lab"
	"golang.org/x/sync/errgroup"
)

// CampaignRun is one run of a campaign.
type CampaignRun struct {
	Seed     uint64
	Outcome  *Outcome // nil when the run crashed
	Err      error    // why the harness failed, if it did
	Duration time.Duration
}

// Verdict names the run's result: valid, invalid, unknown or crashed.
func (r CampaignRun) Verdict() string {
	if r.Outcome == nil {
		return "crashed"
	}
	return r.Outcome.Result.Valid.String()
}

// CampaignOptions shape a campaign: how many runs, how many at once, and
// which slice of them this machine runs.
type CampaignOptions struct {
	Count    int // runs in the whole campaign, seeds cfg.Seed to cfg.Seed+Count-1
	Parallel int // runs at once; 1 if less
	// Shard and Shards, when Shards > 0, run only the Shard-th (from 1) of
	// Shards contiguous slices of the campaign's seeds, so that Shards
	// machines together run the campaign once (docs/campaigns-and-ci.md "Campaigns and CI").
	Shard, Shards int
}

// Seeds returns the seeds of the runs o gives this machine.
func (o CampaignOptions) Seeds(first uint64) []uint64 {
	lo, hi := 0, o.Count
	if o.Shards > 0 {
		lo, hi = (o.Shard-1)*o.Count/o.Shards, o.Shard*o.Count/o.Shards
	}
	seeds := make([]uint64, 0, hi-lo)
	for i := lo; i < hi; i++ {
		seeds = append(seeds, first+uint64(i))
	}
	return seeds
}

// validate reports an unusable option.
func (o CampaignOptions) validate() error {
	switch {
	case o.Count < 1 || o.Count > 100_000:
		return fieldErr("test_count", "must be between 1 and 100000, got %d", o.Count)
	case o.Parallel > 64:
		return fieldErr("parallel", "must be at most 64, got %d", o.Parallel)
	case o.Shards < 0 || o.Shards > o.Count || o.Shards > 0 && (o.Shard < 1 || o.Shard > o.Shards):
		return fieldErr("shard", "must be K/M with 1 ≤ K ≤ M ≤ the run count (%d), got %d/%d", o.Count, o.Shard, o.Shards)
	}
	return nil
}

// Campaign runs the runs of cfg that opts gives this machine, opts.Parallel
// at a time, with consecutive seeds from cfg.Seed (a random one when cfg
// has none); each run has addresses, a lab and a run directory of its own.
// Each run's full output goes to its harness.log; out gets one line per run
// as it ends, and, when live is true (out is a terminal), a progress line
// redrawn in place. The runs come back in seed order. It stops starting
// runs when ctx ends, or when a run was refused (refusal: returned).
func Campaign(ctx context.Context, cfg Config, opts CampaignOptions, out io.Writer, live bool) ([]CampaignRun, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.HasSeed {
		cfg.Seed, cfg.HasSeed = rand.Uint64()>>1, true
	}
	seeds := opts.Seeds(cfg.Seed)
	runs := make([]CampaignRun, len(seeds))
	var (
		mu                    sync.Mutex
		counts                = map[string]int{}
		running, done, failed int
	)
	progress := func() { // mu held
		if live {
			fmt.Fprintf(out, "\r\033[K[%d/%d] %d running, %d done, %d failed  %s", done, len(seeds), running, done, failed, tally(counts))
		}
	}
	var g errgroup.Group
	g.SetLimit(max(opts.Parallel, 1))
	var refused error // a run refused its faults or hosts: every run would
	for i, seed := range seeds {
		mu.Lock()
		stop := refused != nil
		mu.Unlock()
		if ctx.Err() != nil || stop {
			break
		}
		g.Go(func() error {
			rc := cfg
			rc.Seed = seed
			mu.Lock()
			if refused != nil { // while this run waited for its turn
				mu.Unlock()
				return nil
			}
			running++
			progress()
			mu.Unlock()
			start := time.Now()
			o, err := Run(ctx, rc, io.Discard)
			r := CampaignRun{Seed: seed, Outcome: o, Err: err, Duration: time.Since(start)}
			if err != nil {
				r.Outcome = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if refusal(err) && refused == nil {
				refused = err
			}
			runs[i] = r
			running--
			done++
			counts[r.Verdict()]++
			if r.Verdict() != "valid" {
				failed++
			}
			line := fmt.Sprintf("[%d/%d] seed %d: %s in %s", done, len(seeds), r.Seed, strings.ToUpper(r.Verdict()), r.Duration.Round(time.Millisecond))
			if r.Outcome != nil {
				line += "  " + r.Outcome.Dir
			} else {
				line += fmt.Sprintf("  (%v)", err)
			}
			if live {
				fmt.Fprint(out, "\r\033[K")
			}
			fmt.Fprintln(out, line)
			progress()
			return nil
		})
	}
	g.Wait()
	if live {
		fmt.Fprint(out, "\r\033[K")
	}
	// Runs never started (ctx ended) are left out.
	started := runs[:0]
	for _, r := range runs {
		if r.Seed != 0 || r.Duration != 0 {
			started = append(started, r)
		}
	}
	if refused != nil {
		return started, refused
	}
	return started, ctx.Err()
}

// refusal reports whether a run's error refuses the configuration itself
// (faults the network cannot inject, a host that fails the preflight),
// which every run of a campaign would meet: a usage error, not a crash.
func refusal(err error) bool {
	return errors.Is(err, ErrFaultsUnsupported) || errors.Is(err, lab.ErrPreflight)
}

func tally(counts map[string]int) string {
	var parts []string
	for _, v := range []string{"valid", "invalid", "unknown", "crashed"} {
		if counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	return strings.Join(parts, ", ")
}

// WriteCampaignTable prints one row per run: seed, verdict, the checks
// that failed, time, and where the run is stored.
func WriteCampaignTable(w io.Writer, runs []CampaignRun) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEED\tVERDICT\tFAILED CHECKS\tCONVERGED IN\tTIME\tRUN")
	var converge []time.Duration
	for _, r := range runs {
		failed, conv, dir := "-", "-", "-"
		if r.Outcome != nil {
			if f := failedChecks(r.Outcome.Result); len(f) > 0 {
				failed = strings.Join(f, ",")
			}
			if t := r.Outcome.Result.Checks.Convergence.TimeToConvergeNS; t != nil {
				converge = append(converge, time.Duration(*t))
				conv = time.Duration(*t).Round(time.Millisecond).String()
			}
			dir = r.Outcome.Dir
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seed, strings.ToUpper(r.Verdict()), failed, conv, r.Duration.Round(time.Millisecond), dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(converge) > 0 {
		slices.Sort(converge)
		fmt.Fprintf(w, "time to converge after the final heal over %d runs: median %s, max %s\n", len(converge),
			converge[len(converge)/2].Round(time.Millisecond), converge[len(converge)-1].Round(time.Millisecond))
	}
	return nil
}

// failedChecks names the checks that did not find the history valid.
func failedChecks(res checker.Result) []string {
	var out []string
	for _, c := range res.Verdicts() {
		if c.Valid != checker.Valid {
			out = append(out, c.Name)
		}
	}
	return out
}
