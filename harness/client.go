package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/workload"
)

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
	w     *histories.Writer
	next  atomic.Int64 // the next fresh process id
	tally opTally      // completions so far, for the live line
}

func (r *recorder) freshProcess() histories.Process {
	return histories.Process(r.next.Add(1) - 1)
}

// clientRun is one client: its node, its planned requests and its pacing.
type clientRun struct {
	node     string
	api      *counterClient
	reqs     []workload.Request
	interval time.Duration // between request starts; 0 means back to back
	timeout  time.Duration
	// gate, if set, is waited on before each request (cluster.gate).
	gate *gate
}

// run sends the planned requests in order, recording each invoke and its
// completion: each at its "at" time from start when it has one, else the
// i-th at i intervals from start (back to back when the interval is 0). A
// set whose outcome is unknown ends as info and the client continues as a
// fresh process, as in Jepsen.
func (c *clientRun) run(ctx context.Context, rec *recorder, process histories.Process, start time.Time) error {
	for i, rq := range c.reqs {
		if rq.HasAt || c.interval > 0 {
			next := start.Add(time.Duration(i) * c.interval)
			if rq.HasAt {
				next = start.Add(rq.At)
			}
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
func (c *clientRun) do(ctx context.Context, rec *recorder, process histories.Process, rq workload.Request) (histories.Process, error) {
	if c.gate != nil {
		if err := c.gate.wait(ctx); err != nil {
			return process, err
		}
	}
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
	rec.tally.add(done.Type)
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
	c := &clientRun{node: server, api: newCounterClient(server), reqs: workload.Plan(seed, 1, requests, workload.ValuesBoundaries), interval: intervalOf(rate), timeout: timeout}
	defer c.api.close()
	return c.run(ctx, rec, 0, time.Now())
}

// intervalOf turns a rate in requests per second into the gap between
// request starts.
func intervalOf(rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / rate)
}
