// Package checker decides whether an ec-counter history is valid (README "Checks").
//
// Check runs five checks over a history and returns a Result, which encodes
// as the run's results.json:
//
//   - thin-air: every value read was 0 or written by a set invoked before the
//     read returned;
//   - linearizable: each server, on its own, behaves as a linearizable max
//     register whose value gossip may raise at any time;
//   - session: each client's reads never go down and see its own
//     acknowledged writes;
//   - convergence: after the final heal every server reports the same value,
//     which no acknowledged write or served read exceeds;
//   - stats: counts, availability and latencies, and whether the test did
//     anything at all.
//
// The linearizability check is a sweep, linear in the length of the history.
// CheckServerPorcupine checks the same model with porcupine, and
// WriteLinearHTML renders a violation with porcupine's visualization.
//
// The package is pure: it reads nothing but the ops it is given.
package checker

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ec-counter/ec-counter/histories"
)

// maxAnomalies is how many anomalies each check lists; the rest are only
// counted.
const maxAnomalies = 20

// The names of the checks, as they appear in results.json.
const (
	checkHistory      = "history"
	checkThinAir      = "thin-air"
	checkLinearizable = "linearizable"
	checkSession      = "session"
	checkConvergence  = "convergence"
	checkStats        = "stats"
)

// Result is the verdict on one history, as stored in results.json.
type Result struct {
	// Valid is Invalid if any check is invalid, else Unknown if any check
	// is unknown (or the history is malformed), else Valid.
	Valid  Validity `json:"valid"`
	Checks Checks   `json:"checks"`
	// Anomalies lists what the checks found, at most 20 per check (each
	// check's AnomalyCount counts them all). A malformed history gives one
	// anomaly of check "history".
	Anomalies []Anomaly `json:"anomalies"`
}

// Checks holds the verdict of each check.
type Checks struct {
	ThinAir      ReadCheck   `json:"thin-air"`
	Linearizable ReadCheck   `json:"linearizable"`
	Session      ReadCheck   `json:"session"`
	Convergence  Convergence `json:"convergence"`
	Stats        Stats       `json:"stats"`
}

// Verdict is what every check reports.
type Verdict struct {
	Valid        Validity `json:"valid"`
	Explanation  string   `json:"explanation"`   // the verdict in one sentence
	AnomalyCount int      `json:"anomaly_count"` // anomalies found, listed or not
}

// ReadCheck is the verdict of a check that judges every read: thin-air,
// linearizable and session.
type ReadCheck struct {
	Verdict
	Reads int `json:"reads"` // ok reads judged, counting each ok set's current
}

// Anomaly is one thing a check found wrong.
type Anomaly struct {
	Check    string  `json:"check"`    // the check that found it
	Message  string  `json:"message"`  // what happened, naming the ops
	Ops      []OpRef `json:"ops"`      // the ops involved
	Expected string  `json:"expected"` // what a correct system would have done
}

// OpRef names an op of the history in an anomaly.
type OpRef struct {
	Index   int64             `json:"index"`
	Process histories.Process `json:"process"`
	Node    string            `json:"node,omitempty"`
	Time    int64             `json:"time"`
	F       string            `json:"f"`
	Type    histories.Type    `json:"type"`
	Value   json.RawMessage   `json:"value,omitempty"`
	Current *int64            `json:"current,omitempty"`
}

// NamedVerdict is one check's verdict under its name in results.json.
type NamedVerdict struct {
	Name string
	Verdict
}

// Verdicts returns every check's verdict in the order the checks run and
// are reported (README "Checks"): the one list of the checks, which every
// caller that shows or counts them iterates.
func (r *Result) Verdicts() []NamedVerdict {
	ptrs := r.Checks.verdicts()
	out := make([]NamedVerdict, len(ptrs))
	for i, p := range ptrs {
		out[i] = NamedVerdict{Name: p.name, Verdict: *p.v}
	}
	return out
}

// namedVerdict points at one check's verdict in a Checks.
type namedVerdict struct {
	name string
	v    *Verdict
}

// verdicts lists the checks, in order, with their verdicts to fill in.
func (c *Checks) verdicts() []namedVerdict {
	return []namedVerdict{
		{checkThinAir, &c.ThinAir.Verdict},
		{checkLinearizable, &c.Linearizable.Verdict},
		{checkSession, &c.Session.Verdict},
		{checkConvergence, &c.Convergence.Verdict},
		{checkStats, &c.Stats.Verdict},
	}
}

// Check runs every check over ops. It never fails: a history that cannot be
// checked (see Validate) gives an Unknown result whose anomaly says why.
func Check(ops []histories.Op) Result {
	h, err := parse(ops)
	if err != nil {
		return malformed(ops, err)
	}
	var r Result
	var found [5][]Anomaly
	r.Checks.ThinAir, found[0] = thinAir(h)
	r.Checks.Linearizable, found[1] = linearizable(h)
	r.Checks.Session, found[2] = sessions(h)
	r.Checks.Convergence, found[3] = convergence(h)
	r.Checks.Stats, found[4] = statistics(h)
	var vs []Validity
	for _, v := range r.Verdicts() {
		vs = append(vs, v.Valid)
	}
	r.Valid = combine(vs...)
	r.Anomalies = []Anomaly{}
	for _, list := range found {
		r.Anomalies = append(r.Anomalies, list...)
	}
	return r
}

// malformed is the result on a history that fails validation.
func malformed(ops []histories.Op, err error) Result {
	a := Anomaly{
		Check:    checkHistory,
		Message:  "The history cannot be checked: " + err.Error() + ".",
		Ops:      []OpRef{},
		Expected: "a well-formed history (README, \"Histories\")",
	}
	if he, ok := err.(*historyError); ok && he.pos >= 0 && he.pos < len(ops) {
		h := &history{ops: ops}
		a.Ops = append(a.Ops, h.ref(he.pos))
	}
	v := Verdict{Valid: Unknown, Explanation: "not checked: the history is malformed"}
	r := Result{Valid: Unknown, Anomalies: []Anomaly{a}}
	r.Checks.Convergence = newConvergence()
	r.Checks.Stats = newStats()
	for _, c := range r.Checks.verdicts() {
		*c.v = v
	}
	return r
}

// noReads explains a read check's verdict on a history without ok reads.
const noReads = "no ok read to judge"

// collector gathers one check's anomalies, keeping the first maxAnomalies.
type collector struct {
	check string
	list  []Anomaly
	count int
}

// add counts an anomaly, and builds and keeps it while under the cap; build
// is not called for the rest, so huge broken histories stay cheap to check.
func (c *collector) add(build func() Anomaly) {
	c.count++
	if len(c.list) < maxAnomalies {
		a := build()
		a.Check = c.check
		if a.Message != "" && 'a' <= a.Message[0] && a.Message[0] <= 'z' {
			a.Message = string(a.Message[0]-'a'+'A') + a.Message[1:]
		}
		if a.Ops == nil {
			a.Ops = []OpRef{}
		}
		c.list = append(c.list, a)
	}
}

// verdict is Invalid with explanation bad when anomalies were found, else
// Valid with explanation good.
func (c *collector) verdict(good, bad string) Verdict {
	if c.count > 0 {
		return Verdict{Valid: Invalid, Explanation: bad, AnomalyCount: c.count}
	}
	return Verdict{Valid: Valid, Explanation: good}
}

// count renders "1 read", "2 reads".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WriteSummary writes a short human-readable report: the overall verdict,
// each check's verdict and explanation, and the first few anomalies of each.
func (r Result) WriteSummary(w io.Writer) error {
	const perCheck = 3
	var b strings.Builder
	fmt.Fprintf(&b, "checks: %s\n", r.Valid)
	byCheck := make(map[string][]Anomaly)
	for _, a := range r.Anomalies {
		byCheck[a.Check] = append(byCheck[a.Check], a)
	}
	line := func(name string, v Verdict) {
		fmt.Fprintf(&b, "  %-13s %-8s %s\n", name, v.Valid, v.Explanation)
		list := byCheck[name]
		for i, a := range list {
			if i == perCheck {
				break
			}
			fmt.Fprintf(&b, "      - %s\n", a.Message)
			if a.Expected != "" {
				fmt.Fprintf(&b, "        expected: %s\n", a.Expected)
			}
		}
		total := max(v.AnomalyCount, len(list))
		if total > perCheck {
			fmt.Fprintf(&b, "      ... and %d more\n", total-perCheck)
		}
	}
	if list := byCheck[checkHistory]; len(list) > 0 {
		for _, a := range list {
			fmt.Fprintf(&b, "  %-13s %-8s %s\n", checkHistory, Unknown, a.Message)
		}
		fmt.Fprintf(&b, "  (no check ran)\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, c := range r.Verdicts() {
		line(c.Name, c.Verdict)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
