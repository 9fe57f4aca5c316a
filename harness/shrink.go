package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/internal/ddmin"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/runstore"
	"github.com/ec-counter/ec-counter/workload"
)

// ShrinkOptions says how hard Shrink tries (docs/shrinking.md "Shrinking a failing run").
type ShrinkOptions struct {
	// Budget bounds the whole search, the final reproduction included
	// (default 10 minutes).
	Budget time.Duration
	// Tries is how many runs judge a candidate (default 3): it fails when
	// at least half of them, rounded up, fail the original's check.
	Tries int
	// Parallel is how many runs go at once (default 6: with 3 tries, two
	// candidates side by side).
	Parallel int
	// Program is how the replay command names this program.
	Program string
}

// Errors of Shrink that say why there is nothing to shrink.
var (
	// ErrNothingToShrink: the run is valid or unknown, or its stored case
	// (configuration, schedule, workload.jsonl) cannot be read back.
	ErrNothingToShrink = errors.New("nothing to shrink")
	// ErrShrinkBusy: another shrink of the same run is under way.
	ErrShrinkBusy = errors.New("another shrink of this run is under way")
	// ErrNotReproduced: the run's failure did not come back often enough.
	ErrNotReproduced = errors.New("the failure did not reproduce")
)

// errCannotRun marks a case whose configuration does not validate.
var errCannotRun = errors.New("the case cannot run")

// CaseSize measures a test case.
type CaseSize struct {
	Steps    int `json:"steps"`    // fault steps of the schedule
	Clients  int `json:"clients"`  // clients that send at least one request
	Requests int `json:"requests"` // requests of the workload
	Nodes    int `json:"nodes"`
}

// total is the size of all of a case's parts.
func (s CaseSize) total() int { return s.Steps + s.Clients + s.Requests + s.Nodes }

// smaller reports whether s is smaller than t: no larger in any measure,
// and not equal.
func (s CaseSize) smaller(t CaseSize) bool {
	return s != t && s.Steps <= t.Steps && s.Clients <= t.Clients && s.Requests <= t.Requests && s.Nodes <= t.Nodes
}

func (s CaseSize) String() string {
	n := func(k int, noun string) string {
		if k == 1 {
			return "1 " + noun
		}
		return fmt.Sprintf("%d %ss", k, noun)
	}
	return n(s.Steps, "step") + ", " + n(s.Clients, "client") + ", " + n(s.Requests, "request") + ", " + n(s.Nodes, "node")
}

// ShrinkResult is what Shrink found.
type ShrinkResult struct {
	Dir      string // RUN/shrink
	Check    string // the check the original failed, which every kept case fails
	Original CaseSize
	Shrunk   CaseSize
	Runs     int // runs tried in all
	// Failed of Tried final runs of the shrunk case failed the check.
	Failed, Tried int
	Replay        string // the command that re-runs the shrunk case
	Elapsed       time.Duration
	// Exhausted is true when the budget ran out before the search ended.
	Exhausted bool
}

// shrinkCase is a test case: a schedule, a workload and a cluster size.
type shrinkCase struct {
	steps []nemesis.Step
	work  workload.Workload
	nodes int
}

func (c shrinkCase) size() CaseSize {
	return CaseSize{Steps: len(c.steps), Clients: len(slices.DeleteFunc(c.work.ByClient(), func(r []workload.Request) bool { return len(r) == 0 })),
		Requests: len(c.work), Nodes: c.nodes}
}

// shrinker runs candidates of one shrink.
type shrinker struct {
	base  Config
	check string
	opts  ShrinkOptions
	out   io.Writer
	runs  string // where candidate runs are stored
	// origStore and origName are the original run's, for the replay.
	origStore, origName string
	mu                  sync.Mutex
	tried               int
	best                shrinkCase
	known               []shrinkCase // every case that failed often enough
	start               time.Time
}

// Shrink looks for a smaller test case that fails the same check as the
// stored invalid run at dir (docs/shrinking.md "Shrinking a failing run"): with the
// same configuration (node command, bug, network, seed), it removes fault
// steps, shortens fault windows, and removes clients, nodes and requests,
// by delta debugging, keeping each reduction only while the candidate
// still fails in at least half of opts.Tries runs. It writes dir/shrink/
// (schedule.txt, workload.jsonl, summary.txt and run/, the last failing
// run of the shrunk case) and prints its progress to out.
func Shrink(ctx context.Context, dir runstore.RunDir, opts ShrinkOptions, out io.Writer) (*ShrinkResult, error) {
	opts.Budget = cmp.Or(opts.Budget, 10*time.Minute)
	opts.Tries = max(opts.Tries, 1)
	opts.Parallel = max(cmp.Or(opts.Parallel, 6), 1)
	start := time.Now()
	rec, err := runstore.ReadRecord(dir)
	if err != nil {
		return nil, err
	}
	res, err := runstore.ReadResults(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no results (%v)", ErrNothingToShrink, dir, err)
	}
	check := ""
	for _, v := range res.Verdicts() {
		if v.Valid == checker.Invalid {
			check = v.Name
			break
		}
	}
	if check == "" {
		return nil, fmt.Errorf("%w: %s is %s, not invalid", ErrNothingToShrink, dir, res.Valid)
	}
	cfg := Defaults()
	if err := json.Unmarshal(rec.Config, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %s's configuration: %v", ErrNothingToShrink, dir, err)
	}
	cfg.HasSeed, cfg.Seed = true, rec.Seed
	if cfg.Hosts != nil {
		// The hosts file, read again and checked as test --hosts does:
		// run.json is a store file anyone may have edited.
		hf, err := lab.ReadHosts(cfg.HostsFile)
		if err != nil {
			return nil, fmt.Errorf("%w: the run's hosts file: %v", ErrNothingToShrink, err)
		}
		cfg.Hosts = hf
	}
	if cfg.Hosts != nil && opts.Parallel > 1 {
		// Runs on the same SSH hosts would share their ports.
		fmt.Fprintf(out, "shrink: the run's nodes ran on SSH hosts: one run at a time\n")
		opts.Parallel = 1
	}
	orig, err := loadCase(ctx, dir, rec, &cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrNothingToShrink, err)
	}

	// The new RUN/shrink is made aside and replaces the last one only when
	// it is complete: an interrupted shrink keeps the last result.
	shrinkDir := dir.File(runstore.ShrinkDir)
	aside, unlock, err := shrinkAside(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.RemoveAll(aside) // renamed into place on success
	s := &shrinker{base: cfg, check: check, opts: opts, out: out, runs: filepath.Join(aside, "runs"), best: orig, start: start}
	s.origStore, s.origName = cfg.Store, cfg.Name
	s.base.Store, s.base.Name = s.runs, "candidate"
	s.base.Nemesis, s.base.NemesisSchedule, s.base.Script = nil, "", ""
	s.base.Program = opts.Program
	fmt.Fprintf(out, "shrink %s: it failed %s; original case: %s; each candidate judged by %d runs, failing when at least %d fail; budget %s\n",
		dir, check, orig.size(), opts.Tries, s.need(), opts.Budget)

	// Does the original fail, with its requests pinned to their times?
	round := time.Now()
	failed, _, err := s.judge(ctx, orig, opts.Tries, true)
	if err != nil {
		return nil, err
	}
	if failed < s.need() {
		return nil, fmt.Errorf("%w: the original case failed %s in %d of %d runs, fewer than %d (timing decides too much; try more --tries)",
			ErrNotReproduced, check, failed, opts.Tries, s.need())
	}
	roundTime := time.Since(round)
	fmt.Fprintf(out, "  original fails in %d of %d runs (%s a round)\n", failed, opts.Tries, roundTime.Round(time.Second))

	// Search, keeping two rounds' time (and some) for the final reproduction.
	search, cancel := context.WithDeadline(ctx, start.Add(opts.Budget-2*roundTime-roundTime/4))
	defer cancel()
	exhausted := s.search(search) != nil
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// How often does the shrunk case fail? A case that failed often enough
	// once may not again (timing decides): then the next smallest that
	// failed during the search is tried, while the budget lasts, and at
	// worst the original, which did reproduce.
	cands := slices.Clone(s.known)
	slices.SortStableFunc(cands, func(a, b shrinkCase) int { return cmp.Compare(a.size().total(), b.size().total()) })
	cands = append([]shrinkCase{s.best}, cands...)
	deadline := start.Add(opts.Budget)
	for i, c := range cands {
		if i > 0 && (time.Now().Add(roundTime).After(deadline) || c.size() == cands[i-1].size()) {
			continue
		}
		failed, kept, err := s.judge(ctx, c, opts.Tries, true)
		if err != nil {
			return nil, err
		}
		if failed >= s.need() {
			s.best = c
			return s.finish(dir, shrinkDir, aside, orig, failed, kept, exhausted)
		}
		fmt.Fprintf(out, "    %s failed only %d of %d runs this time: trying the next smallest case\n", c.size(), failed, opts.Tries)
	}
	s.best = orig
	return s.finish(dir, shrinkDir, aside, orig, failed, "", exhausted)
}

// loadCase reads a stored run's case: its schedule as run, and its
// workload with every request pinned to the time it was sent at (its
// client's pace), so that removing requests moves no other.
func loadCase(ctx context.Context, dir runstore.RunDir, rec *runstore.Record, cfg *Config) (shrinkCase, error) {
	steps, err := nemesis.ParseSchedule(strings.NewReader(rec.Schedule), nodeNames(cfg.Nodes), cfg.Seed)
	if err != nil {
		return shrinkCase{}, fmt.Errorf("%s's schedule: %w", dir, err)
	}
	path := dir.File(runstore.WorkloadFile)
	w, err := workload.ParseFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		w, err = workload.Plan(cfg.Seed, cfg.Clients, cfg.Requests, cfg.Values), nil // a run from before workload.jsonl
	}
	if err != nil && !strings.Contains(err.Error(), path) {
		err = fmt.Errorf("%s: %w", path, err) // a line's error
	}
	if err != nil {
		return shrinkCase{}, err
	}
	w = slices.Clone(w)
	interval := intervalOf(cfg.Rate)
	nth := make(map[int]int)
	for i := range w {
		if !w[i].HasAt && interval > 0 {
			w[i].At, w[i].HasAt = time.Duration(nth[w[i].Client])*interval, true
		}
		nth[w[i].Client]++
	}
	return shrinkCase{steps: steps, work: w, nodes: cfg.Nodes}, nil
}

// shrinkAside makes the directory in which a shrink of dir builds its
// result, RUN/.shrink-*, under the run's shrink lock (ErrShrinkBusy if
// another shrink holds it), after removing what shrinks killed before
// they ended left there. unlock releases the lock.
func shrinkAside(dir runstore.RunDir) (aside string, unlock func(), err error) {
	lock, err := os.OpenFile(dir.File(".shrink.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return "", nil, fmt.Errorf("%w: %s", ErrShrinkBusy, dir)
		}
		return "", nil, fmt.Errorf("lock %s for a shrink: %w", dir, err)
	}
	unlock = func() { lock.Close() }
	stale, _ := filepath.Glob(dir.File(".shrink-*"))
	for _, d := range stale {
		os.RemoveAll(d)
	}
	aside, err = os.MkdirTemp(string(dir), ".shrink-")
	if err != nil {
		unlock()
		return "", nil, err
	}
	return aside, unlock, nil
}

// replaceDir puts the directory built at aside in place of final, whole:
// by one atomic exchange where the file system can, else by two renames.
func replaceDir(aside, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, aside, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return os.RemoveAll(aside) // it holds the last result now
	case errors.Is(err, unix.ENOENT):
		return os.Rename(aside, final) // no last result
	}
	old := aside + ".old"
	if err := os.Rename(final, old); err != nil {
		return err
	}
	if err := os.Rename(aside, final); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// need is how many of Tries runs must fail for a candidate to fail.
func (s *shrinker) need() int { return (s.opts.Tries + 1) / 2 }

// search shrinks s.best in phases; it returns the context's error when the
// budget ran out.
func (s *shrinker) search(ctx context.Context) error {
	smallest := s.best.size()
	fails := func(c shrinkCase) (bool, error) {
		n, _, err := s.judge(ctx, c, s.opts.Tries, false)
		if errors.Is(err, errCannotRun) {
			return false, nil // a candidate that cannot run does not fail
		}
		if err != nil {
			return false, err
		}
		ok := n >= s.need()
		if ok {
			s.mu.Lock()
			s.known = append(s.known, c)
			s.mu.Unlock()
		}
		if size := c.size(); ok && size.smaller(smallest) {
			s.mu.Lock()
			smallest = size
			fmt.Fprintf(s.out, "    fails: %s (%d runs, %s)\n", size, s.tried, time.Since(s.start).Round(time.Second))
			s.mu.Unlock()
		}
		return ok, nil
	}
	// Candidates tested at once, each by its runs side by side.
	par := max(s.opts.Parallel/min(s.opts.Parallel, s.opts.Tries), 1)
	// Fault steps.
	if err := minimize(ctx, s, s.best.steps, func(c shrinkCase, steps []nemesis.Step) shrinkCase {
		c.steps = steps
		return c
	}, fails, par); err != nil {
		return err
	}
	s.progress("steps")
	// Fault windows: halve each while the case still fails.
	if err := s.shortenWindows(ctx, fails); err != nil {
		return err
	}
	// Whole clients first: the cheapest large cut.
	var ids []int
	for id, reqs := range s.best.work.ByClient() {
		if len(reqs) > 0 {
			ids = append(ids, id)
		}
	}
	all := s.best.work
	if err := minimize(ctx, s, ids, func(c shrinkCase, ids []int) shrinkCase {
		c.work = slices.DeleteFunc(slices.Clone(all), func(r workload.Request) bool { return !slices.Contains(ids, r.Client) })
		return c
	}, fails, par); err != nil {
		return err
	}
	s.progress("clients")
	// Nodes: fewer, while the schedule still names only nodes that exist.
	for n := s.best.nodes - 1; n >= 1; n-- {
		c := s.best
		c.nodes = n
		if _, err := nemesis.ParseSchedule(strings.NewReader(nemesis.Schedule(c.steps).String()), nodeNames(n), s.base.Seed); err != nil {
			break
		}
		ok, err := fails(c)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s.best = c
	}
	s.progress("nodes")
	// Requests, one by one.
	if err := minimize(ctx, s, s.best.work, func(c shrinkCase, w []workload.Request) shrinkCase {
		c.work = w
		return c
	}, fails, par); err != nil {
		return err
	}
	s.progress("requests")
	return nil
}

// minimize runs ddmin over items, one part of s.best, which with puts into
// a case, and keeps the smallest failing part found, also when the budget
// runs out. A case without requests does not fail (it cannot run).
func minimize[T any](ctx context.Context, s *shrinker, items []T, with func(shrinkCase, []T) shrinkCase,
	fails func(shrinkCase) (bool, error), par int) error {
	base := s.best
	got, err := ddmin.Minimize(ctx, items, func(_ context.Context, items []T) (bool, error) {
		c := with(base, items)
		if len(c.work) == 0 {
			return false, nil
		}
		return fails(c)
	}, par)
	s.best = with(base, got)
	return err
}

// shortenWindows halves the time between each fault's start and its end
// (the next step that undoes it), up to three times, while the case fails.
func (s *shrinker) shortenWindows(ctx context.Context, fails func(shrinkCase) (bool, error)) error {
	for i := 0; i < len(s.best.steps); i++ {
		end := windowEnd(s.best.steps, i)
		if end < 0 {
			continue
		}
		for range 3 {
			c := s.best
			steps := slices.Clone(c.steps)
			gap := steps[end].At - steps[i].At
			if gap < 20*time.Millisecond {
				break
			}
			// Move the end earlier, keeping the steps in time order (a
			// stable sort: the end stays after its start on a tie).
			steps[end].At = (steps[i].At + gap/2).Truncate(time.Millisecond)
			moved := steps[end]
			slices.SortStableFunc(steps, func(a, b nemesis.Step) int { return cmp.Compare(a.At, b.At) })
			c.steps = steps
			ok, err := fails(c)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			s.best = c
			end = slices.IndexFunc(steps, func(st nemesis.Step) bool { return st.At == moved.At && st.Action == moved.Action })
		}
	}
	s.progress("windows")
	return nil
}

// windowEnd returns the index of the step that ends the fault step i
// starts, or -1.
func windowEnd(steps []nemesis.Step, i int) int {
	undo := map[string]string{
		nemesis.FStartPartition: nemesis.FStopPartition, nemesis.FStartLink: nemesis.FStopLink,
		nemesis.FKill: nemesis.FRestart, nemesis.FCrash: nemesis.FRestart, nemesis.FPause: nemesis.FResume,
	}
	want, ok := undo[steps[i].Action]
	if !ok {
		return -1
	}
	for j := i + 1; j < len(steps); j++ {
		if steps[j].Action == want && (len(steps[i].Nodes) == 0 || slices.Equal(steps[j].Nodes, steps[i].Nodes)) {
			return j
		}
	}
	return -1
}

func (s *shrinker) progress(phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, "  after %-8s %s (%d runs, %s)\n", phase+":", s.best.size(), s.tried, time.Since(s.start).Round(time.Second))
}

// judge runs c up to tries times, side by side (at most Parallel at a
// time), and returns how many runs failed the check. With all (the final
// reproduction) it runs every try and keeps the last failing run,
// returning its directory; otherwise it stops as soon as the verdict (at
// least need failing) is decided, and keeps no run.
func (s *shrinker) judge(ctx context.Context, c shrinkCase, tries int, all bool) (failed int, kept string, err error) {
	cfg := s.base
	cfg.Nodes = c.nodes
	cfg.Script = nemesis.Schedule(c.steps).String()
	cfg.SetWorkload(c.work, "")
	if err := cfg.Validate(); err != nil {
		return 0, "", fmt.Errorf("%w: %w", errCannotRun, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	passed := 0
	g := new(errgroup.Group)
	g.SetLimit(min(s.opts.Parallel, tries))
	for range tries {
		g.Go(func() error {
			if rctx.Err() != nil {
				return nil
			}
			o, err := Run(rctx, cfg, io.Discard)
			mu.Lock()
			defer mu.Unlock()
			s.mu.Lock()
			s.tried++
			s.mu.Unlock()
			if o != nil && err == nil && s.failsCheck(o.Result) {
				failed++
				if all { // keep the latest failing run
					os.RemoveAll(kept)
					kept = o.Dir
				} else {
					os.RemoveAll(o.Dir)
				}
			} else {
				passed++
				if o != nil {
					os.RemoveAll(o.Dir)
				}
			}
			if !all && (failed >= s.need() || passed > tries-s.need()) {
				cancel()
			}
			return nil
		})
	}
	g.Wait()
	if ctx.Err() != nil {
		return failed, kept, ctx.Err()
	}
	return failed, kept, nil
}

func (s *shrinker) failsCheck(r checker.Result) bool {
	for _, v := range r.Verdicts() {
		if v.Name == s.check {
			return v.Valid == checker.Invalid
		}
	}
	return false
}

// finish writes RUN/shrink and returns the result.
// It builds the files in aside, naming their final places under
// shrinkDir, and then puts aside in shrinkDir's place.
func (s *shrinker) finish(dir runstore.RunDir, shrinkDir, aside string, orig shrinkCase, failed int, kept string, exhausted bool) (*ShrinkResult, error) {
	best := s.best
	sched := filepath.Join(shrinkDir, runstore.ScheduleFile)
	if err := atomicfile.WriteBytes(filepath.Join(aside, runstore.ScheduleFile), 0o644, []byte(nemesis.Schedule(best.steps).String())); err != nil {
		return nil, err
	}
	work := filepath.Join(shrinkDir, runstore.WorkloadFile)
	if err := atomicfile.WriteFile(filepath.Join(aside, runstore.WorkloadFile), 0o644, best.work.Encode); err != nil {
		return nil, err
	}
	runDir := filepath.Join(shrinkDir, "run")
	if kept != "" {
		if err := os.Rename(kept, filepath.Join(aside, "run")); err != nil {
			return nil, fmt.Errorf("keep the shrunk case's failing run: %w", err)
		}
	}
	os.RemoveAll(s.runs)

	replay := s.base
	replay.Nodes = best.nodes
	replay.Store, replay.Name = s.origStore, s.origName
	replay.Script, replay.NemesisSchedule = nemesis.Schedule(best.steps).String(), sched
	replay.SetWorkload(best.work, work)
	r := &ShrinkResult{
		Dir: shrinkDir, Check: s.check, Original: orig.size(), Shrunk: best.size(),
		Runs: s.tried, Failed: failed, Tried: s.opts.Tries, Replay: replay.replayCommand(),
		Elapsed: time.Since(s.start), Exhausted: exhausted,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "shrunk %s, which failed %s\n", dir, s.check)
	fmt.Fprintf(&b, "original: %s\n", r.Original)
	fmt.Fprintf(&b, "shrunk:   %s\n", r.Shrunk)
	fmt.Fprintf(&b, "runs:     %d in %s", r.Runs, r.Elapsed.Round(time.Second))
	if exhausted {
		b.WriteString(" (the budget ran out before the search ended)")
	}
	fmt.Fprintf(&b, "\nfails:    %d of %d runs of the shrunk case failed %s\n", failed, r.Tried, s.check)
	if kept != "" {
		fmt.Fprintf(&b, "run:      %s\n", runDir)
	}
	fmt.Fprintf(&b, "replay: %s\n", r.Replay)
	if err := atomicfile.WriteBytes(filepath.Join(aside, runstore.ShrinkSummaryFile), 0o644, []byte(b.String())); err != nil {
		return nil, err
	}
	if err := replaceDir(aside, shrinkDir); err != nil {
		return nil, fmt.Errorf("put the shrunk case in %s: %w", shrinkDir, err)
	}
	return r, nil
}
