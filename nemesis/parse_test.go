package nemesis

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const exampleSchedule = `# at   action            arguments
0s     start-partition   isolate n1        # or: halves | majorities-ring | ...
2s     stop-partition
3s     kill              n2
5s     restart           n2
6s     start-link        delay=200ms jitter=50ms loss=10% nodes=all
8s     stop-link
9s     pause             majority
11s    resume            all

12s    start-partition   n1,n2 | n3 oneway
12.5s  start-partition   bridge-oneway
13s    start-partition   majorities-ring n5,n4,n3,n2,n1
14s    start-link        loss=0.25 nodes=n1, n3
15s    kill              one
16s    kill              minority
17s    restart           all
`

func TestParseSchedule(t *testing.T) {
	nodes := testNodes(5)
	s, err := ParseSchedule(strings.NewReader(exampleSchedule), nodes, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 15 {
		t.Fatalf("%d steps:\n%s", len(s), s)
	}
	all := nodes
	check := func(i int, want Step) {
		t.Helper()
		if !reflect.DeepEqual(s[i], want) {
			t.Errorf("step %d = %#v,\nwant %#v", i, s[i], want)
		}
	}
	check(0, Step{At: 0, Action: FStartPartition, Partition: Partition{Shape: "isolate", Groups: [][]string{{"n1"}, {"n2", "n3", "n4", "n5"}}}})
	check(1, Step{At: 2 * time.Second, Action: FStopPartition})
	check(2, Step{At: 3 * time.Second, Action: FKill, Nodes: []string{"n2"}})
	check(3, Step{At: 5 * time.Second, Action: FRestart, Nodes: []string{"n2"}})
	check(4, Step{At: 6 * time.Second, Action: FStartLink, Nodes: all,
		Link: LinkFault{Delay: 200 * time.Millisecond, Jitter: 50 * time.Millisecond, Loss: 0.1}})
	check(5, Step{At: 8 * time.Second, Action: FStopLink})
	if st := s[6]; st.Action != FPause || len(st.Nodes) != 3 {
		t.Errorf("pause majority = %q", st)
	}
	check(7, Step{At: 11 * time.Second, Action: FResume, Nodes: s[6].Nodes})
	check(8, Step{At: 12 * time.Second, Action: FStartPartition,
		Partition: Partition{Shape: "groups", Groups: [][]string{{"n1", "n2"}, {"n3"}}, OneWay: true}})
	if p := s[9].Partition; p.Shape != "bridge" || !p.OneWay || len(p.Groups) != 3 {
		t.Errorf("bridge-oneway = %q", s[9])
	}
	check(10, Step{At: 13 * time.Second, Action: FStartPartition,
		Partition: Partition{Shape: "majorities-ring", Groups: [][]string{{"n5", "n4", "n3", "n2", "n1"}}}})
	check(11, Step{At: 14 * time.Second, Action: FStartLink, Nodes: []string{"n1", "n3"}, Link: LinkFault{Loss: 0.25}})
	if len(s[12].Nodes) != 1 || len(s[13].Nodes) != 2 {
		t.Errorf("kill one, kill minority = %q, %q", s[12], s[13])
	}
	for _, x := range s[13].Nodes {
		if x == s[12].Nodes[0] {
			t.Errorf("kill minority chose %s, killed already", x)
		}
	}
	restarted := append(append([]string{}, s[12].Nodes...), s[13].Nodes...)
	if st := s[14]; st.Action != FRestart || len(st.Nodes) != 3 || !sameSet(st.Nodes, restarted) {
		t.Errorf("restart all = %q, want %v", st, restarted)
	}

	// The same seed resolves the same way; it prints and reads back.
	again, err := ParseSchedule(strings.NewReader(exampleSchedule), nodes, 7)
	if err != nil || !reflect.DeepEqual(s, again) {
		t.Errorf("same seed, different schedule: %v", err)
	}
	back, err := ParseSchedule(strings.NewReader(s.String()), nodes, 1)
	if err != nil || !reflect.DeepEqual(s, back) {
		t.Errorf("round trip: %v\n%s\n---\n%s", err, s, back)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown action", "0s start-partition isolate\n1s kil n1", `line 2: unknown action "kil"`},
		{"bad duration", "# comment\n\n2x kill n1", `line 3: bad time "2x"`},
		{"negative time", "-1s kill n1", `line 1: bad time "-1s"`},
		{"unknown node", "0s kill n9", `line 1: kill: unknown node "n9" (nodes: n1,n2,n3,n4,n5)`},
		{"unknown node in groups", "0s start-partition n1|n6", `line 1: start-partition: unknown node "n6"`},
		{"backwards", "3s kill n1\n2s restart n1", "line 2: time 2s goes backwards: the step before is at 3s"},
		{"no action", "3s", "line 1: want a time and an action"},
		{"no target", "0s kill", "line 1: kill: missing target"},
		{"unknown shape", "0s start-partition triangle", `line 1: start-partition: unknown shape "triangle"`},
		{"ring oneway", "0s start-partition majorities-ring oneway", "no one-way variant"},
		{"isolate two", "0s start-partition isolate n1,n2", "isolate takes one node"},
		{"halves partial", "0s start-partition halves n1|n2", "halves takes two groups covering every node"},
		{"duplicate node", "0s start-partition n1,n2|n2", "n2 appears twice"},
		{"stop args", "0s stop-partition now", "stop-partition takes no arguments"},
		{"link no fault", "0s start-link nodes=all", "needs a delay"},
		{"link bad loss", "0s start-link loss=150%", `loss: bad loss "150%"`},
		{"link bad delay", "0s start-link delay=fast", `delay: bad duration "fast"`},
		{"link unknown arg", "0s start-link speed=1", `unknown argument "speed"`},
		{"link repeated", "0s start-link loss=1% loss=2%", "loss given twice"},
		{"link bare word", "0s start-link 200ms", "want key=value arguments"},
		{"restart not killed", "0s kill n1\n1s restart n2", "line 2: restart: n2 is not killed at this point"},
		{"resume symbolic", "0s pause n1\n1s resume one", `line 2: resume: want all or node names`},
		{"kill twice", "0s kill n1\n1s kill n1", "line 2: kill: n1 is already killed"},
		{"pause killed", "0s kill n1\n1s pause n1", "line 2: pause: n1 is already killed"},
		{"majority unavailable", "0s kill majority\n1s pause majority", "line 2: pause: majority of 5 nodes is 3, but only 2 can be chosen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchedule(strings.NewReader(tc.text), testNodes(5), 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseScheduleOdds(t *testing.T) {
	nodes := testNodes(3)
	// Restart all with nothing killed is a no-op; resume all resumes only
	// the paused; kill of a paused node is fine and it is no longer paused.
	s, err := ParseSchedule(strings.NewReader("0s restart all\n1s pause n1,n2\n2s kill n2\n3s resume all\n4s restart all\n"), nodes, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{
		{At: 1 * time.Second, Action: FPause, Nodes: []string{"n1", "n2"}},
		{At: 2 * time.Second, Action: FKill, Nodes: []string{"n2"}},
		{At: 3 * time.Second, Action: FResume, Nodes: []string{"n1"}},
		{At: 4 * time.Second, Action: FRestart, Nodes: []string{"n2"}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%s\nwant\n%s", s, want)
	}
	if _, err := ParseSchedule(strings.NewReader("0s kill n1"), nil, 1); err == nil {
		t.Error("no nodes: no error")
	}
}
