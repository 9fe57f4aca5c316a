package workload

import (
	"math"
	"math/rand/v2"

	"github.com/ec-counter/ec-counter/histories"
)

// Plan derives a run's workload from its seed alone (see planClient):
// clients × requests requests, interleaved round-robin in the order
// client 0's first, client 1's first, ..., client 0's second, and so on.
// A replay with the same seed sends exactly the same requests, whatever the
// timing.
func Plan(seed uint64, clients, requests int, values string) Workload {
	per := make([][]Request, clients)
	for c := range per {
		per[c] = PlanClient(seed, c, clients, requests, values)
	}
	w := make(Workload, 0, clients*requests)
	for i := range requests {
		for c := range per {
			w = append(w, per[c][i])
		}
	}
	return w
}

// The seeded workloads' set values (docs/workloads.md "The workload").
const (
	// ValuesBoundaries climbs from small values across the integer widths
	// where implementations break: 2^31, 2^32 and 2^53.
	ValuesBoundaries = "boundaries"
	// ValuesSmall keeps to small values, for readable histories.
	ValuesSmall = "small"
)

// boundaries are the integer widths the boundaries workload crosses: int32,
// uint32, and the largest integers a float64 holds exactly (JSON decoded
// through float64, as JavaScript does).
var boundaries = [...]int64{1 << 31, 1 << 32, 1 << 53}

// boundaryReach is how far below and above each boundary the values that
// must cross it lie: every client sets its share of [B-16, B+16].
const boundaryReach = 16

// PlanClient derives client's requests from the run's seed alone, so a
// replay sends exactly the same operations whatever the timing. Each request
// is a get or a set with even odds. Set values are unique within the run (a
// value's residue modulo clients is the client's id) and climb, so that,
// with clients running side by side, sets are often applied and often
// rejected.
//
// With ValuesBoundaries the requests fall into four equal phases: small
// values, then values around 2^31, 2^32 and 2^53. Each boundary phase starts
// with the client's share of the values within 16 of the boundary (all of
// them, or the ones nearest the boundary if the phase has fewer sets), in
// rising order, and goes on rising above it, so every server sees the
// crossing and then reads and sets beyond it. With ValuesSmall every value
// is small.
//
// Now and then a value sits near the limits of int64: near the minimum at
// any time, near the maximum only in client 0's last requests (in about a
// third of runs), since such a value ends all later raises and makes the
// final value trivially the largest.
func PlanClient(seed uint64, client, clients, n int, values string) []Request {
	rng := rand.New(rand.NewPCG(seed, uint64(client)+1))
	c, id := int64(clients), int64(client)
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i].Client = client
		reqs[i].F = histories.FGet
		if rng.IntN(2) == 1 {
			reqs[i].F = histories.FSet
		}
	}
	phases := 1
	if values != ValuesSmall {
		phases = 1 + len(boundaries)
	}
	phaseOf := func(i int) int { return i * phases / n }
	setsIn := make([]int, phases)
	for i, r := range reqs {
		if r.F == histories.FSet {
			setsIn[phaseOf(i)]++
		}
	}

	// Each phase climbs less than 2^30 in all, so no phase reaches the
	// next one's values, however many requests there are.
	gap := min(40, max((1<<30)/c/int64(n), 1))
	var (
		small       = newSmallValues(rng, c, id, min(20, gap/2))
		nearMin     int64 // near-minimum values handed out
		nearMax     int64 // near-maximum values handed out
		boundary    []int64
		phase, prev = -1, int64(0)
	)
	for i := range reqs {
		if reqs[i].F != histories.FSet {
			continue
		}
		if p := phaseOf(i); p != phase {
			phase = p
			if p > 0 {
				boundary = crossing(boundaries[p-1], c, id, setsIn[p])
			}
		}
		var v int64
		switch r := rng.IntN(100); {
		case r < 2:
			v = math.MinInt64 + nearMin*c + id
			nearMin++
		case r < 10 && client == 0 && i >= n*9/10:
			v = math.MaxInt64 - nearMax*c - (c - 1 - id)
			nearMax++
		case phase == 0:
			v = small.next(i)
		case len(boundary) > 0:
			v, boundary = boundary[0], boundary[1:]
			prev = v
		default:
			v = prev + (1+rng.Int64N(gap))*c // keeps the residue, rises
			prev = v
		}
		reqs[i].Value = v
	}
	return reqs
}

// crossing returns the client's share of the values within boundaryReach
// of b (those ≡ id modulo c), nearest to b first chosen when more than sets
// of them exist, in rising order.
func crossing(b, c, id int64, sets int) []int64 {
	lo := b - boundaryReach
	first := lo + ((id-lo)%c+c)%c
	var vs []int64
	for v := first; v <= b+boundaryReach; v += c {
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		// More clients than values around b: this client's residue class
		// has none there, so it starts just above, still its own.
		vs = append(vs, first)
	}
	for len(vs) > max(sets, 1) { // drop the one farther from b
		if b-vs[0] > vs[len(vs)-1]-b {
			vs = vs[1:]
		} else {
			vs = vs[:len(vs)-1]
		}
	}
	return vs
}

// smallValues draws the small values of one client: a rising trend with
// wide noise, each value unique and ≡ id modulo c.
type smallValues struct {
	rng   *rand.Rand
	c, id int64
	trend int64 // the multiplier rises by about this per request
	used  map[int64]bool
	top   int64 // the largest multiplier used
}

func newSmallValues(rng *rand.Rand, c, id, trend int64) *smallValues {
	return &smallValues{rng: rng, c: c, id: id, trend: trend, used: map[int64]bool{}}
}

// next returns the value for request i: drawn near trend·i, or, if that one
// is taken, the next above all taken, so drawing never loops.
func (s *smallValues) next(i int) int64 {
	m := 1 + int64(i)*s.trend + s.rng.Int64N(200)
	if s.used[m] {
		m = s.top + 1
	}
	s.used[m] = true
	s.top = max(s.top, m)
	return m*s.c + s.id
}
