package nemesis

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

func testGossip(node string) string { return "127.0.0.1" + strings.TrimPrefix(node, "n") + ":7946" }

func TestFaultSetComposition(t *testing.T) {
	nodes := testNodes(3)
	iso := Partition{Shape: "isolate", Groups: [][]string{{"n1"}, {"n2", "n3"}}}
	link := LinkFault{Delay: 200 * time.Millisecond, Jitter: 50 * time.Millisecond, Loss: 0.1}
	drop := &api.DirFaults{Drop: true}
	slow := &api.DirFaults{DelayMS: 200, JitterMS: 50, Loss: 0.1}

	for _, tc := range []struct {
		name  string
		state faultState
		want  map[string]map[string]api.LinkFaults
	}{
		{"none", faultState{}, map[string]map[string]api.LinkFaults{"n1": {}, "n2": {}, "n3": {}}},
		{"partition", faultState{grudge: iso.Grudge()}, map[string]map[string]api.LinkFaults{
			"n1": {"127.0.0.12:7946": {In: drop}, "127.0.0.13:7946": {In: drop}},
			"n2": {"127.0.0.11:7946": {In: drop}},
			"n3": {"127.0.0.11:7946": {In: drop}},
		}},
		{"link on n2", faultState{link: &link, linkNodes: map[string]bool{"n2": true}}, map[string]map[string]api.LinkFaults{
			"n1": {"127.0.0.12:7946": {Out: slow}},
			"n2": {"127.0.0.11:7946": {Out: slow}, "127.0.0.13:7946": {Out: slow}},
			"n3": {"127.0.0.12:7946": {Out: slow}},
		}},
		{"partition and link on n1", faultState{grudge: iso.Grudge(), link: &link, linkNodes: map[string]bool{"n1": true}},
			map[string]map[string]api.LinkFaults{
				"n1": {"127.0.0.12:7946": {In: drop, Out: slow}, "127.0.0.13:7946": {In: drop, Out: slow}},
				"n2": {"127.0.0.11:7946": {In: drop, Out: slow}},
				"n3": {"127.0.0.11:7946": {In: drop, Out: slow}},
			}},
		{"one-way partition", faultState{grudge: Partition{Shape: "groups", Groups: [][]string{{"n3"}, {"n1"}}, OneWay: true}.Grudge()},
			map[string]map[string]api.LinkFaults{
				"n1": {}, "n2": {},
				"n3": {"127.0.0.11:7946": {In: drop}},
			}},
	} {
		for _, node := range nodes {
			got := tc.state.faultSet(node, nodes, testGossip)
			if !reflect.DeepEqual(got.Links, tc.want[node]) {
				t.Errorf("%s: %s's links = %s, want %s", tc.name, node, enc(t, got), enc(t, api.FaultSet{Links: tc.want[node]}))
			}
		}
	}
}

func enc(t *testing.T, fs api.FaultSet) string {
	t.Helper()
	s, err := encode(fs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFaultSetEncoding(t *testing.T) {
	if got := enc(t, api.FaultSet{Links: map[string]api.LinkFaults{}}); got != emptySet {
		t.Errorf("empty set encodes as %s", got)
	}
	fs := api.FaultSet{Links: map[string]api.LinkFaults{
		"127.0.0.12:7946": {In: &api.DirFaults{Drop: true}, Out: &api.DirFaults{DelayMS: 200, JitterMS: 50, Loss: 0.2}},
	}}
	want := `{"links":{"127.0.0.12:7946":{"in":{"drop":true},"out":{"delay_ms":200,"jitter_ms":50,"loss":0.2}}}}`
	if got := enc(t, fs); got != want {
		t.Errorf("encodes as %s, want %s", got, want)
	}
}

func TestLinkFault(t *testing.T) {
	for _, tc := range []struct {
		f    LinkFault
		str  string
		err  string
		back float64
	}{
		{f: LinkFault{Delay: 200 * time.Millisecond, Jitter: 50 * time.Millisecond, Loss: 0.1}, str: "delay=200ms jitter=50ms loss=10%"},
		{f: LinkFault{Loss: 0.07}, str: "loss=7%"},
		{f: LinkFault{Loss: 1.0 / 3}, str: "loss=0.3333333333333333"},
		{f: LinkFault{}, err: "needs a delay"},
		{f: LinkFault{Delay: -time.Second}, err: "delay -1s not in"},
		{f: LinkFault{Delay: 2 * time.Hour}, err: "delay 2h0m0s not in"},
		{f: LinkFault{Loss: math.NaN()}, err: "loss NaN not in"},
		{f: LinkFault{Loss: 1.5}, err: "loss 1.5 not in"},
	} {
		err := tc.f.check()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: check = %v, want %q", tc.f, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.f, err)
		}
		if got := tc.f.String(); got != tc.str {
			t.Errorf("%+v prints %q, want %q", tc.f, got, tc.str)
		}
		s, err := ParseSchedule(strings.NewReader("0s start-link "+tc.f.String()), testNodes(3), 1)
		if err != nil || s[0].Link != tc.f {
			t.Errorf("%q reads back as %+v, %v", tc.f.String(), s, err)
		}
	}
}
