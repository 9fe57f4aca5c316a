// Package workload is what a run's clients send: each client's requests,
// in order, planned from the run's seed (Plan) or read from a JSON Lines
// file (Parse), one request a line (README "Scripted workloads"):
//
//	{"client": 0, "f": "set", "value": 57}
//	{"client": 1, "f": "get", "at": "1.5s"}
//
// Every run stores the workload it sent as workload.jsonl, so any run can be
// edited and replayed exactly.
package workload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

// Request is one client request: a get, or a set of Value.
type Request struct {
	Client int    // the client that sends it, 0 or more
	F      string // histories.FGet or histories.FSet
	Value  int64  // a set's value
	// At, when HasAt, is when the client sends it, from the start of the
	// client phase; otherwise the client's pace (--rate) decides.
	At    time.Duration
	HasAt bool
}

// Workload is a run's requests, in the order of its file. Each client sends
// its own requests in that order, one at a time; clients run side by side.
type Workload []Request

// Limits on a workload (README "Scripted workloads").
const (
	MaxClients  = 10_000
	MaxRequests = 10_000_000 // over all clients
	MaxAt       = 24 * time.Hour
	maxLine     = 4096
)

// Clients returns how many clients the workload needs: one more than the
// largest client id (a client with no request sends nothing).
func (w Workload) Clients() int {
	n := 0
	for _, r := range w {
		n = max(n, r.Client+1)
	}
	return n
}

// ByClient returns each client's requests in order, indexed by client id.
func (w Workload) ByClient() [][]Request {
	out := make([][]Request, w.Clients())
	for _, r := range w {
		out[r.Client] = append(out[r.Client], r)
	}
	return out
}

// MaxPerClient returns how many requests the busiest client sends.
func (w Workload) MaxPerClient() int {
	per := make(map[int]int)
	most := 0
	for _, r := range w {
		per[r.Client]++
		most = max(most, per[r.Client])
	}
	return most
}

// Duration is when the last request with a time is sent (0 when none has
// one).
func (w Workload) Duration() time.Duration {
	var d time.Duration
	for _, r := range w {
		if r.HasAt {
			d = max(d, r.At)
		}
	}
	return d
}

// line is a request as a line of the file.
type line struct {
	Client *int            `json:"client"`
	F      string          `json:"f"`
	Value  json.RawMessage `json:"value,omitempty"`
	At     string          `json:"at,omitempty"`
}

// Encode writes the workload as JSON Lines, in order.
func (w Workload) Encode(out io.Writer) error {
	bw := bufio.NewWriter(out)
	var b []byte
	for _, r := range w {
		b = r.appendLine(b[:0])
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// EncodeRoundRobin writes the requests of each client (perClient[i] being
// client i's, in order) as one workload, clients interleaved round-robin as
// Plan orders them, without building it in memory.
func EncodeRoundRobin(out io.Writer, perClient [][]Request) error {
	bw := bufio.NewWriter(out)
	var b []byte
	for i := 0; ; i++ {
		more := false
		for _, reqs := range perClient {
			if i < len(reqs) {
				more = true
				b = reqs[i].appendLine(b[:0])
				if _, err := bw.Write(b); err != nil {
					return err
				}
			}
		}
		if !more {
			return bw.Flush()
		}
	}
}

// appendLine appends r as a line of a workload file.
func (r Request) appendLine(b []byte) []byte {
	b = append(b, `{"client":`...)
	b = strconv.AppendInt(b, int64(r.Client), 10)
	b = append(b, `,"f":`...)
	b = strconv.AppendQuote(b, r.F)
	if r.F == histories.FSet {
		b = append(b, `,"value":`...)
		b = strconv.AppendInt(b, r.Value, 10)
	}
	if r.HasAt {
		b = append(b, `,"at":`...)
		b = strconv.AppendQuote(b, r.At.String())
	}
	return append(b, "}\n"...)
}

// Parse reads a workload file: one request a line, blank lines skipped.
// Every error names its line: an unknown field, a client that is not an
// integer in [0, MaxClients), an f other than get or set, a set without an
// integer value or a get with one, a value outside int64, an "at" that is
// not a Go duration in [0, 24h] or that goes back in time within its
// client, a set value used twice (the checkers need unique values), more
// than MaxRequests requests, or none at all.
func Parse(r io.Reader) (Workload, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var w Workload
	seen := make(map[int64]int) // set value -> its line
	lastAt := make(map[int]time.Duration)
	for n := 1; ; n++ {
		text, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(text) > maxLine {
			return nil, fmt.Errorf("workload line %d is longer than %d bytes: not a workload (one request a line)", n, maxLine)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read workload line %d: %w", n, err)
		}
		if t := bytes.TrimSpace(text); len(t) > 0 {
			req, perr := parseLine(t)
			if perr != nil {
				return nil, fmt.Errorf("workload line %d: %w", n, perr)
			}
			if req.F == histories.FSet {
				if prev, dup := seen[req.Value]; dup {
					return nil, fmt.Errorf("workload line %d: set value %d was already used on line %d: set values must be unique within a run", n, req.Value, prev)
				}
				seen[req.Value] = n
			}
			if req.HasAt {
				if prev, ok := lastAt[req.Client]; ok && req.At < prev {
					return nil, fmt.Errorf("workload line %d: client %d's \"at\" %s is before its previous request's %s: a client sends its requests in order", n, req.Client, req.At, prev)
				}
				lastAt[req.Client] = req.At
			}
			if len(w) == MaxRequests {
				return nil, fmt.Errorf("workload line %d: more than %d requests", n, MaxRequests)
			}
			w = append(w, req)
		}
		if err == io.EOF {
			break
		}
	}
	if len(w) == 0 {
		return nil, errors.New("the workload holds no request")
	}
	return w, nil
}

func parseLine(text []byte) (Request, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var l line
	if err := dec.Decode(&l); err != nil {
		return Request{}, fmt.Errorf("not a request (%v)", err)
	}
	if dec.More() {
		return Request{}, errors.New("more than one JSON value on the line")
	}
	if l.Client == nil {
		return Request{}, errors.New(`no "client"`)
	}
	if *l.Client < 0 || *l.Client >= MaxClients {
		return Request{}, fmt.Errorf("client %d is outside 0 to %d", *l.Client, MaxClients-1)
	}
	req := Request{Client: *l.Client, F: l.F}
	switch l.F {
	case histories.FSet:
		if len(l.Value) == 0 || string(l.Value) == "null" {
			return Request{}, errors.New(`a set needs an integer "value"`)
		}
		v, err := strconv.ParseInt(string(l.Value), 10, 64)
		if err != nil {
			return Request{}, fmt.Errorf("set value %s is not an integer in int64's range", l.Value)
		}
		req.Value = v
	case histories.FGet:
		if len(l.Value) > 0 && string(l.Value) != "null" {
			return Request{}, errors.New(`a get takes no "value"`)
		}
	default:
		return Request{}, fmt.Errorf(`"f" must be get or set, got %q`, l.F)
	}
	if l.At != "" {
		d, err := time.ParseDuration(l.At)
		if err != nil || d < 0 || d > MaxAt {
			return Request{}, fmt.Errorf(`"at" must be a duration from 0s to %s (e.g. "1.5s"), got %q`, MaxAt, l.At)
		}
		req.At, req.HasAt = d, true
	}
	return req, nil
}
