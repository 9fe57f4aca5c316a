package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func testNodes(n int) []string {
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("n%d", i+1)
	}
	return nodes
}

func testRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

// drops reports whether a drops b's traffic under g.
func drops(g Grudge, a, b string) bool { return slices.Contains(g[a], b) }

// checkCut checks that g cuts exactly between the sides: every node of xs
// drops every node of ys and, unless oneway, the reverse; and nothing else.
func checkCut(t *testing.T, g Grudge, nodes, xs, ys []string, oneway bool) {
	t.Helper()
	in := func(s []string, x string) bool { return slices.Contains(s, x) }
	for _, a := range nodes {
		for _, b := range nodes {
			want := (in(xs, a) && in(ys, b)) || (!oneway && in(ys, a) && in(xs, b))
			if got := drops(g, a, b); got != want {
				t.Errorf("%s drops %s: got %v, want %v (grudge %v)", a, b, got, want, g)
			}
		}
	}
}

func TestIsolate(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		for _, oneway := range []bool{false, true} {
			nodes := testNodes(n)
			shape := "isolate"
			if oneway {
				shape += "-oneway"
			}
			p, err := NewPartition(shape, nodes, testRNG(uint64(n)))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Groups) != 2 || len(p.Groups[0]) != 1 || len(p.Groups[1]) != n-1 {
				t.Fatalf("n=%d: groups %v", n, p.Groups)
			}
			x := p.Groups[0][0]
			g := p.Grudge()
			checkCut(t, g, nodes, []string{x}, without(nodes, x), oneway)
			if !oneway && len(g) != n {
				t.Errorf("n=%d: every node should hold a grudge: %v", n, g)
			}
		}
	}
}

func TestHalves(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		nodes := testNodes(n)
		p, err := NewPartition("halves", nodes, testRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		minority, majority := nodes[:n/2], nodes[n/2:]
		if !slices.Equal(p.Groups[0], minority) || !slices.Equal(p.Groups[1], majority) {
			t.Fatalf("n=%d: groups %v, want %v|%v", n, p.Groups, minority, majority)
		}
		checkCut(t, p.Grudge(), nodes, minority, majority, false)
	}
}

func TestRandomHalves(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		nodes := testNodes(n)
		seen := map[string]bool{}
		for seed := range uint64(20) {
			p, err := NewPartition("random-halves", nodes, testRNG(seed))
			if err != nil {
				t.Fatal(err)
			}
			a, b := p.Groups[0], p.Groups[1]
			if len(a) != n/2 || len(b) != n-n/2 {
				t.Fatalf("n=%d: sizes %v", n, p.Groups)
			}
			checkCut(t, p.Grudge(), nodes, a, b, false)
			seen[strings.Join(a, ",")] = true
		}
		if len(seen) < 2 {
			t.Errorf("n=%d: random-halves always picks %v", n, seen)
		}
	}
}

func TestMajoritiesRing(t *testing.T) {
	for _, n := range []int{3, 4, 5, 6, 7} {
		nodes := testNodes(n)
		p, err := NewPartition("majorities-ring", nodes, testRNG(uint64(n)))
		if err != nil {
			t.Fatal(err)
		}
		g := p.Grudge()
		majority := n/2 + 1
		sees := map[string]bool{}
		for _, a := range nodes {
			var visible []string
			for _, b := range nodes {
				if !drops(g, a, b) {
					visible = append(visible, b)
				}
			}
			if drops(g, a, a) {
				t.Errorf("n=%d: %s drops itself", n, a)
			}
			if len(visible) != majority {
				t.Errorf("n=%d: %s sees %v, want a majority of %d", n, a, visible, majority)
			}
			key := strings.Join(visible, ",")
			if sees[key] {
				t.Errorf("n=%d: two nodes see the same majority %s (grudge %v)", n, key, g)
			}
			sees[key] = true
		}
	}
	// For odd n, each node sees its ring neighbours both ways: the cut is
	// symmetric.
	g := must(NewPartition("majorities-ring", testNodes(5), testRNG(9))).Grudge()
	for a, bs := range g {
		for _, b := range bs {
			if !drops(g, b, a) {
				t.Errorf("n=5: %s drops %s but not the reverse", a, b)
			}
		}
	}
}

func TestBridge(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		for _, oneway := range []bool{false, true} {
			nodes := testNodes(n)
			shape := "bridge"
			if oneway {
				shape += "-oneway"
			}
			p, err := NewPartition(shape, nodes, testRNG(uint64(n)))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Groups) != 3 || len(p.Groups[1]) != 1 {
				t.Fatalf("n=%d: groups %v", n, p.Groups)
			}
			a, x, b := p.Groups[0], p.Groups[1][0], p.Groups[2]
			if len(a) != (n-1)/2 || len(a)+1+len(b) != n {
				t.Fatalf("n=%d: sizes %v", n, p.Groups)
			}
			g := p.Grudge()
			checkCut(t, g, nodes, a, b, oneway)
			for _, y := range nodes {
				if drops(g, x, y) || drops(g, y, x) {
					t.Errorf("n=%d: the bridge %s is cut from %s", n, x, y)
				}
			}
		}
	}
}

func TestOneWayVariants(t *testing.T) {
	for _, shape := range []string{"isolate", "halves", "random-halves", "bridge"} {
		for _, n := range []int{3, 5, 7} {
			nodes := testNodes(n)
			two := must(NewPartition(shape, nodes, testRNG(7))).Grudge()
			one := must(NewPartition(shape+"-oneway", nodes, testRNG(7))).Grudge()
			for a, bs := range one {
				for _, b := range bs {
					if drops(one, b, a) {
						t.Errorf("%s n=%d: both %s and %s drop each other", shape, n, a, b)
					}
					if !drops(two, a, b) || !drops(two, b, a) {
						t.Errorf("%s n=%d: one-way cut %s→%s is not in the two-way cut", shape, n, a, b)
					}
				}
			}
			// Every pair cut two ways is cut one way.
			for a, bs := range two {
				for _, b := range bs {
					if !drops(one, a, b) && !drops(one, b, a) {
						t.Errorf("%s n=%d: %s-%s not cut at all one-way", shape, n, a, b)
					}
				}
			}
		}
	}
}

func TestPartitionErrors(t *testing.T) {
	for _, tc := range []struct {
		shape string
		n     int
		want  string
	}{
		{"triangle", 5, "unknown partition shape"},
		{"majorities-ring-oneway", 5, "no one-way variant"},
		{"bridge", 2, "at least 3 nodes"},
		{"isolate", 1, "at least 2 nodes"},
	} {
		_, err := NewPartition(tc.shape, testNodes(tc.n), testRNG(1))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPartition(%q, %d nodes) = %v, want error containing %q", tc.shape, tc.n, err, tc.want)
		}
	}
}

func TestGroupsGrudge(t *testing.T) {
	p := Partition{Shape: "groups", Groups: [][]string{{"n1"}, {"n2"}, {"n3", "n10"}}}
	g := p.Grudge()
	want := Grudge{
		"n1":  {"n2", "n3", "n10"},
		"n2":  {"n1", "n3", "n10"},
		"n3":  {"n1", "n2"},
		"n10": {"n1", "n2"},
	}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("grudge %v, want %v", g, want)
	}
	p.OneWay = true
	g = p.Grudge()
	want = Grudge{"n1": {"n2", "n3", "n10"}, "n2": {"n3", "n10"}}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("one-way grudge %v, want %v", g, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
