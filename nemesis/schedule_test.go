package nemesis

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGenerateDeterministic(t *testing.T) {
	nodes := testNodes(5)
	kinds := []string{"partition", "link", "kill", "pause"}
	a, err := Generate(42, kinds, 5*time.Second, 5*time.Minute, nodes)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(42, kinds, 5*time.Second, 5*time.Minute, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) || a.String() != b.String() {
		t.Fatalf("same seed, different schedules:\n%s\n---\n%s", a, b)
	}
	c, err := Generate(43, kinds, 5*time.Second, 5*time.Minute, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() == c.String() {
		t.Errorf("seeds 42 and 43 give the same schedule")
	}
}

func TestGenerateAlternates(t *testing.T) {
	nodes := testNodes(5)
	interval, duration := 4*time.Second, time.Hour
	all := []string{"partition", "delay", "loss", "kill", "pause"}
	for seed := range uint64(10) {
		s, err := Generate(seed, all, interval, duration, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.check(nodes); err != nil {
			t.Fatalf("seed %d: invalid schedule: %v", seed, err)
		}
		if len(s) < 100 || len(s)%2 != 0 {
			t.Fatalf("seed %d: %d steps", seed, len(s))
		}
		lo, hi := interval*3/4-time.Millisecond, interval*5/4+time.Millisecond
		inSpan := func(d time.Duration) bool { return d >= lo && d <= hi }
		if s[0].At < lo/4 || s[0].At > hi/4 {
			t.Errorf("seed %d: first fault at %s, want a warm-up of about a quarter interval first", seed, s[0].At)
		}
		stopOf := map[string]string{
			FStartPartition: FStopPartition, FStartLink: FStopLink,
			FKill: FRestart, FPause: FResume,
		}
		kinds := map[string]bool{}
		for i := 0; i < len(s); i += 2 {
			start, stop := s[i], s[i+1]
			if stopOf[start.Action] != stop.Action {
				t.Fatalf("seed %d: step %d %q is followed by %q", seed, i, start, stop)
			}
			if (start.Action == FKill || start.Action == FPause) && !reflect.DeepEqual(start.Nodes, stop.Nodes) {
				t.Errorf("seed %d: %q undone by %q", seed, start, stop)
			}
			if d := stop.At - start.At; !inSpan(d) && stop.At != duration {
				t.Errorf("seed %d: fault %q lasts %s", seed, start, d)
			}
			if i+2 < len(s) {
				if d := s[i+2].At - stop.At; !inSpan(d) {
					t.Errorf("seed %d: clean gap after %q is %s", seed, stop, d)
				}
			}
			if stop.At > duration {
				t.Errorf("seed %d: %q after the duration", seed, stop)
			}
			switch {
			case start.Action == FStartLink && start.Link.Delay > 0:
				kinds["delay"] = true
			case start.Action == FStartLink:
				kinds["loss"] = true
			case start.Action == FStartPartition:
				kinds["partition"] = true
				kinds[start.Partition.Shape] = true
			default:
				kinds[start.Action] = true
			}
		}
		for _, k := range append(all, shapes()...) {
			if !kinds[k] {
				t.Errorf("seed %d: kind %s never drawn in %d windows", seed, k, len(s)/2)
			}
		}
	}
}

func TestGenerateEdges(t *testing.T) {
	nodes := testNodes(3)
	if s, err := Generate(1, nil, time.Second, time.Minute, nodes); err != nil || len(s) != 0 {
		t.Errorf("no kinds: %v, %v", s, err)
	}
	if s, err := Generate(1, []string{"kill"}, time.Minute, 10*time.Second, nodes); err != nil || len(s) != 0 {
		t.Errorf("duration shorter than the warm-up: %v, %v", s, err)
	}
	for _, tc := range []struct {
		kinds []string
		nodes []string
		want  string
	}{
		{[]string{"partition", "flood"}, nodes, `unknown nemesis kind "flood"`},
		{[]string{"majorities-ring-oneway"}, nodes, "unknown nemesis kind"},
		{[]string{"bridge"}, testNodes(2), "at least 3 nodes"},
		{[]string{"partition"}, testNodes(1), "at least 2 nodes"},
		{[]string{"kill"}, nil, "no nodes"},
	} {
		_, err := Generate(1, tc.kinds, time.Second, time.Minute, tc.nodes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Generate(%v, %v) = %v, want error containing %q", tc.kinds, tc.nodes, err, tc.want)
		}
	}
	// A single shape, and link as delay+loss.
	s, err := Generate(3, []string{"isolate-oneway", "link"}, time.Second, time.Minute, testNodes(5))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range s {
		switch st.Action {
		case FStartPartition:
			if st.Partition.Shape != "isolate" || !st.Partition.OneWay {
				t.Errorf("unexpected partition %q", st)
			}
		case FStopPartition, FStartLink, FStopLink:
		default:
			t.Errorf("unexpected step %q", st)
		}
	}
}

// A generated schedule prints in the scripted format and reads back the same.
func TestGenerateRoundTrip(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		nodes := testNodes(n)
		s, err := Generate(uint64(n), []string{"partition", "link", "kill", "pause"}, time.Second, 2*time.Minute, nodes)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSchedule(strings.NewReader(s.String()), nodes, 999)
		if err != nil {
			t.Fatalf("n=%d: %v\n%s", n, err, s)
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("n=%d: round trip differs:\n%s\n---\n%s", n, s, back)
		}
	}
}

func TestDescribe(t *testing.T) {
	text := strings.Join(Describe(), "\n")
	for _, k := range []string{"partition", "delay", "loss", "link", "kill", "pause",
		"isolate", "halves", "random-halves", "bridge", "majorities-ring", "isolate-oneway", "bridge-oneway"} {
		if !strings.Contains(text, k) {
			t.Errorf("Describe does not mention %s", k)
		}
	}
}

func TestNetworkFaults(t *testing.T) {
	nodes := testNodes(3)
	for _, tc := range []struct {
		kinds []string
		want  bool
	}{
		{[]string{"partition"}, true},
		{[]string{"delay"}, true},
		{[]string{"loss"}, true},
		{[]string{"majorities-ring"}, true},
		{[]string{"kill"}, false},
		{[]string{"kill", "pause"}, false},
	} {
		s, err := Generate(1, tc.kinds, time.Second, 10*time.Second, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.NetworkFaults(); got != tc.want {
			t.Errorf("%v: NetworkFaults() = %v, want %v", tc.kinds, got, tc.want)
		}
	}
	for kinds, want := range map[string]bool{"partition": true, "kill,delay": true, "link": true, "isolate-oneway": true, "kill,pause": false, "": false} {
		if got := NetworkKinds(strings.Split(kinds, ",")); got != want {
			t.Errorf("NetworkKinds(%q) = %v, want %v", kinds, got, want)
		}
	}
	if (Schedule{}).NetworkFaults() {
		t.Error("an empty schedule has network faults")
	}
}

// TestGenerateCoversEveryKind: kinds take turns, so a schedule with at
// least as many windows as kinds uses every one; a default-length run
// (10 s at a 2 s interval) fits four kinds.
func TestGenerateCoversEveryKind(t *testing.T) {
	nodes := testNodes(3)
	for _, kinds := range [][]string{
		{"partition", "delay", "kill", "pause"},
		{"all"},
		{"link", "kill"},
		{"isolate-oneway", "majorities-ring", "pause"},
	} {
		for seed := uint64(1); seed <= 50; seed++ {
			d := 10 * time.Second
			if len(kinds) == 1 { // all: five kinds
				d = 14 * time.Second
			}
			s, err := Generate(seed, kinds, 2*time.Second, d, nodes)
			if err != nil {
				t.Fatal(err)
			}
			if u := Unused(kinds, s); len(u) > 0 {
				t.Errorf("%v, seed %d: %d windows leave out %v:\n%s", kinds, seed, windows(s), u, s)
			}
		}
	}
}

// TestUnusedNamesWhatDidNotFit: a run too short for every kind says which
// it left out.
func TestUnusedNamesWhatDidNotFit(t *testing.T) {
	kinds := []string{"partition", "delay", "loss", "kill", "pause"}
	s, err := Generate(1, kinds, 2*time.Second, 3*time.Second, testNodes(3))
	if err != nil {
		t.Fatal(err)
	}
	u := Unused(kinds, s)
	if len(u) != len(kinds)-windows(s) || windows(s) == 0 {
		t.Errorf("%d windows, unused %v", windows(s), u)
	}
	if got := Unused([]string{"link", "isolate"}, Schedule{
		{Action: FStartLink, Link: LinkFault{Loss: 0.1}},
		{Action: FStartPartition, Partition: Partition{Shape: "isolate"}},
	}); len(got) != 0 {
		t.Errorf("Unused = %v, want none", got)
	}
	if got := Unused([]string{"delay", "isolate-oneway"}, Schedule{
		{Action: FStartLink, Link: LinkFault{Loss: 0.1}},
		{Action: FStartPartition, Partition: Partition{Shape: "isolate"}},
	}); !reflect.DeepEqual(got, []string{"delay", "isolate-oneway"}) {
		t.Errorf("Unused = %v", got)
	}
}
