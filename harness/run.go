package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/report"
	"github.com/ec-counter/ec-counter/runstore"
	"github.com/ec-counter/ec-counter/workload"
	"github.com/kballard/go-shellquote"
	"golang.org/x/sync/errgroup"
)

// Outcome is what one run produced.
type Outcome struct {
	Dir     string         // the run directory
	Seed    uint64         // the seed used
	Result  checker.Result // the checkers' verdict
	Replay  string         // the command that replays this run
	Timings runstore.Timings
	Nemesis string // what the nemesis did; empty without faults
	Faults  string // the kinds asked for, and those left out and why
	Report  string // the report's path; empty if it could not be written
}

// newLabRecord describes l for run.json.
func newLabRecord(l *lab.Lab) *runstore.Lab {
	rec := &runstore.Lab{ID: l.ID(), Hosts: map[string]runstore.LabHost{}}
	rec.Router, _ = os.Readlink("/proc/self/ns/net")
	for _, h := range l.Hosts() {
		rec.Hosts[h.Name] = runstore.LabHost{Addr: h.Addr.String(), NetNS: h.NetNS()}
	}
	return rec
}

// probeAdmin checks that every node serves the admin API, which the
// loopback network needs to inject network faults; a node without it is a
// refusal before any client starts (ErrFaultsUnsupported), not a verdict.
func probeAdmin(ctx context.Context, admin *lab.AdminAPI, nodes []string) error {
	for _, n := range nodes {
		if err := admin.Probe(ctx, n); err != nil {
			return fmt.Errorf("%w: node %s has no usable admin API (%v), which the loopback network needs for "+
				"partitions, delay and loss; use --net lab (kernel faults for any node binary; see 'ec-counter doctor')",
				ErrFaultsUnsupported, n, err)
		}
	}
	return nil
}

// Run performs one test run as cfg says, printing progress and a summary to
// out (and to the run's harness.log). It returns an error only when the
// harness itself failed or was interrupted; an invalid history is a normal
// Outcome.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Outcome, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.HasSeed {
		cfg.Seed = rand.Uint64() >> 1 // keep it readable as a signed int too
	}
	start := time.Now()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	prevLatest := runstore.Latest(cfg.Store)
	run, err := runstore.Create(cfg.Store, cfg.Name, start)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(run.File(runstore.HarnessLog))
	if err != nil {
		return nil, fmt.Errorf("create harness log: %w", err)
	}
	defer logFile.Close()
	out = io.MultiWriter(out, logFile)
	r := &runner{cfg: cfg, run: run, out: out, start: start}
	replay := cfg
	if len(cfg.Workload) > 0 {
		// The run keeps its own copy of the workload, as of the script.
		replay.WorkloadFile = run.File(runstore.WorkloadFile)
		if err := atomicfile.WriteFile(replay.WorkloadFile, 0o644, cfg.Workload.Encode); err != nil {
			return nil, err
		}
	}
	if cfg.Script != "" {
		// The run keeps its own copy of the script: the replay needs no
		// other file, and editing the original changes no stored run.
		replay.NemesisSchedule = run.File(runstore.ScheduleFile)
		if err := atomicfile.WriteBytes(replay.NemesisSchedule, 0o644, []byte(cfg.Script)); err != nil {
			return nil, err
		}
	}
	r.rec = runstore.Record{
		Name: cfg.Name, Seed: cfg.Seed, Version: version(), Config: cfgJSON,
		Command: cfg.Command, Replay: replay.replayCommand(), Start: start.UTC(),
	}
	o, err := r.execute(ctx)
	if refusal(err) {
		// Refused before any client ran, like a bad flag: nothing to keep.
		fmt.Fprintf(out, "run refused: nothing stored\n")
		logFile.Close()
		if derr := runstore.Discard(cfg.Store, run, prevLatest); derr != nil {
			fmt.Fprintf(out, "%v\n", derr)
		}
		return nil, err
	}
	r.rec.End = time.Now().UTC()
	if err != nil {
		r.rec.Error = err.Error()
		r.rec.Interrupted = ctx.Err() != nil
		fmt.Fprintf(out, "run failed: %v\nhistory and logs kept in %s\n", err, run)
	}
	if werr := r.writeRecord(); werr != nil && err == nil {
		err = werr
	}
	// Crashed runs get a report too: it shows what there is. An
	// interrupted run's user is waiting for the prompt: the report of a
	// long history takes a while, so 'serve' writes it when asked.
	switch {
	case r.reported:
	case ctx.Err() != nil:
		fmt.Fprintf(out, "%s not written (interrupted): 'ec-counter serve --store %s' writes it when the run is opened\n", runstore.ReportFile, cfg.Store)
	default:
		if rerr := report.Write(string(run)); rerr != nil {
			fmt.Fprintf(out, "could not write %s: %v\n", runstore.ReportFile, rerr)
		}
	}
	return o, err
}

type runner struct {
	cfg   Config
	run   runstore.RunDir
	out   io.Writer
	start time.Time
	rec   runstore.Record
	mu    sync.Mutex // guards out

	live         *liveLine  // the live line on a terminal; nil without one
	faults       string     // describeFaults, for the summary
	fleet        *lab.Fleet // the SSH hosts, on that network
	nemesisStats string     // what the nemesis did, for the summary
	reported     bool       // the report was attempted at the end of execute
}

func (r *runner) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live.erase()
	fmt.Fprintf(r.out, "%7s  ", time.Since(r.start).Round(time.Millisecond))
	fmt.Fprintf(r.out, format+"\n", args...)
}

func (r *runner) writeRecord() error {
	return runstore.WriteRecord(r.run, &r.rec)
}

func (r *runner) execute(ctx context.Context) (*Outcome, error) {
	cfg := r.cfg
	t := runstore.Timings{}
	r.logf("run %s: seed %d, %d nodes, %d clients x %d requests at %g/s", r.run, cfg.Seed, cfg.Nodes, cfg.Clients, cfg.Requests, cfg.Rate)
	if cfg.Bug != "" {
		r.logf("nodes run with bug %q switched on", cfg.Bug)
	}

	sched, err := cfg.schedule(nodeNames(cfg.Nodes))
	if err != nil {
		return nil, err
	}
	r.rec.Schedule = sched.String()
	if late := lateSteps(sched, cfg.expectedClientPhase()); len(late) > 0 {
		r.logf("nemesis: %d steps of the schedule come after the client phase (about %s) and will not run, from: %s",
			len(late), cfg.expectedClientPhase().Round(time.Millisecond), late[0])
	}
	r.faults = describeFaults(cfg)
	r.logf("faults: %s", r.faults)
	if cfg.Script == "" {
		if unused := nemesis.Unused(cfg.Nemesis, sched); len(unused) > 0 {
			r.rec.NemesisUnused = unused
			r.logf("nemesis: the client phase has room for %d fault windows, fewer than the kinds asked: no %s in this run (lengthen it with --requests or shorten --nemesis-interval)",
				len(sched)/2, strings.Join(unused, ", "))
		}
	}

	lb, addrs, err := r.setUpNetwork(ctx, sched)
	if err != nil {
		return nil, err
	}
	var hosts []*lab.Host
	if lb != nil {
		defer func() { // after the nodes have stopped (deferred later)
			if err := lb.Close(); err != nil {
				r.logf("lab: %v", err)
			}
		}()
		hosts = lb.Hosts()
	}
	r.rec.Disk = cfg.disk(sched)
	disk := diskOptions{lazy: r.rec.Disk != DiskPlain, torn: r.rec.Disk == DiskTorn, seed: cfg.Seed}
	fleet := r.fleet
	if fleet != nil {
		defer func() { // after the nodes have stopped (deferred later)
			err := fleet.Close(context.WithoutCancel(ctx), func(node string) (string, string) {
				return r.run.NodeLog(node), r.run.NodeData(node)
			})
			if err != nil {
				r.logf("hosts: %v", err)
			}
		}()
	}
	cl, err := newCluster(r.run, cfg.Nodes, cfg.nodeCommand(), cfg.StopGrace, addrs, hosts, fleet, disk)
	if err != nil {
		return nil, err
	}
	if fleet != nil {
		if err := r.install(ctx, cl, sched); err != nil {
			return nil, err
		}
	}
	cl.logf = r.logf
	if disk.lazy {
		r.logf("disk: %s: every node's data directory is a power-loss file system (a crash loses what was not fsynced)", r.rec.Disk)
	}
	r.rec.Nodes = make(map[string]runstore.NodeAddrs)
	for _, s := range cl.specs {
		r.rec.Nodes[s.Name] = s.Addrs
	}
	if err := r.writeRecord(); err != nil {
		cl.stop()
		return nil, err
	}
	stopped := false
	stopCluster := func() {
		if stopped {
			return
		}
		stopped = true
		unclean, died := cl.stop()
		if len(unclean) > 0 {
			r.rec.Unclean = unclean
			r.logf("nodes that did not exit cleanly on SIGTERM: %s", strings.Join(unclean, ", "))
		}
		for _, d := range died {
			r.logf("%s", d)
		}
	}
	defer stopCluster() // also on panic: never leave a node behind

	histFile, err := os.OpenFile(r.run.File(runstore.HistoryFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create history: %w", err)
	}
	defer histFile.Close()
	rec := &recorder{w: histories.NewWriter(histFile, r.start)}
	rec.next.Store(int64(cfg.Clients))
	// A restarted node is read at once, by a process of its own: a node
	// that came back without acknowledged values shows it before the
	// clients' next sets raise the counter past them.
	cl.afterRestart = func(ctx context.Context, node string) {
		s, _ := cl.spec(node)
		c := &clientRun{node: node, api: newCounterClient(s.Addrs.HTTP), timeout: cfg.RequestTimeout}
		defer c.api.close()
		if _, err := c.do(ctx, rec, rec.freshProcess(), workload.Request{F: histories.FGet}); err != nil {
			r.logf("read of %s after its restart: %v", node, err)
		}
	}

	phase := time.Now()
	if err := cl.start(ctx, cfg.StartTimeout); err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	t.Startup = time.Since(phase)
	r.logf("cluster up in %s: %s", t.Startup.Round(time.Millisecond), describeNodes(cl))

	var faults nemesis.Network
	switch {
	case lb != nil:
		faults = lb
	case fleet != nil:
		faults = fleet
	default:
		admin := lab.NewAdminAPI(cl.token, cl.httpAddrs())
		if sched.NetworkFaults() {
			if err := probeAdmin(ctx, admin, cl.names()); err != nil {
				return nil, err
			}
		}
		faults = admin
	}
	phase = time.Now()
	if cfg.Progress != nil {
		live := startLive(cfg.Progress, &r.mu, phase, cfg.expectedClientPhase(), &rec.tally)
		defer live.close()
		r.mu.Lock()
		r.live = live
		r.mu.Unlock()
	}
	record := nemesis.RecordTo(rec.w)
	nem := nemesis.New(cl, faults, func(f string, value any, problem string) error {
		r.live.nemesisOp(f)
		return record(f, value, problem)
	}, r.logf)

	nemCtx, stopNemesis := context.WithCancel(ctx)
	nemDone := make(chan error, 1)
	go func() { nemDone <- nem.Run(nemCtx, sched) }()
	err = r.runClients(ctx, cl, rec)
	stopNemesis()
	if nerr := <-nemDone; nerr != nil && !errors.Is(nerr, context.Canceled) && err == nil {
		err = fmt.Errorf("nemesis: %w", nerr)
	}
	if err != nil {
		return nil, err
	}
	t.Clients = time.Since(phase)
	r.logf("client phase done in %s: %d ops recorded", t.Clients.Round(time.Millisecond), rec.w.Len())
	if len(sched) > 0 {
		if err := nem.Heal(ctx); err != nil {
			// In the lab, a heal the kernel refused is the lab's failure:
			// the history says which faults were not installed, and the
			// checkers judge the run unknown rather than blame the nodes.
			if (lb == nil && fleet == nil) || ctx.Err() != nil {
				return nil, fmt.Errorf("final heal: %w", err)
			}
			r.logf("final heal incomplete: %v", err)
		}
		r.nemesisStats = nem.Stats().String()
		r.logf("healed; nemesis: %s", r.nemesisStats)
	}
	if lb != nil {
		r.rec.Lab.QueueDrops = lb.QueueDrops()
		if r.rec.Lab.QueueDrops > 0 {
			r.logf("lab: the delayer's queue was full %d times (those packets were lost)", r.rec.Lab.QueueDrops)
		}
	}

	phase = time.Now()
	converged, err := r.finalReads(ctx, cl, rec)
	if err != nil {
		return nil, err
	}
	t.Convergence = time.Since(phase)
	if converged {
		r.logf("converged in %s", t.Convergence.Round(time.Millisecond))
	} else {
		r.logf("NOT converged within %s", cfg.ConvergeTimeout)
	}

	phase = time.Now()
	stopCluster()
	t.Shutdown = time.Since(phase)
	if err := histFile.Sync(); err != nil {
		return nil, fmt.Errorf("sync history: %w", err)
	}

	phase = time.Now()
	// Check the history as it is on disk, in one streaming pass (docs/histories-and-checks.md "Checks"): what a later "ec-counter check" of the run would find.
	k, err := checkFile(ctx, r.run.File(runstore.HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("read back history: %w", err)
	}
	res := k.Result()
	if err := runstore.WriteJSON(r.run.File(runstore.ResultsFile), res); err != nil {
		return nil, err
	}
	if res.Checks.Linearizable.Valid == checker.Invalid {
		if err := writeLinearHTML(r.run.File(runstore.LinearFile), k); err != nil {
			r.logf("could not write %s: %v", runstore.LinearFile, err)
		}
	}
	t.Checking = time.Since(phase)
	t.Total = time.Since(r.start)
	r.rec.Timings = &t
	r.rec.Valid = &res.Valid

	o := &Outcome{Dir: string(r.run), Seed: cfg.Seed, Result: res, Replay: r.rec.Replay, Timings: t, Nemesis: r.nemesisStats, Faults: r.faults}
	// The record and the report before the summary, which names the report
	// only if it was written (a full disk, say).
	r.rec.End = time.Now().UTC()
	if err := r.writeRecord(); err != nil {
		return nil, err
	}
	if err := report.Write(string(r.run)); err != nil {
		r.logf("could not write %s: %v", runstore.ReportFile, err)
	} else {
		o.Report = r.run.File(runstore.ReportFile)
	}
	r.reported = true
	r.live.close()
	r.mu.Lock()
	printSummary(r.out, o)
	r.mu.Unlock()
	return o, nil
}

// lateSteps returns the steps of s timed at or after the client phase's
// expected end: the nemesis stops when the clients do, so they never run.
// Steps that only undo a fault (stop-partition, stop-link, restart,
// resume) are not counted: the final heal does what they would.
func lateSteps(s nemesis.Schedule, phase time.Duration) []nemesis.Step {
	for i, st := range s {
		if st.At < phase {
			continue
		}
		for _, late := range s[i:] {
			switch late.Action {
			case nemesis.FStopPartition, nemesis.FStopLink, nemesis.FRestart, nemesis.FResume:
			default:
				return s[i:]
			}
		}
		return nil
	}
	return nil
}

// setUpNetwork prepares where the nodes run: in the lab, it builds one
// host per node and returns the lab (the caller closes it); on loopback, it
// picks free addresses and returns a nil lab.
func (r *runner) setUpNetwork(ctx context.Context, sched nemesis.Schedule) (*lab.Lab, []runstore.NodeAddrs, error) {
	r.rec.Network = r.cfg.network()
	if r.rec.Network == NetHosts {
		addrs, err := r.openFleet(ctx, sched)
		return nil, addrs, err
	}
	if r.rec.Network != NetLab {
		addrs, err := allocateAddrs(r.cfg.Nodes, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))))
		if err != nil {
			return nil, nil, err
		}
		r.logf("network: loopback, faults through each node's admin API")
		return nil, addrs, nil
	}
	start := time.Now()
	lb, err := lab.Build(ctx, nodeNames(r.cfg.Nodes))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: the lab cannot be built here: %v ('ec-counter doctor' says why)", ErrFaultsUnsupported, err)
	}
	r.rec.Lab = newLabRecord(lb)
	r.logf("network: lab %s built in %s: every node a host of its own, faults by the kernel on the router",
		lb.Prefix(), time.Since(start).Round(time.Millisecond))
	return lb, hostAddrs(lb.Hosts()), nil
}

// plan returns each client's requests: the script's, or the seeded plan,
// each client planned on its own core.
func (r *runner) plan(ctx context.Context) ([][]workload.Request, error) {
	if len(r.cfg.Workload) > 0 {
		return r.cfg.Workload.ByClient(), nil
	}
	plans := make([][]workload.Request, r.cfg.Clients)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range plans {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			plans[i] = workload.PlanClient(r.cfg.Seed, i, r.cfg.Clients, r.cfg.Requests, r.cfg.Values)
			return nil
		})
	}
	return plans, g.Wait()
}

// ctxWriter fails its writes once its context is done, so that a long
// write gives way to an interrupt.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// runClients runs every client concurrently, client i bound to node i mod N.
func (r *runner) runClients(ctx context.Context, cl *cluster, rec *recorder) error {
	plans, err := r.plan(ctx)
	if err != nil {
		return err
	}
	names := cl.names()
	var wg sync.WaitGroup
	errs := make(chan error, r.cfg.Clients+1)
	if len(r.cfg.Workload) == 0 {
		// The run keeps the seeded workload its clients send (docs/workloads.md "Scripted workloads"), written while they send it.
		wg.Go(func() {
			err := atomicfile.WriteFile(r.run.File(runstore.WorkloadFile), 0o644, func(w io.Writer) error {
				return workload.EncodeRoundRobin(ctxWriter{ctx, w}, plans)
			})
			if err != nil {
				errs <- err
			}
		})
	}
	start := time.Now()
	for i, reqs := range plans {
		if len(reqs) == 0 {
			continue
		}
		s := cl.specs[i%len(names)]
		c := &clientRun{
			node:     s.Name,
			api:      newCounterClient(s.Addrs.HTTP),
			reqs:     reqs,
			interval: intervalOf(r.cfg.Rate),
			timeout:  r.cfg.RequestTimeout,
			gate:     cl.gate(s.Name),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.api.close()
			if err := c.run(ctx, rec, histories.Process(i), start); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when no client failed
}

// finalReads polls every node in rounds, recording each read as a
// final-get, until a round in which all nodes answer the same value, or the
// convergence timeout passes.
func (r *runner) finalReads(ctx context.Context, cl *cluster, rec *recorder) (bool, error) {
	deadline := time.Now().Add(r.cfg.ConvergeTimeout)
	readers := make([]*clientRun, len(cl.specs))
	procs := make([]histories.Process, len(cl.specs))
	for i, s := range cl.specs {
		readers[i] = &clientRun{node: s.Name, api: newCounterClient(s.Addrs.HTTP), timeout: r.cfg.RequestTimeout}
		defer readers[i].api.close()
		procs[i] = rec.freshProcess()
	}
	for {
		values := make([]*int64, len(readers))
		var wg sync.WaitGroup
		var werr error
		var mu sync.Mutex
		for i, c := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := c.finalGet(ctx, rec, procs[i])
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					werr = err
				}
				values[i] = v
			}()
		}
		wg.Wait()
		if werr != nil {
			return false, werr
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if agree(values) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// finalGet reads the node's value once and records it as a final-get. It
// returns the value, or nil when the read failed.
func (c *clientRun) finalGet(ctx context.Context, rec *recorder, p histories.Process) (*int64, error) {
	if _, err := rec.w.Append(histories.Op{Type: histories.Invoke, Process: p, F: histories.FFinalGet, Node: c.node}); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	v, err := c.api.get(rctx)
	cancel()
	done := histories.Op{Type: histories.OK, Process: p, F: histories.FFinalGet, Node: c.node}
	if err != nil {
		done.Type, done.Error = histories.Fail, err.Error()
	} else {
		done.Value = histories.IntValue(v)
	}
	if _, werr := rec.w.Append(done); werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, nil
	}
	return &v, nil
}

func agree(values []*int64) bool {
	for _, v := range values {
		if v == nil || *v != *values[0] {
			return false
		}
	}
	return true
}

func describeNodes(cl *cluster) string {
	parts := make([]string, len(cl.specs))
	for i, s := range cl.specs {
		parts[i] = s.Name + "@" + s.Addrs.HTTP
	}
	return strings.Join(parts, " ")
}

// describeFaults says which fault kinds cfg asks for, whether they are the
// default, and which default kinds were left out and why.
func describeFaults(cfg Config) string {
	switch {
	case cfg.Script != "":
		return "the scripted schedule " + cmp.Or(cfg.NemesisSchedule, "given")
	case len(cfg.Nemesis) == 0 && !cfg.NemesisDefault:
		return "none (--nemesis none)"
	}
	var b strings.Builder
	if cfg.NemesisDefault {
		b.WriteString("the default kinds this network can inject: ")
	}
	b.WriteString(cmp.Or(strings.Join(cfg.Nemesis, ", "), "none"))
	left := make([]string, 0, len(cfg.NemesisLeftOut))
	for k := range cfg.NemesisLeftOut {
		left = append(left, k)
	}
	slices.Sort(left)
	for _, k := range left {
		fmt.Fprintf(&b, "; no %s: %s", k, cfg.NemesisLeftOut[k])
	}
	return b.String()
}

// printSummary prints the short readable summary of a finished run.
func printSummary(w io.Writer, o *Outcome) {
	fmt.Fprintf(w, "\n")
	o.Result.WriteSummary(w)
	fmt.Fprintf(w, "\nseed:    %d\n", o.Seed)
	if o.Faults != "" {
		fmt.Fprintf(w, "faults:  %s\n", o.Faults)
	}
	if o.Nemesis != "" {
		fmt.Fprintf(w, "nemesis: %s\n", o.Nemesis)
	}
	fmt.Fprintf(w, "timings: start-up %s, clients %s, convergence %s, checking %s, total %s\n",
		o.Timings.Startup.Round(time.Millisecond), o.Timings.Clients.Round(time.Millisecond),
		o.Timings.Convergence.Round(time.Millisecond), o.Timings.Checking.Round(time.Millisecond),
		o.Timings.Total.Round(time.Millisecond))
	fmt.Fprintf(w, "stored:  %s\n", o.Dir)
	if o.Report != "" {
		fmt.Fprintf(w, "report:  %s\n", o.Report)
	}
	fmt.Fprintf(w, "replay:  %s\n", o.Replay)
	fmt.Fprintf(w, "verdict: %s\n", verdictWord(o.Result.Valid))
}

func verdictWord(v checker.Validity) string {
	return strings.ToUpper(v.String())
}

// replayCommand renders the command line that replays the run c
// describes, quoted for a POSIX shell.
func (c *Config) replayCommand() string {
	return cmp.Or(c.Program, "ec-counter") + " " + shellquote.Join(c.ReplayArgs()...)
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// checkFile checks the history file at path, until ctx is done.
func checkFile(ctx context.Context, path string) (*checker.Checker, error) {
	f, err := boundedfile.OpenContext(ctx, path, math.MaxInt64-1)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return checker.CheckHistory(f)
}

func writeLinearHTML(path string, k *checker.Checker) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = k.WriteLinearHTML(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
