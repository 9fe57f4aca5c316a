package checker

import (
	"fmt"
	"maps"
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
// nanoseconds.
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

// statistics counts how client ops ended, by f and by server, measures
// latencies, and counts nemesis ops.
func statistics(h *history) (Stats, []Anomaly) {
	col := collector{check: checkStats}
	s := newStats()
	s.Ops, s.ClientOps, s.Pending = len(h.ops), len(h.calls), h.pending
	maps.Copy(s.Nemesis, h.nemesis)
	fs := [...]string{kindGet: histories.FGet, kindSet: histories.FSet, kindFinalGet: histories.FFinalGet}
	var byF [len(fs)]Counts
	var lat [len(fs)][]int64
	byNode := make([]Counts, len(h.nodes))
	var all Counts
	for c := range h.calls {
		cl := &h.calls[c]
		byF[cl.kind].add(cl.status)
		byNode[cl.node].add(cl.status)
		all.add(cl.status)
		if cl.status == statusOK {
			lat[cl.kind] = append(lat[cl.kind], cl.end-cl.start)
		}
	}
	all.finish()
	s.Availability = all.Availability
	for k, f := range fs {
		byF[k].finish()
		if byF[k] != (Counts{}) {
			s.ByF[f] = byF[k]
		}
		if len(lat[k]) > 0 {
			s.Latency[f] = quantiles(lat[k])
		}
	}
	for n, name := range h.nodes {
		byNode[n].finish()
		s.ByNode[name] = byNode[n]
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
	summary := fmt.Sprintf("%d client ops, %.1f%% ok (%s)", len(h.calls), 100*all.Availability, strings.Join(parts, ", "))
	s.Verdict = col.verdict(summary, summary)
	if len(nothing) > 0 {
		s.Valid = Unknown
		s.Explanation = fmt.Sprintf("%s; but %s: a test that did nothing proves nothing", summary, strings.Join(nothing, " and "))
	}
	if n := len(h.notInstalled); n > 0 && s.Valid == Valid {
		shown := h.notInstalled[:min(n, 5)]
		s.Valid = Unknown
		s.Explanation = fmt.Sprintf("%s; but %s of the nemesis failed to install (op %s): the run did not test every fault it asked for",
			summary, count(n, "action"), strings.Trim(fmt.Sprint(shown), "[]"))
	}
	return s, col.list
}

// quantiles sorts ds and returns its nearest-rank quantiles.
func quantiles(ds []int64) Latency {
	slices.Sort(ds)
	n := len(ds)
	at := func(perMille int) int64 { // the smallest value at or above this fraction of them
		return ds[max((perMille*n+999)/1000-1, 0)]
	}
	return Latency{Count: n, P50: at(500), P90: at(900), P99: at(990), Max: ds[n-1]}
}
