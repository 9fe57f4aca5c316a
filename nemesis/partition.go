package nemesis

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Grudge describes a network partition as Jepsen does: for each node, the
// nodes whose traffic it drops. A node that drops nothing is absent. The
// nemesis applies an entry a: [b] as an "in" drop on a's link to b, so a
// symmetric cut lists each pair both ways and a one-way cut lists it once.
type Grudge map[string][]string

// The partition shapes. A "-oneway" suffix (or the word oneway in a
// schedule) selects the one-way variant of every shape but the ring.
const (
	shapeIsolate      = "isolate"
	shapeHalves       = "halves"
	shapeRandomHalves = "random-halves"
	shapeBridge       = "bridge"
	shapeRing         = "majorities-ring"
	shapeGroups       = "groups"
	onewaySuffix      = "-oneway"
)

// shapes lists the shapes NewPartition makes, in the order Describe and
// Generate use.
func shapes() []string {
	return []string{shapeIsolate, shapeHalves, shapeRandomHalves, shapeBridge, shapeRing}
}

// minNodes returns how many nodes a shape needs.
func minNodes(shape string) int {
	switch shape {
	case shapeBridge, shapeRing:
		return 3
	}
	return 2
}

// Partition is a concrete network partition, kept in the terms it was made
// from so that a schedule can print it: a shape and the groups of nodes it
// cuts apart. Its Grudge method gives what each node drops.
type Partition struct {
	// Shape is how Groups cut the network:
	//
	//   - "isolate": Groups is {{x}, others}; x and the others drop each
	//     other's traffic.
	//   - "halves", "random-halves": Groups is {⌊n/2⌋ nodes, the rest};
	//     the two drop each other's traffic.
	//   - "bridge": Groups is {A, {b}, B}; A and B drop each other's
	//     traffic, the bridge node b keeps talking to both.
	//   - "majorities-ring": Groups is {ring}, every node in a ring order;
	//     each node sees only the majority window of the ring around it, so
	//     every node sees a majority and no two see the same one.
	//   - "groups": every group drops the traffic of every other group;
	//     nodes in no group are not cut at all.
	Shape  string
	Groups [][]string
	// OneWay cuts one direction only: a group drops the traffic of the
	// groups after it, which still hear it (for a bridge, A drops B's
	// traffic). The majorities ring has no one-way variant.
	OneWay bool
}

// NewPartition makes a partition of the given shape over nodes, taking its
// random choices (which node to isolate, how to split, the ring order) from
// rng. Shapes are "isolate", "halves", "random-halves", "bridge" and
// "majorities-ring", each but the last also with a "-oneway" suffix. The
// groups list nodes in the order of nodes, except for the ring.
func NewPartition(shape string, nodes []string, rng *rand.Rand) (Partition, error) {
	base, oneway := strings.CutSuffix(shape, onewaySuffix)
	if !slices.Contains(shapes(), base) {
		return Partition{}, fmt.Errorf("unknown partition shape %q (want %s, optionally with %q)",
			shape, strings.Join(shapes(), ", "), onewaySuffix)
	}
	if oneway && base == shapeRing {
		return Partition{}, errors.New("majorities-ring has no one-way variant")
	}
	n := len(nodes)
	if n < minNodes(base) {
		return Partition{}, fmt.Errorf("partition %s needs at least %d nodes, have %d", shape, minNodes(base), n)
	}
	p := Partition{Shape: base, OneWay: oneway}
	switch base {
	case shapeIsolate:
		x := nodes[rng.IntN(n)]
		p.Groups = [][]string{{x}, without(nodes, x)}
	case shapeHalves:
		p.Groups = [][]string{slices.Clone(nodes[:n/2]), slices.Clone(nodes[n/2:])}
	case shapeRandomHalves:
		perm := rng.Perm(n)
		p.Groups = [][]string{inOrder(nodes, perm[:n/2]), inOrder(nodes, perm[n/2:])}
	case shapeBridge:
		perm := rng.Perm(n)
		k := (n - 1) / 2
		p.Groups = [][]string{inOrder(nodes, perm[:k]), {nodes[perm[k]]}, inOrder(nodes, perm[k+1:])}
	case shapeRing:
		ring := slices.Clone(nodes)
		rng.Shuffle(n, func(i, j int) { ring[i], ring[j] = ring[j], ring[i] })
		p.Groups = [][]string{ring}
	}
	return p, nil
}

// Grudge returns what each node drops under p. Each node's list is sorted
// (n2 before n10).
func (p Partition) Grudge() Grudge {
	g := Grudge{}
	drop := func(a, b string) {
		if !slices.Contains(g[a], b) {
			g[a] = append(g[a], b)
		}
	}
	cut := func(xs, ys []string) { // xs drop ys, and ys drop xs unless one-way
		for _, x := range xs {
			for _, y := range ys {
				drop(x, y)
				if !p.OneWay {
					drop(y, x)
				}
			}
		}
	}
	switch {
	case p.Shape == shapeRing && len(p.Groups) == 1:
		ring := p.Groups[0]
		n := len(ring)
		m := n/2 + 1 // a majority, the node itself included
		for j, a := range ring {
			// a sees ring[j-m/2 .. j-m/2+m-1] and drops the rest.
			for k := m; k < n; k++ {
				drop(a, ring[((j-m/2+k)%n+n)%n])
			}
		}
	case p.Shape == shapeBridge && len(p.Groups) == 3:
		cut(p.Groups[0], p.Groups[2])
	default:
		for i := range p.Groups {
			for j := i + 1; j < len(p.Groups); j++ {
				cut(p.Groups[i], p.Groups[j])
			}
		}
	}
	for _, l := range g {
		slices.SortFunc(l, compareNodes)
	}
	return g
}

// String renders p as the arguments of a start-partition step, e.g.
// "isolate n1", "halves n1,n2|n3,n4,n5 oneway", "majorities-ring
// n3,n1,n5,n2,n4" or "n1,n2|n3".
func (p Partition) String() string {
	var s string
	switch p.Shape {
	case shapeIsolate:
		if len(p.Groups) > 0 && len(p.Groups[0]) == 1 {
			s = shapeIsolate + " " + p.Groups[0][0]
		} else {
			s = shapeIsolate + " " + formatGroups(p.Groups)
		}
	case shapeGroups:
		s = formatGroups(p.Groups)
	default:
		s = p.Shape + " " + formatGroups(p.Groups)
	}
	if p.OneWay {
		s += " oneway"
	}
	return s
}

// check verifies that p is well formed over the cluster whose nodes are
// indexed by idx.
func (p Partition) check(idx map[string]int) error {
	seen := map[string]bool{}
	for _, g := range p.Groups {
		if len(g) == 0 {
			return errors.New("partition has an empty group")
		}
		for _, x := range g {
			if _, ok := idx[x]; !ok {
				return fmt.Errorf("unknown node %q (nodes: %s)", x, strings.Join(clusterOrder(idx), ","))
			}
			if seen[x] {
				return fmt.Errorf("node %s appears twice in the partition", x)
			}
			seen[x] = true
		}
	}
	all := len(seen) == len(idx)
	switch p.Shape {
	case shapeIsolate:
		if len(p.Groups) != 2 || len(p.Groups[0]) != 1 || !all {
			return errors.New("isolate takes one node")
		}
	case shapeHalves, shapeRandomHalves:
		if len(p.Groups) != 2 || !all {
			return fmt.Errorf("%s takes two groups covering every node, like n1,n2|n3,n4,n5", p.Shape)
		}
	case shapeBridge:
		if len(p.Groups) != 3 || len(p.Groups[1]) != 1 || !all {
			return errors.New("bridge takes three groups covering every node, the middle one a single node, like n1,n2|n3|n4,n5")
		}
	case shapeRing:
		if p.OneWay {
			return errors.New("majorities-ring has no one-way variant")
		}
		if len(p.Groups) != 1 || !all || len(idx) < 3 {
			return errors.New("majorities-ring takes every node once, in ring order, and at least 3 nodes")
		}
	case shapeGroups:
		if len(p.Groups) < 2 {
			return errors.New("a partition needs at least two groups, like n1,n2|n3")
		}
	default:
		return fmt.Errorf("unknown partition shape %q", p.Shape)
	}
	return nil
}

// formatGroups renders groups as "n1,n2|n3".
func formatGroups(groups [][]string) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	return strings.Join(parts, "|")
}

// without returns nodes without x, in order.
func without(nodes []string, x string) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

// inOrder returns the nodes at the given indexes, in the order of nodes.
func inOrder(nodes []string, indexes []int) []string {
	is := slices.Clone(indexes)
	slices.Sort(is)
	out := make([]string, len(is))
	for i, j := range is {
		out[i] = nodes[j]
	}
	return out
}

// compareNodes orders node names naturally: a common prefix followed by
// numbers compares by number, so n2 sorts before n10.
func compareNodes(a, b string) int {
	pa, na, oka := splitNumber(a)
	pb, nb, okb := splitNumber(b)
	if oka && okb && pa == pb && na != nb {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(a, b)
}

// splitNumber splits "n12" into "n" and 12.
func splitNumber(s string) (prefix string, n int, ok bool) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' && len(s)-i < 9 {
		i--
	}
	if i == len(s) {
		return s, 0, false
	}
	for _, c := range s[i:] {
		n = n*10 + int(c-'0')
	}
	return s[:i], n, true
}
