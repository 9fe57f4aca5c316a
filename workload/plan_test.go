package workload

import (
	"math"
	"reflect"
	"testing"

	"github.com/ec-counter/ec-counter/histories"
)

func TestPlanRequestsIsSeededAndUnique(t *testing.T) {
	const clients, n = 5, 1000
	seen := map[int64]int{}
	var gets, sets, nearMin, nearMax int
	for c := 0; c < clients; c++ {
		a := PlanClient(42, c, clients, n, ValuesBoundaries)
		if b := PlanClient(42, c, clients, n, ValuesBoundaries); !reflect.DeepEqual(a, b) {
			t.Fatalf("client %d: same seed gave different requests", c)
		}
		if b := PlanClient(43, c, clients, n, ValuesBoundaries); reflect.DeepEqual(a, b) {
			t.Fatalf("client %d: different seeds gave the same requests", c)
		}
		for _, r := range a {
			if r.F == histories.FGet {
				gets++
				continue
			}
			sets++
			if prev, dup := seen[r.Value]; dup {
				t.Fatalf("value %d set by clients %d and %d", r.Value, prev, c)
			}
			seen[r.Value] = c
			switch {
			case r.Value < math.MinInt64/2:
				nearMin++
			case r.Value > math.MaxInt64/2:
				nearMax++
			case r.Value <= 0:
				t.Fatalf("set of %d: regular values must be positive", r.Value)
			case r.Value > 1<<53+1<<40:
				t.Fatalf("set of %d: regular values stay near or below 2^53", r.Value)
			}
		}
	}
	if gets < n*clients*4/10 || sets < n*clients*4/10 {
		t.Errorf("gets %d, sets %d: want even odds", gets, sets)
	}
	if nearMin == 0 || nearMax == 0 {
		t.Errorf("near-limit values: %d near min, %d near max; want some of each", nearMin, nearMax)
	}
	if nearMax > sets/20 {
		t.Errorf("%d of %d sets near max: too many, sets would almost all be rejected", nearMax, sets)
	}
}

// TestBoundaryValuesCrossEveryWidth: over 20 seeds, a default run's sets
// include values within 16 of 2^31, 2^32 and 2^53 (2^31-1, 2^31 and
// 2^53+1 among them), rising through each, on every client; with --values
// small, none.
func TestBoundaryValuesCrossEveryWidth(t *testing.T) {
	d := struct{ Clients, Requests int }{5, 100} // the default run's
	for seed := uint64(1); seed <= 20; seed++ {
		near := map[int64]int{}
		exact := map[int64]bool{}
		for c := 0; c < d.Clients; c++ {
			reached := map[int64]bool{}
			for _, r := range PlanClient(seed, c, d.Clients, d.Requests, ValuesBoundaries) {
				if r.F != histories.FSet {
					continue
				}
				exact[r.Value] = true
				for _, b := range boundaries {
					if r.Value >= b-boundaryReach && r.Value <= b+boundaryReach {
						near[b]++
						reached[b] = true
					}
				}
			}
			for _, b := range boundaries {
				if !reached[b] {
					t.Errorf("seed %d, client %d: no set within %d of %d", seed, c, boundaryReach, b)
				}
			}
		}
		for _, v := range []int64{1<<31 - 1, 1 << 31, 1<<31 + 1, 1<<32 - 1, 1<<32 + 1, 1<<53 - 1, 1<<53 + 1, 1<<53 + 3} {
			if !exact[v] {
				t.Errorf("seed %d: no client sets %d", seed, v)
			}
		}
		for _, c := range []int{0, 3} {
			for _, r := range PlanClient(seed, c, d.Clients, d.Requests, ValuesSmall) {
				if r.F == histories.FSet && r.Value > 1<<31-boundaryReach && r.Value < math.MaxInt64/2 {
					t.Fatalf("--values small, seed %d: set of %d", seed, r.Value)
				}
			}
		}
	}
}

// TestNearMaxShareOfRuns measures how many default runs get a set near
// MaxInt64 (the README says about a third).
func TestNearMaxShareOfRuns(t *testing.T) {
	d := struct{ Clients, Requests int }{5, 100} // the default run's
	with := 0
	for seed := uint64(1); seed <= 300; seed++ {
		for _, r := range PlanClient(seed, 0, d.Clients, d.Requests, ValuesBoundaries) {
			if r.F == histories.FSet && r.Value > math.MaxInt64/2 {
				with++
				break
			}
		}
	}
	t.Logf("%d of 300 default runs set a value near MaxInt64", with)
	if with < 60 || with > 150 {
		t.Errorf("%d of 300 runs near MaxInt64; want about a third", with)
	}
}

// TestPlanningNeverLoops plans far more requests than the value pools of
// the old planner held: it must finish, with unique values.
func TestPlanningNeverLoops(t *testing.T) {
	for _, mode := range []string{ValuesBoundaries, ValuesSmall} {
		seen := map[int64]bool{}
		for _, r := range PlanClient(1, 0, 1, 150000, mode) {
			if r.F != histories.FSet {
				continue
			}
			if seen[r.Value] {
				t.Fatalf("%s: value %d set twice", mode, r.Value)
			}
			seen[r.Value] = true
		}
	}
}

// TestPlanRequestsUniqueForManyClients: with more clients than values
// around a boundary (33), every client still sets values of its own.
func TestPlanRequestsUniqueForManyClients(t *testing.T) {
	for _, clients := range []int{33, 34, 100, 250} {
		for _, n := range []int{30, 100} {
			seen := map[int64]int{}
			for c := 0; c < clients; c++ {
				for _, r := range PlanClient(1, c, clients, n, ValuesBoundaries) {
					if r.F != histories.FSet {
						continue
					}
					if prev, dup := seen[r.Value]; dup {
						t.Fatalf("%d clients × %d requests: value %d set by clients %d and %d", clients, n, r.Value, prev, c)
					}
					seen[r.Value] = c
				}
			}
		}
	}
}
