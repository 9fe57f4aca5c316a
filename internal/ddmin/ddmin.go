// Package ddmin implements delta debugging's minimizing algorithm (Zeller
// and Hildebrandt, "Simplifying and Isolating Failure-Inducing Input",
// 2002): given a list on which a test fails, it finds a sublist on which the
// test still fails and from which no single element can be removed without
// the test passing (1-minimal).
package ddmin

import (
	"context"
	"sync"
)

// Test runs a candidate and reports whether it still fails. An error stops
// the search. With parallel above 1, Minimize calls it from several
// goroutines at once.
type Test[T any] func(ctx context.Context, candidate []T) (fails bool, err error)

// Minimize returns a 1-minimal sublist of items, in their order, on which
// test fails; test must fail on items itself (Minimize does not check). It
// first tries the empty list, then ddmin proper: split the list into n
// parts, keep a part or a part's complement that fails, and refine the
// split when none does. Candidates already tried are not tried again.
//
// Up to parallel candidates of one split are tested at once; the first
// failing one in the split's order is kept, so the result does not depend
// on parallel (for a deterministic test).
//
// If test returns an error (the context's, when a budget runs out),
// Minimize returns the smallest failing list found so far with that error.
func Minimize[T any](ctx context.Context, items []T, test Test[T], parallel int) ([]T, error) {
	m := minimizer[T]{test: test, seen: make(map[string]bool), parallel: max(parallel, 1)}
	return m.run(ctx, items)
}

type minimizer[T any] struct {
	test     Test[T]
	parallel int
	mu       sync.Mutex
	seen     map[string]bool // candidates tried, by the indices they keep
}

func (m *minimizer[T]) run(ctx context.Context, items []T) ([]T, error) {
	idx := make([]int, len(items)) // the current failing list, as indices
	for i := range idx {
		idx[i] = i
	}
	pick := func(keep []int) []T {
		out := make([]T, len(keep))
		for i, k := range keep {
			out[i] = items[k]
		}
		return out
	}
	try := func(keep []int) (bool, error) {
		key := keyOf(keep)
		m.mu.Lock()
		fails, ok := m.seen[key]
		m.mu.Unlock()
		if ok {
			return fails, nil
		}
		fails, err := m.test(ctx, pick(keep))
		if err != nil {
			return false, err
		}
		m.mu.Lock()
		m.seen[key] = fails
		m.mu.Unlock()
		return fails, nil
	}
	// first tests the candidates, parallel at a time, and returns the
	// index of the first that fails in their order, or -1.
	first := func(cands [][]int) (int, error) {
		for lo := 0; lo < len(cands); lo += m.parallel {
			batch := cands[lo:min(lo+m.parallel, len(cands))]
			fails := make([]bool, len(batch))
			errs := make([]error, len(batch))
			var wg sync.WaitGroup
			for i, c := range batch {
				wg.Go(func() { fails[i], errs[i] = try(c) })
			}
			wg.Wait()
			for i := range batch {
				if errs[i] != nil {
					return -1, errs[i]
				}
				if fails[i] {
					return lo + i, nil
				}
			}
		}
		return -1, nil
	}
	if len(idx) == 0 {
		return pick(idx), nil
	}
	if fails, err := try(nil); err != nil || fails {
		if fails {
			return pick(nil), nil
		}
		return pick(idx), err
	}
	n := 2
	for len(idx) >= 2 {
		parts := split(idx, n)
		reduced := false
		i, err := first(parts) // reduce to a part
		if err != nil {
			return pick(idx), err
		}
		if i >= 0 {
			idx, n, reduced = parts[i], 2, true
		}
		if !reduced && n > 2 { // reduce to a complement (for n = 2 they are the parts)
			comps := make([][]int, len(parts))
			for i := range parts {
				comps[i] = complement(parts, i)
			}
			i, err := first(comps)
			if err != nil {
				return pick(idx), err
			}
			if i >= 0 {
				idx, n, reduced = comps[i], max(n-1, 2), true
			}
		}
		if reduced {
			continue
		}
		if n >= len(idx) {
			break
		}
		n = min(2*n, len(idx))
	}
	return pick(idx), nil
}

// split cuts idx into n parts of sizes differing by at most one.
func split(idx []int, n int) [][]int {
	parts := make([][]int, 0, n)
	for i := range n {
		lo, hi := i*len(idx)/n, (i+1)*len(idx)/n
		parts = append(parts, idx[lo:hi])
	}
	return parts
}

// complement returns every part but the i-th, in order.
func complement(parts [][]int, i int) []int {
	var out []int
	for j, p := range parts {
		if j != i {
			out = append(out, p...)
		}
	}
	return out
}

func keyOf(keep []int) string {
	b := make([]byte, 0, 4*len(keep))
	for _, k := range keep {
		b = append(b, byte(k), byte(k>>8), byte(k>>16), byte(k>>24))
	}
	return string(b)
}
