package checker

import (
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"

	"github.com/ec-counter/ec-counter/histories"
)

// Stats summarizes what a run did. It is unknown when the history holds no
// ok get or no ok set (a test that did nothing proves nothing), and when a
// nemesis op says its fault was not installed (histories.NotInstalled): a
// fault asked for and not injected. It is never invalid: it finds no
// anomaly, only too little evidence.
type Stats struct {
	Verdict
	Ops       int `json:"ops"`        // every op in the history, invokes and completions
	ClientOps int `json:"client_ops"` // client ops, each an invoke and its completion
	// Pending counts client ops never completed (a run cut short); they
	// count as info.
	Pending int `json:"pending"`
	// Availability is the fraction of client ops that were ok.
	Availability float64            `json:"availability"`
	ByF          map[string]Counts  `json:"by_f"`
	ByNode       map[string]Counts  `json:"by_node"`
	Latency      map[string]Latency `json:"latency"` // of ok ops, by f
	Nemesis      map[string]int     `json:"nemesis"` // nemesis ops by f
}

// Counts tallies how client ops ended.
type Counts struct {
	OK           int     `json:"ok"`
	Fail         int     `json:"fail"`
	Info         int     `json:"info"` // including ops never completed
	Availability float64 `json:"availability"`
}

func (c *Counts) add(s status) {
	switch s {
	case statusOK:
		c.OK++
	case statusFail:
		c.Fail++
	default:
		c.Info++
	}
}

func (c *Counts) finish() {
	if n := c.OK + c.Fail + c.Info; n > 0 {
		c.Availability = float64(c.OK) / float64(n)
	}
}

// Latency holds quantiles of the time from invoke to completion, in
// nanoseconds. Max is exact; the quantiles are within 0.8% above the
// exact nearest-rank ones (the checker keeps a histogram, not every
// latency).
type Latency struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50_ns"`
	P90   int64 `json:"p90_ns"`
	P99   int64 `json:"p99_ns"`
	Max   int64 `json:"max_ns"`
}

func newStats() Stats {
	return Stats{
		ByF:     make(map[string]Counts),
		ByNode:  make(map[string]Counts),
		Latency: make(map[string]Latency),
		Nemesis: make(map[string]int),
	}
}

// statsCheck counts how client ops ended, by f and by server, measures
// latencies, and counts nemesis ops.
type statsCheck struct {
	byF     [3]Counts
	lat     [3]latencies
	byNode  []Counts
	nemesis map[string]int
	// notInstalled counts the nemesis ops whose fault the network failed
	// to inject; notInstalledOps lists the first few.
	notInstalled    int
	notInstalledOps []int64
}

// maxNotInstalledShown is how many uninstalled nemesis ops Stats names.
const maxNotInstalledShown = 5

func (s *statsCheck) nemesisOp(op *histories.Op) {
	s.nemesis[op.F]++
	if isNotInstalled(op) {
		s.notInstalled++
		if len(s.notInstalledOps) < maxNotInstalledShown {
			s.notInstalledOps = append(s.notInstalledOps, op.Index)
		}
	}
}

func (s *statsCheck) completed(c *call) {
	s.byF[c.kind].add(c.status)
	s.byNode[c.node].add(c.status)
	if c.status == statusOK {
		s.lat[c.kind].add(c.end - c.start)
	}
}

func (s *statsCheck) result(k *Checker) (Stats, []Anomaly) {
	col := collector{check: checkStats}
	st := newStats()
	st.Ops = int(k.ops)
	pending := len(k.open)
	st.Pending = pending
	byF := s.byF
	byNode := slices.Clone(s.byNode)
	// Pending ops count as info, on their f and their server.
	for _, c := range k.open {
		byF[c.kind].add(statusPending)
		byNode[c.node].add(statusPending)
	}
	var all Counts
	for _, c := range byF {
		all.OK += c.OK
		all.Fail += c.Fail
		all.Info += c.Info
	}
	st.ClientOps = all.OK + all.Fail + all.Info
	maps.Copy(st.Nemesis, s.nemesis)
	fs := [...]string{kindGet: histories.FGet, kindSet: histories.FSet, kindFinalGet: histories.FFinalGet}
	all.finish()
	st.Availability = all.Availability
	for k, f := range fs {
		byF[k].finish()
		if byF[k] != (Counts{}) {
			st.ByF[f] = byF[k]
		}
		if s.lat[k].count > 0 {
			st.Latency[f] = s.lat[k].quantiles()
		}
	}
	for n, name := range k.nodes {
		byNode[n].finish()
		st.ByNode[name] = byNode[n]
	}
	var nothing []string // what never succeeded
	for _, k := range []kind{kindGet, kindSet} {
		if byF[k].OK == 0 {
			tries := byF[k].OK + byF[k].Fail + byF[k].Info
			nothing = append(nothing, fmt.Sprintf("no %s succeeded (%d attempted)", fs[k], tries))
		}
	}
	var parts []string
	for _, k := range []kind{kindGet, kindSet, kindFinalGet} {
		c := byF[k]
		parts = append(parts, fmt.Sprintf("%s %d ok/%d fail/%d info", fs[k], c.OK, c.Fail, c.Info))
	}
	summary := fmt.Sprintf("%d client ops, %.1f%% ok (%s)", st.ClientOps, 100*all.Availability, strings.Join(parts, ", "))
	st.Verdict = col.verdict(summary, summary)
	if len(nothing) > 0 {
		st.Valid = Unknown
		st.Explanation = fmt.Sprintf("%s; but %s: a test that did nothing proves nothing", summary, strings.Join(nothing, " and "))
	}
	if n := s.notInstalled; n > 0 && st.Valid == Valid {
		st.Valid = Unknown
		st.Explanation = fmt.Sprintf("%s; but %s of the nemesis failed to install (op %s): the run did not test every fault it asked for",
			summary, count(n, "action"), strings.Trim(fmt.Sprint(s.notInstalledOps), "[]"))
	}
	return st, col.list
}

// latencies is a histogram of durations in nanoseconds, in buckets no wider
// than 1/128 of their lower bound, each keeping its count and the largest
// duration it holds: memory is bounded whatever the number of ops, the
// maximum is exact, and every quantile is the largest duration of the bucket
// it falls in, exact when the bucket holds one distinct value and otherwise
// at most 0.8% above the true one.
type latencies struct {
	count   int
	buckets []latencyBucket
}

type latencyBucket struct {
	n   int
	max int64
}

// subBuckets is how many buckets each power of two is split into.
const subBuckets = 128

// latencyBucketOf returns the bucket of a duration: below 2·subBuckets each
// value has its own; above, each power of two [2^e, 2^(e+1)) is split into
// subBuckets equal buckets.
func latencyBucketOf(d int64) int {
	if d < 2*subBuckets {
		return int(max(d, 0))
	}
	shift := bits.Len64(uint64(d)) - 8 // so that d>>shift is in [128, 256)
	return 2*subBuckets + (shift-1)*subBuckets + int(d>>shift) - subBuckets
}

func (l *latencies) add(d int64) {
	b := latencyBucketOf(d)
	if b >= len(l.buckets) {
		l.buckets = append(l.buckets, make([]latencyBucket, b+1-len(l.buckets))...)
	}
	l.count++
	l.buckets[b].n++
	l.buckets[b].max = max(l.buckets[b].max, d)
}

// quantiles returns the nearest-rank quantiles of the durations added.
func (l *latencies) quantiles() Latency {
	at := func(perMille int) int64 { // the value at or above this fraction of them
		rank := max((perMille*l.count+999)/1000, 1)
		seen := 0
		for _, b := range l.buckets {
			seen += b.n
			if seen >= rank {
				return b.max
			}
		}
		return 0
	}
	return Latency{Count: l.count, P50: at(500), P90: at(900), P99: at(990), Max: at(1000)}
}
