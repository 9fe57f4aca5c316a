package ddmin

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// oneMinimal checks that test fails on got and passes on got without any
// single element.
func oneMinimal(t *testing.T, got []int, fails func([]int) bool) {
	t.Helper()
	if !fails(got) {
		t.Fatalf("the result %v does not fail", got)
	}
	for i := range got {
		less := slices.Delete(slices.Clone(got), i, i+1)
		if fails(less) {
			t.Fatalf("the result %v is not 1-minimal: without %d it still fails", got, got[i])
		}
	}
}

func wrap(calls *int, fails func([]int) bool) Test[int] {
	return func(_ context.Context, c []int) (bool, error) {
		*calls++
		return fails(c), nil
	}
}

func list(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestMinimizeFindsTheCause(t *testing.T) {
	fails := func(c []int) bool { return slices.Contains(c, 3) && slices.Contains(c, 71) }
	calls := 0
	got, err := Minimize(t.Context(), list(100), wrap(&calls, fails), 1)
	if err != nil || !slices.Equal(got, []int{3, 71}) {
		t.Fatalf("Minimize = %v, %v; want [3 71]", got, err)
	}
	t.Logf("%d tests for 100 elements", calls)
	if calls > 60 {
		t.Errorf("%d tests: ddmin should need far fewer than 100 for two causes in 100", calls)
	}
}

// TestMinimizeIsOneMinimal: on many random predicates (each fails when the
// candidate holds every element of one of a few random sets, or when it
// has at least k elements of a random set), the result fails, is a
// sublist in order, and loses its failure without any one element.
func TestMinimizeIsOneMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 500 {
		n := 1 + rng.IntN(60)
		var fails func([]int) bool
		if run%2 == 0 {
			var causes [][]int
			for range 1 + rng.IntN(3) {
				var c []int
				for range 1 + rng.IntN(4) {
					c = append(c, rng.IntN(n))
				}
				causes = append(causes, c)
			}
			fails = func(c []int) bool {
				for _, cause := range causes {
					all := true
					for _, x := range cause {
						all = all && slices.Contains(c, x)
					}
					if all {
						return true
					}
				}
				return false
			}
		} else {
			set := map[int]bool{}
			for range 1 + rng.IntN(n) {
				set[rng.IntN(n)] = true
			}
			k := 1 + rng.IntN(len(set))
			fails = func(c []int) bool {
				hit := 0
				for _, x := range c {
					if set[x] {
						hit++
					}
				}
				return hit >= k
			}
		}
		items := list(n)
		if !fails(items) {
			continue
		}
		calls := 0
		got, err := Minimize(t.Context(), items, wrap(&calls, fails), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(got) {
			t.Fatalf("run %d: %v is not in the input's order", run, got)
		}
		oneMinimal(t, got, fails)
	}
}

func TestMinimizeEmptyFails(t *testing.T) {
	calls := 0
	got, err := Minimize(t.Context(), list(10), wrap(&calls, func([]int) bool { return true }), 1)
	if err != nil || len(got) != 0 || calls != 1 {
		t.Errorf("a test that always fails: %v, %v after %d tests; want [] after 1", got, err, calls)
	}
}

// TestMinimizeStopsOnError: an error (a budget run out) ends the search
// with the smallest failing list found so far.
func TestMinimizeStopsOnError(t *testing.T) {
	budget := errors.New("out of budget")
	calls := 0
	got, err := Minimize(t.Context(), list(64), func(_ context.Context, c []int) (bool, error) {
		calls++
		if calls > 4 {
			return false, budget
		}
		return slices.Contains(c, 5), nil
	}, 1)
	if !errors.Is(err, budget) {
		t.Fatalf("error %v, want the test's", err)
	}
	if !slices.Contains(got, 5) || len(got) >= 64 {
		t.Errorf("best so far %v: want a smaller list that still holds 5", got)
	}
}

func TestMinimizeNeverRepeatsACandidate(t *testing.T) {
	seen := map[string]bool{}
	_, err := Minimize(t.Context(), list(40), func(_ context.Context, c []int) (bool, error) {
		k := keyOf(c)
		if seen[k] {
			t.Fatalf("%v tried twice", c)
		}
		seen[k] = true
		return slices.Contains(c, 7) && slices.Contains(c, 8) && slices.Contains(c, 30), nil
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
}

// TestMinimizeInParallel: testing several candidates at once gives the same
// result as one at a time, and does run them side by side.
func TestMinimizeInParallel(t *testing.T) {
	fails := func(c []int) bool { return slices.Contains(c, 13) && slices.Contains(c, 40) && slices.Contains(c, 41) }
	serial, err := Minimize(t.Context(), list(64), func(_ context.Context, c []int) (bool, error) { return fails(c), nil }, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running, most := 0, 0
	par, err := Minimize(t.Context(), list(64), func(_ context.Context, c []int) (bool, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return fails(c), nil
	}, 4)
	if err != nil || !slices.Equal(par, serial) {
		t.Fatalf("parallel %v, %v; serial %v", par, err, serial)
	}
	if most < 2 || most > 4 {
		t.Errorf("at most %d candidates ran at once, want 2 to 4", most)
	}
}
