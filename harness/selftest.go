package harness

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"golang.org/x/sync/errgroup"
)

// Scenario is one selftest case: a bug (or the correct server, Bug "") and
// the run settings that expose it.
type Scenario struct {
	Bug      string // "" is the correct server
	Why      string // how the scenario exposes the bug
	Nemesis  []string
	Interval time.Duration
	Schedule string // a scripted schedule, instead of Nemesis
	Faults   string // a short description of Schedule
	Nodes    int
	Clients  int
	Requests int
	Rate     float64
	// Survives marks a bug scenario that must pass: the faults cannot
	// expose the bug (a kill keeps the page cache that no-fsync relies on),
	// and a harness that flagged it would be crying wolf.
	Survives bool
}

// Name is the scenario's row label.
func (s Scenario) Name() string {
	if s.Bug != "" && s.Survives {
		return s.Bug + ", " + s.Faults
	}
	if s.Bug != "" {
		return s.Bug
	}
	if s.Schedule != "" {
		return "correct, " + s.Faults
	}
	if len(s.Nemesis) == 0 {
		return "correct, no faults"
	}
	return "correct, " + strings.Join(s.Nemesis, "+")
}

// Slug is the scenario's name as one word, e.g. correct-partition; it
// names the scenario's runs in the store and selects it in --only.
func (s Scenario) Slug() string {
	return strings.NewReplacer(", ", "-", " ", "-", "+", "-", ",", "").Replace(s.Name())
}

// nemesisLabel describes the faults of a scenario.
func (s Scenario) nemesisLabel() string {
	switch {
	case s.Schedule != "":
		return s.Faults
	case len(s.Nemesis) == 0:
		return "none"
	}
	return strings.Join(s.Nemesis, ",") + " every " + s.Interval.String()
}

// killAll kills every node at once, twice, so that only what is on disk
// survives; used to expose durability bugs.
const (
	killAll = `1.5s kill all
2.5s restart all
4s kill all
5s restart all
`
	killAllFaults = "kill all nodes, twice"

	crashAll = `1.5s crash all
2.5s restart all
4s crash all
5s restart all
`
	crashAllFaults = "crash all nodes, twice"
)

// crashes reports whether the scenario crashes nodes, which needs the
// lab's private mount namespace for the power-loss file system.
func (s Scenario) crashes() bool {
	return strings.Contains(s.Schedule, nemesis.FCrash) || nemesis.CrashKinds(s.Nemesis)
}

// Scenarios returns the selftest's cases: every bug of the node in the run
// that exposes it, then the correct server under no faults and under each
// nemesis kind.
func Scenarios() []Scenario {
	base := Scenario{Nodes: 3, Clients: 5, Requests: 100, Rate: 20, Interval: 2 * time.Second}
	with := func(mod func(*Scenario)) Scenario {
		s := base
		mod(&s)
		return s
	}
	return []Scenario{
		with(func(s *Scenario) {
			s.Bug, s.Why = "accept-smaller", "reads after a lowering set go down"
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "racy-set", "concurrent sets on one node overwrite larger values"
			s.Clients, s.Rate = 9, 40
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-gossip", "servers never agree after the last set"
			s.Requests = 60
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "merge-overwrite", "a merge of a smaller peer value lowers the counter"
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "ack-before-durable", "killing every node loses acknowledged sets"
			s.Schedule, s.Faults, s.Rate, s.Requests = killAll, killAllFaults, 40, 240
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-persist", "killing every node forgets the counter"
			s.Schedule, s.Faults, s.Rate, s.Requests = killAll, killAllFaults, 40, 240
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-fsync", "a power loss empties the state file that was renamed but never fsynced"
			s.Schedule, s.Faults, s.Rate, s.Requests = crashAll, crashAllFaults, 40, 240
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-fsync", "a kill keeps the page cache: nothing is lost"
			s.Schedule, s.Faults, s.Rate, s.Requests, s.Survives = killAll, killAllFaults, 40, 240, true
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-dir-fsync", "a power loss undoes the rename the directory never fsynced"
			s.Schedule, s.Faults, s.Rate, s.Requests = crashAll, crashAllFaults, 40, 240
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-dir-fsync", "a kill keeps the page cache: nothing is lost"
			s.Schedule, s.Faults, s.Rate, s.Requests, s.Survives = killAll, killAllFaults, 40, 240, true
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "no-rejoin", "after a partition longer than dead-node reaping, servers never agree"
			s.Schedule = "0.5s start-partition halves\n8s stop-partition\n"
			s.Faults = "halves partition for 7.5 s"
			s.Rate, s.Requests = 10, 85
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "stale-read", "a read after an acknowledged set returns less"
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "thin-air", "a read returns a value nobody wrote"
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "int32", "the workload's sets cross 2^31 and 2^32, where a 32-bit counter wraps"
		}),
		with(func(s *Scenario) {
			s.Bug, s.Why = "float-json", "the workload's sets cross 2^53, where float64 rounds odd integers"
		}),
		with(func(s *Scenario) {}),
		with(func(s *Scenario) { s.Nemesis = []string{"partition"} }),
		with(func(s *Scenario) { s.Nemesis = []string{"delay"} }),
		with(func(s *Scenario) { s.Nemesis = []string{"loss"} }),
		with(func(s *Scenario) { s.Nemesis = []string{"kill"} }),
		with(func(s *Scenario) { s.Nemesis = []string{"pause"} }),
		with(func(s *Scenario) { s.Nemesis = []string{"partition", "delay", "loss", "kill", "pause"} }),
		with(func(s *Scenario) { s.Schedule, s.Faults, s.Rate, s.Requests = killAll, killAllFaults, 40, 240 }),
		with(func(s *Scenario) { s.Nemesis = []string{"crash"} }),
		with(func(s *Scenario) { s.Schedule, s.Faults, s.Rate, s.Requests = crashAll, crashAllFaults, 40, 240 }),
	}
}

// SelftestOptions configure a selftest.
type SelftestOptions struct {
	Seeds    int    // runs per scenario, seeds 1..Seeds
	Store    string // where the runs are stored (under selftest-*)
	NodeCmd  string // the node command template, DefaultNodeCmd if empty
	Parallel int    // runs at once
	Only     []string
	Net      string // the network (NetAuto if empty)
}

// SelftestRow is one scenario's tally.
type SelftestRow struct {
	Scenario Scenario
	Tried    int
	Passed   int            // runs that came out as expected: caught for a bug, valid for the correct server
	Skipped  string         // why the scenario did not run here; "" if it ran
	Checks   map[string]int // checks that fired, with the runs in which they did
	Failures []string       // the runs that did not come out as expected, with their directories
	Time     time.Duration  // summed wall time of its runs
}

// OK reports whether every run came out as expected, or the scenario was
// skipped as unable to run here.
func (r SelftestRow) OK() bool { return r.Skipped != "" || r.Tried > 0 && r.Passed == r.Tried }

// expectsInvalid reports whether the scenario's runs must be invalid.
func (s Scenario) expectsInvalid() bool { return s.Bug != "" && !s.Survives }

// Selftest runs every scenario over opts.Seeds seeds and tallies, per
// scenario, whether each bug was caught and the correct server passed. out
// gets a line per run as it ends.
func Selftest(ctx context.Context, opts SelftestOptions, out io.Writer) ([]SelftestRow, error) {
	if opts.Seeds < 1 {
		return nil, fmt.Errorf("--seeds must be at least 1, got %d", opts.Seeds)
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	scenarios := Scenarios()
	if len(opts.Only) > 0 {
		scenarios = slices.DeleteFunc(scenarios, func(s Scenario) bool {
			return !slices.Contains(opts.Only, s.Slug())
		})
		if len(scenarios) == 0 {
			var known []string
			for _, s := range Scenarios() {
				known = append(known, s.Slug())
			}
			return nil, fmt.Errorf("no scenario named %s; known: %s", strings.Join(opts.Only, ", "), strings.Join(known, ", "))
		}
	}
	rows := make([]SelftestRow, len(scenarios))
	type job struct {
		row  int
		seed uint64
		cfg  Config
	}
	var jobs []job
	for i, s := range scenarios {
		rows[i] = SelftestRow{Scenario: s, Checks: map[string]int{}}
		if s.crashes() && !lab.Inside() {
			rows[i].Skipped = "crash needs the lab's private mount namespace (--net lab or auto)"
			continue
		}
		cfg, err := s.config(opts)
		if err != nil {
			return nil, err
		}
		for seed := 1; seed <= opts.Seeds; seed++ {
			c := cfg
			c.Seed, c.HasSeed = uint64(seed), true
			jobs = append(jobs, job{i, uint64(seed), c})
		}
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(opts.Parallel)
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			start := time.Now()
			o, err := Run(ctx, j.cfg, io.Discard)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			row := &rows[j.row]
			row.Tried++
			row.Time += d
			verdict := "crashed"
			if err != nil {
				row.Failures = append(row.Failures, fmt.Sprintf("seed %d: harness failed: %v", j.seed, err))
			} else {
				verdict = o.Result.Valid.String()
				for _, f := range failedChecks(o.Result) {
					row.Checks[f]++
				}
				caught := o.Result.Valid == checker.Invalid
				if row.Scenario.expectsInvalid() == caught && (caught || o.Result.Valid == checker.Valid) {
					row.Passed++
				} else {
					row.Failures = append(row.Failures, fmt.Sprintf("seed %d: %s %s", j.seed, verdict, o.Dir))
				}
			}
			fmt.Fprintf(out, "%-22s seed %-3d %-8s %6s\n", row.Scenario.Name(), j.seed, verdict, d.Round(100*time.Millisecond))
			return nil
		})
	}
	g.Wait()
	return rows, ctx.Err()
}

// config turns a scenario into a run configuration.
func (s Scenario) config(opts SelftestOptions) (Config, error) {
	cfg := Defaults()
	cfg.Store = opts.Store
	if opts.NodeCmd != "" {
		cfg.NodeCmd = opts.NodeCmd
	}
	cfg.Nodes, cfg.Clients, cfg.Requests, cfg.Rate = s.Nodes, s.Clients, s.Requests, s.Rate
	cfg.Nemesis, cfg.NemesisInterval = s.Nemesis, s.Interval
	cfg.Bug = s.Bug
	cfg.Name = "selftest-" + s.Slug()
	if opts.Net != "" {
		cfg.Net = opts.Net
	}
	cfg.Script = s.Schedule
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("selftest scenario %s: %w", s.Name(), err)
	}
	return cfg, nil
}

// WriteSelftestTable prints the selftest's table: scenario, faults, checks
// that fired, runs as expected / runs tried, and time.
func WriteSelftestTable(w io.Writer, rows []SelftestRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tNEMESIS\tCHECKS FIRED\tRESULT\tTIME")
	for _, r := range rows {
		var fired []string
		for c, n := range r.Checks {
			fired = append(fired, fmt.Sprintf("%s (%d)", c, n))
		}
		sort.Strings(fired)
		firedText := strings.Join(fired, ", ")
		if firedText == "" {
			firedText = "-"
		}
		what := "caught"
		if !r.Scenario.expectsInvalid() {
			what = "passed"
		}
		mark := "ok"
		if !r.OK() {
			mark = "FAIL"
		}
		result := fmt.Sprintf("%s %d/%d  %s", what, r.Passed, r.Tried, mark)
		if r.Skipped != "" {
			result = "skipped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Scenario.Name(), r.Scenario.nemesisLabel(), firedText,
			result, r.Time.Round(100*time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%s: skipped: %s\n", r.Scenario.Name(), r.Skipped)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(w, "%s: %s\n", r.Scenario.Name(), f)
		}
	}
	return nil
}
