// Package workload is what a run's clients send: each client's requests,
// in order, planned from the run's seed (Plan) or read from a JSON Lines
// file (Parse, ParseFile), one request a line (docs/workloads.md "Scripted workloads"):
//
//	{"client": 0, "f": "set", "value": 57}
//	{"client": 1, "f": "get", "at": "1.5s"}
//
// Every run stores the workload it sent as workload.jsonl, so any run can be
// edited and replayed exactly.
package workload

import (
	"bufio"
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

// Limits on a workload (docs/workloads.md "Scripted workloads").
const (
	MaxClients  = 10_000
	MaxRequests = 10_000_000 // over all clients
	MaxAt       = 24 * time.Hour
	maxLine     = 4096 // bytes of a line
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
