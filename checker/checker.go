// Package checker decides whether an ec-counter history is valid (docs/histories-and-checks.md "Checks").
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
// Every check is a single pass over the history in its order: a Checker
// takes one op at a time (CheckHistory decodes and checks a file in one
// streaming pass), and Check runs one over a history in memory. The
// linearizability check is a sweep, linear in the length of the history.
// CheckServerPorcupine checks the same model with porcupine, and
// WriteLinearHTML renders a violation with porcupine's visualization, on a
// window of ops around it.
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
// are reported (docs/histories-and-checks.md "Checks"): the one list of the checks, which every
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
	var k Checker
	for i := range ops {
		if k.Add(ops[i]) != nil {
			break
		}
	}
	return k.Result()
}

// CheckHistory decodes the JSON Lines history read from r and checks it in
// one pass, in memory bounded by its processes, servers, pending ops and
// set values rather than its length (see Checker), and returns the checker,
// whose Result is the verdict. The error is the reader's: a history cut
// short by a crash (histories.ErrTruncated) is checked up to its last
// complete op, and after any other error the checker holds the ops before
// the bad line. Result().Checks.Stats.Ops counts the ops checked.
func CheckHistory(r io.Reader) (*Checker, error) {
	var k Checker
	rd := histories.NewReader(r)
	for {
		op, err := rd.Next()
		if err == io.EOF {
			return &k, nil
		}
		if err != nil {
			return &k, err
		}
		k.Add(op)
	}
}

// Checker checks a history one op at a time, in the order of the history,
// so that histories of any length are checked in one streaming pass. It
// keeps only what each check needs going forward: the pending ops, each
// server's and each session's largest observed value, the ops its anomalies
// name, and, for thin-air and lost writes, a small entry per set value
// (about 40 bytes each, the one part that grows with the history: 10
// million ops of which a quarter are sets take about 450 MB in all). The
// zero Checker is ready to use.
type Checker struct {
	ops      int64 // ops added so far: the next index
	lastTime int64
	err      *historyError
	nodeIDs  map[string]int
	nodes    []string
	open     map[histories.Process]*call // pending calls by process
	// values has an entry per set value invoked so far.
	values map[int64]valueEntry
	// strays counts ok reads of values no set had written yet.
	strays map[int64]int
	thin   thinAirCheck
	lin    linearCheck
	sess   sessionCheck
	conv   convergenceCheck
	stats  statsCheck
	// keep, when set, is given every call as it completes.
	keep func(*call)
}

// valueEntry is what the checker keeps of one set value.
type valueEntry struct {
	inv   int64 // the index of the set's invoke
	out   int64 // the set's current, when ok
	reads int   // ok gets and final-gets that returned this value
	okSet bool  // the set was ok
}

// Add checks the next op of the history. It returns an error when the
// history is malformed at op (see Validate); the checker then ignores every
// later op, and its Result is unknown with that reason.
func (k *Checker) Add(op histories.Op) error {
	if k.err != nil {
		return k.err
	}
	if k.nodeIDs == nil {
		k.init()
	}
	c, err := k.pair(&op)
	if err != nil {
		k.err = err.(*historyError)
		return err
	}
	if op.Time > k.lastTime {
		k.thin.settle(k)
	}
	k.ops++
	k.lastTime = op.Time
	if c == nil {
		k.stats.nemesisOp(&op)
		return nil
	}
	if c.status == statusPending {
		k.invoked(c)
		return nil
	}
	k.completed(c)
	return nil
}

func (k *Checker) init() {
	k.nodeIDs = make(map[string]int)
	k.open = make(map[histories.Process]*call)
	k.values = make(map[int64]valueEntry)
	k.strays = make(map[int64]int)
	k.sess.open = make(map[sessionKey]*session)
	k.stats.nemesis = make(map[string]int)
	k.thin.col.check = checkThinAir
	k.lin.col.check = checkLinearizable
	k.sess.col.check = checkSession
}

// invoked hands a new call to the checks that look at invokes.
func (k *Checker) invoked(c *call) {
	if c.kind == kindSet {
		k.values[c.arg] = valueEntry{inv: c.inv.Index}
		k.thin.setInvoked(c)
	}
	k.lin.invoked(c)
	k.conv.invoked(c)
}

// completed hands a completed call to every check.
func (k *Checker) completed(c *call) {
	k.stats.completed(c)
	if c.isRead() {
		if c.kind == kindSet {
			e := k.values[c.arg]
			e.okSet, e.out = true, c.out
			k.values[c.arg] = e
		} else if e, ok := k.values[c.out]; ok {
			e.reads++
			k.values[c.out] = e
		} else {
			k.strays[c.out]++
		}
		k.thin.read(k, c)
		k.lin.read(c)
		k.sess.read(c)
		k.conv.read(c)
	}
	if k.keep != nil {
		k.keep(c)
	}
}

// Result returns the verdict on the ops added so far. Ops still pending
// count as info (a run cut short).
func (k *Checker) Result() Result {
	if k.err != nil {
		return malformed(k.err)
	}
	if k.nodeIDs == nil {
		k.init()
	}
	k.thin.settle(k)
	var r Result
	var found [5][]Anomaly
	r.Checks.ThinAir, found[0] = k.thin.result()
	r.Checks.Linearizable, found[1] = k.lin.result(len(k.nodes))
	r.Checks.Session, found[2] = k.sess.result()
	r.Checks.Convergence, found[3] = k.conv.result(k)
	r.Checks.Stats, found[4] = k.stats.result(k)
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
func malformed(err *historyError) Result {
	a := Anomaly{
		Check:    checkHistory,
		Message:  "The history cannot be checked: " + err.Error() + ".",
		Ops:      []OpRef{},
		Expected: "a well-formed history (docs/histories-and-checks.md \"Histories\")",
	}
	if err.op != nil {
		a.Ops = append(a.Ops, *err.op)
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
	c.keep(build)
}

// keep builds and keeps an anomaly already counted, while under the cap.
func (c *collector) keep(build func() Anomaly) {
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
