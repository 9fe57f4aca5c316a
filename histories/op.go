// Package histories holds the operation model of an ec-counter run, its JSON
// Lines encoding (a streaming writer and a reader that tolerates a truncated
// last line) and the on-disk layout of stored runs.
//
// The model is Jepsen's: every client request is an invoke followed by exactly
// one completion of type ok, fail or info; the nemesis records what it did as
// info ops of process "nemesis".
package histories

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is an operation's type: invoke, or one of the three completions.
type Type string

// The operation types of docs/histories-and-checks.md "Histories".
const (
	Invoke Type = "invoke" // a request was sent
	OK     Type = "ok"     // it definitely happened
	Fail   Type = "fail"   // it definitely did not happen
	Info   Type = "info"   // unknown: it may have happened, or may happen later
)

// Valid reports whether t is one of the four known types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// The fs of client operations.
const (
	FGet      = "get"       // a client read
	FSet      = "set"       // a client write of a unique value
	FFinalGet = "final-get" // a read taken after the final heal
)

// Process is the logical id of the actor that performed an op: a client
// process (0, 1, ...) or the nemesis. It is encoded as a JSON integer, or as
// the string "nemesis".
type Process int

// Nemesis is the process of every fault the harness injects.
const Nemesis Process = -1

// NotInstalled begins the error of a nemesis op that the network failed
// to carry out on some nodes, e.g. "not installed: n2 (...)": a fault asked
// for and not injected, so the run cannot be judged valid (docs/faults.md "Faults: the nemesis"). A node the loopback network could not reach
// because it was down is "unreachable: n2" instead.
const NotInstalled = "not installed"

// String returns the process as it appears in explanations.
func (p Process) String() string {
	if p == Nemesis {
		return "nemesis"
	}
	return strconv.Itoa(int(p))
}

// MarshalJSON encodes a client process as an integer, the nemesis as "nemesis".
func (p Process) MarshalJSON() ([]byte, error) {
	if p == Nemesis {
		return []byte(`"nemesis"`), nil
	}
	if p < 0 {
		return nil, fmt.Errorf("invalid process id %d", int(p))
	}
	return strconv.AppendInt(nil, int64(p), 10), nil
}

// UnmarshalJSON accepts a non-negative integer or the string "nemesis".
func (p *Process) UnmarshalJSON(b []byte) error {
	if string(b) == `"nemesis"` {
		*p = Nemesis
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 32)
	if err != nil || n < 0 {
		return fmt.Errorf("process must be a non-negative integer or \"nemesis\", got %s", b)
	}
	*p = Process(n)
	return nil
}

// Op is one line of a history.
type Op struct {
	Index   int64   `json:"index"`
	Time    int64   `json:"time"` // nanoseconds since the run started
	Type    Type    `json:"type"`
	Process Process `json:"process"`
	F       string  `json:"f"`
	// Value is the op's argument or result: an integer for client ops (null
	// on a get's invoke), any JSON for nemesis ops.
	Value   json.RawMessage `json:"value,omitempty"`
	Node    string          `json:"node,omitempty"`
	Applied *bool           `json:"applied,omitempty"` // on an ok set: whether it raised the counter
	Current *int64          `json:"current,omitempty"` // on an ok set: the counter after the set
	Error   string          `json:"error,omitempty"`
}

// Int returns the op's value as an int64, and false when the op carries no
// integer value.
func (o *Op) Int() (int64, bool) {
	if len(o.Value) == 0 || o.Value[0] == 'n' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(o.Value), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// IntValue encodes n as an op value.
func IntValue(n int64) json.RawMessage {
	return strconv.AppendInt(nil, n, 10)
}

// JSONValue encodes v as an op value; it is meant for nemesis ops.
func JSONValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(strconv.Quote(fmt.Sprint(v)))
	}
	return b
}

// Describe renders the op for explanations: index, process, f, value, node
// and time.
func (o *Op) Describe() string {
	s := fmt.Sprintf("op %d (process %s, %s %s", o.Index, o.Process, o.Type, o.F)
	if len(o.Value) > 0 {
		s += " " + string(o.Value)
	}
	if o.Node != "" {
		s += " on " + o.Node
	}
	return s + fmt.Sprintf(", t=%s)", FormatTime(o.Time))
}

// FormatTime renders nanoseconds since the run started as seconds, e.g. "1.234s".
func FormatTime(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}
