package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/histories"
)

// request is one planned client request: a get, or a set of Value.
type request struct {
	F     string // histories.FGet or histories.FSet
	Value int64  // the set's argument
}

// The workloads' set values (Config.Values, README "The workload").
const (
	// ValuesBoundaries climbs from small values across the integer widths
	// where implementations break: 2^31, 2^32 and 2^53.
	ValuesBoundaries = "boundaries"
	// ValuesSmall keeps to small values, for readable histories.
	ValuesSmall = "small"
)

// boundaries are the integer widths the boundaries workload crosses: int32,
// uint32, and the largest integers a float64 holds exactly (JSON decoded
// through float64, as JavaScript does).
var boundaries = [...]int64{1 << 31, 1 << 32, 1 << 53}

// boundaryReach is how far below and above each boundary the values that
// must cross it lie: every client sets its share of [B-16, B+16].
const boundaryReach = 16

// planRequests derives client's requests from the run's seed alone, so a
// replay sends exactly the same operations whatever the timing. Each request
// is a get or a set with even odds. Set values are unique within the run (a
// value's residue modulo clients is the client's id) and climb, so that,
// with clients running side by side, sets are often applied and often
// rejected.
//
// With ValuesBoundaries the requests fall into four equal phases: small
// values, then values around 2^31, 2^32 and 2^53. Each boundary phase starts
// with the client's share of the values within 16 of the boundary (all of
// them, or the ones nearest the boundary if the phase has fewer sets), in
// rising order, and goes on rising above it, so every server sees the
// crossing and then reads and sets beyond it. With ValuesSmall every value
// is small.
//
// Now and then a value sits near the limits of int64: near the minimum at
// any time, near the maximum only in client 0's last requests (in about a
// third of runs), since such a value ends all later raises and makes the
// final value trivially the largest.
func planRequests(seed uint64, client, clients, n int, values string) []request {
	rng := rand.New(rand.NewPCG(seed, uint64(client)+1))
	c, id := int64(clients), int64(client)
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i].F = histories.FGet
		if rng.IntN(2) == 1 {
			reqs[i].F = histories.FSet
		}
	}
	phases := 1
	if values != ValuesSmall {
		phases = 1 + len(boundaries)
	}
	phaseOf := func(i int) int { return i * phases / n }
	setsIn := make([]int, phases)
	for i, r := range reqs {
		if r.F == histories.FSet {
			setsIn[phaseOf(i)]++
		}
	}

	// Each phase climbs less than 2^30 in all, so no phase reaches the
	// next one's values, however many requests there are.
	gap := min(40, max((1<<30)/c/int64(n), 1))
	var (
		small       = newSmallValues(rng, c, id, min(20, gap/2))
		nearMin     int64 // near-minimum values handed out
		nearMax     int64 // near-maximum values handed out
		boundary    []int64
		phase, prev = -1, int64(0)
	)
	for i := range reqs {
		if reqs[i].F != histories.FSet {
			continue
		}
		if p := phaseOf(i); p != phase {
			phase = p
			if p > 0 {
				boundary = crossing(boundaries[p-1], c, id, setsIn[p])
			}
		}
		var v int64
		switch r := rng.IntN(100); {
		case r < 2:
			v = math.MinInt64 + nearMin*c + id
			nearMin++
		case r < 10 && client == 0 && i >= n*9/10:
			v = math.MaxInt64 - nearMax*c - (c - 1 - id)
			nearMax++
		case phase == 0:
			v = small.next(i)
		case len(boundary) > 0:
			v, boundary = boundary[0], boundary[1:]
			prev = v
		default:
			v = prev + (1+rng.Int64N(gap))*c // keeps the residue, rises
			prev = v
		}
		reqs[i].Value = v
	}
	return reqs
}

// crossing returns the client's share of the values within boundaryReach
// of b (those ≡ id modulo c), nearest to b first chosen when more than sets
// of them exist, in rising order.
func crossing(b, c, id int64, sets int) []int64 {
	lo := b - boundaryReach
	first := lo + ((id-lo)%c+c)%c
	var vs []int64
	for v := first; v <= b+boundaryReach; v += c {
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		// More clients than values around b: this client's residue class
		// has none there, so it starts just above, still its own.
		vs = append(vs, first)
	}
	for len(vs) > max(sets, 1) { // drop the one farther from b
		if b-vs[0] > vs[len(vs)-1]-b {
			vs = vs[1:]
		} else {
			vs = vs[:len(vs)-1]
		}
	}
	return vs
}

// smallValues draws the small values of one client: a rising trend with
// wide noise, each value unique and ≡ id modulo c.
type smallValues struct {
	rng   *rand.Rand
	c, id int64
	trend int64 // the multiplier rises by about this per request
	used  map[int64]bool
	top   int64 // the largest multiplier used
}

func newSmallValues(rng *rand.Rand, c, id, trend int64) *smallValues {
	return &smallValues{rng: rng, c: c, id: id, trend: trend, used: map[int64]bool{}}
}

// next returns the value for request i: drawn near trend·i, or, if that one
// is taken, the next above all taken, so drawing never loops.
func (s *smallValues) next(i int) int64 {
	m := 1 + int64(i)*s.trend + s.rng.Int64N(200)
	if s.used[m] {
		m = s.top + 1
	}
	s.used[m] = true
	s.top = max(s.top, m)
	return m*s.c + s.id
}

// counterClient talks to one node's HTTP API. It owns its HTTP transport, so
// clients never share connections or any other state.
type counterClient struct {
	base string
	http *http.Client
}

func newCounterClient(httpAddr string) *counterClient {
	return &counterClient{
		base: "http://" + httpAddr,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		}},
	}
}

func (c *counterClient) close() { c.http.CloseIdleConnections() }

// errNotSent marks a request that definitely never reached the server.
var errNotSent = errors.New("request not sent")

// errRejected marks a request the server answered with a 4xx: by contract
// it changed nothing.
var errRejected = errors.New("request rejected")

func (c *counterClient) get(ctx context.Context) (int64, error) {
	b, err := c.do(ctx, http.MethodGet, nil)
	if err != nil {
		return 0, err
	}
	var body api.CounterResponse
	complete, err := decodeAnswer(b, &body, func(r *api.CounterResponse) { r.Value = 1 })
	if err != nil {
		return 0, err
	}
	if !complete {
		return 0, errors.New("response has no value")
	}
	return body.Value, nil
}

func (c *counterClient) set(ctx context.Context, v int64) (current int64, applied bool, err error) {
	payload, _ := json.Marshal(api.SetRequest{Value: v}) // an int64 always encodes
	b, err := c.do(ctx, http.MethodPost, payload)
	if err != nil {
		return 0, false, err
	}
	var body api.SetResponse
	complete, err := decodeAnswer(b, &body, func(r *api.SetResponse) { r.Value, r.Applied = 1, true })
	if err != nil {
		return 0, false, err
	}
	if !complete {
		return 0, false, errors.New("response lacks value or applied")
	}
	return body.Value, body.Applied, nil
}

// decodeAnswer decodes the JSON answer b into *out, and reports whether b
// gave every field of T (not null): a node that leaves "value" out must not
// read as 0. encoding/json leaves a field that b does not give as it was,
// so b is decoded a second time, over a T to which fill gave a non-zero
// value in every field: the two results differ exactly when b left out a
// field.
func decodeAnswer[T comparable](b []byte, out *T, fill func(*T)) (complete bool, err error) {
	if err := json.Unmarshal(b, out); err != nil {
		return false, fmt.Errorf("bad response %q: %w", b, err)
	}
	var filled T
	fill(&filled)
	_ = json.Unmarshal(b, &filled) // it did not fail the first time
	return filled == *out, nil
}

// do sends a request to /v1/counter and returns the body of a 200 answer.
func (c *counterClient) do(ctx context.Context, method string, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1/counter", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w: %v", errNotSent, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, errors.New("timeout")
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return nil, fmt.Errorf("%w: HTTP %d %s", errRejected, resp.StatusCode, bytes.TrimSpace(b))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// recorder hands out process ids and appends ops to the history.
type recorder struct {
	w    *histories.Writer
	next atomic.Int64 // the next fresh process id
}

func (r *recorder) freshProcess() histories.Process {
	return histories.Process(r.next.Add(1) - 1)
}

// clientRun is one client: its node, its planned requests and its pacing.
type clientRun struct {
	node     string
	api      *counterClient
	reqs     []request
	interval time.Duration // between request starts; 0 means back to back
	timeout  time.Duration
}

// run sends the planned requests in order, recording each invoke and its
// completion. A set whose outcome is unknown ends as info and the client
// continues as a fresh process, as in Jepsen.
func (c *clientRun) run(ctx context.Context, rec *recorder, process histories.Process) error {
	start := time.Now()
	for i, rq := range c.reqs {
		if c.interval > 0 {
			next := start.Add(time.Duration(i) * c.interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var err error
		process, err = c.do(ctx, rec, process, rq)
		if err != nil {
			return err
		}
	}
	return nil
}

// do performs one request and records it; it returns the process to use
// for the next request.
func (c *clientRun) do(ctx context.Context, rec *recorder, process histories.Process, rq request) (histories.Process, error) {
	inv := histories.Op{Type: histories.Invoke, Process: process, F: rq.F, Node: c.node}
	if rq.F == histories.FSet {
		inv.Value = histories.IntValue(rq.Value)
	}
	if _, err := rec.w.Append(inv); err != nil {
		return process, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	done := histories.Op{Process: process, F: rq.F, Node: c.node, Value: inv.Value}
	var err error
	switch rq.F {
	case histories.FSet:
		var cur int64
		var applied bool
		cur, applied, err = c.api.set(rctx, rq.Value)
		if err == nil {
			done.Type, done.Applied, done.Current = histories.OK, &applied, &cur
		}
	default:
		var v int64
		v, err = c.api.get(rctx)
		if err == nil {
			done.Type, done.Value = histories.OK, histories.IntValue(v)
		}
	}
	next := process
	if err != nil {
		done.Error = err.Error()
		switch {
		case rq.F != histories.FSet || errors.Is(err, errNotSent) || errors.Is(err, errRejected):
			done.Type = histories.Fail // nothing happened
		default:
			done.Type = histories.Info // may have happened, or may later
			next = rec.freshProcess()
		}
	}
	if _, werr := rec.w.Append(done); werr != nil {
		return next, werr
	}
	return next, nil
}

// StandaloneClient sends requests random requests, planned from seed exactly
// as the harness's client 0 would, to one server at rate requests per second
// (0: back to back), and writes its history as JSON Lines to w.
func StandaloneClient(ctx context.Context, server string, requests int, seed uint64, rate float64, timeout time.Duration, w io.Writer) error {
	if requests < 1 {
		return fmt.Errorf("requests must be at least 1, got %d", requests)
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		return fmt.Errorf("server must be HOST:PORT: %w", err)
	}
	rec := &recorder{w: histories.NewWriter(w, time.Now())}
	rec.next.Store(1)
	c := &clientRun{node: server, api: newCounterClient(server), reqs: planRequests(seed, 0, 1, requests, ValuesBoundaries), interval: intervalOf(rate), timeout: timeout}
	defer c.api.close()
	return c.run(ctx, rec, 0)
}

// intervalOf turns a rate in requests per second into the gap between
// request starts.
func intervalOf(rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / rate)
}
