package nemesis_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ec-counter/ec-counter/nemesis"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/schedules/*.txtar with what the code produces")

// TestGoldenSchedules runs every case in testdata/schedules/*.txtar and
// compares what a schedule resolves to with the file's want sections;
// "go test ./nemesis -run Golden -update" rewrites them instead.
//
// A case file is a txtar archive: its comment says what it shows, then its
// sections are read in order:
//
//	-- args --      key value lines: nodes (n1,n2,n3), seed, and for
//	                Generate kinds (partition,kill), interval, duration;
//	                they hold until the next args section
//	-- schedule --  a scripted schedule, for ParseSchedule
//	-- want --      what the schedule before it resolves to; with no
//	                schedule section since the last want, what Generate
//	                makes from the args
//
// A want lists the steps as Schedule.String prints them, each followed by
// what it does: the grudge of a start-partition (for each node, the nodes
// whose traffic it drops), and the nodes left down after a kill, crash, restart,
// pause or resume. A generated schedule ends with the kinds it leaves out
// (Unused). A schedule that does not parse wants "error: " and the error.
func TestGoldenSchedules(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "schedules", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/schedules/*.txtar")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			runGoldenFile(t, file)
		})
	}
}

// scheduleArgs are the settings of an args section.
type scheduleArgs struct {
	nodes              []string
	seed               uint64
	kinds              []string
	interval, duration time.Duration
}

func runGoldenFile(t *testing.T, file string) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(ar.Comment)) == "" {
		t.Errorf("%s: no comment at the top saying what the case shows", file)
	}
	var args *scheduleArgs
	var input []byte // the schedule section awaiting its want, or nil
	line := 1 + strings.Count(string(ar.Comment), "\n")
	changed, cases := false, 0
	for i := range ar.Files {
		f := &ar.Files[i]
		at := fmt.Sprintf("%s:%d", file, line)
		line += 1 + strings.Count(string(f.Data), "\n")
		switch f.Name {
		case "args":
			a, err := parseArgs(string(f.Data))
			if err != nil {
				t.Fatalf("%s: args: %v", at, err)
			}
			args = &a
		case "schedule":
			if input != nil {
				t.Fatalf("%s: a second schedule section before a want", at)
			}
			input = f.Data
		case "want":
			cases++
			if args == nil {
				t.Fatalf("%s: want before any args section", at)
			}
			got := resolve(t, at, *args, input)
			input = nil
			if got == string(f.Data) {
				continue
			}
			if *update {
				f.Data = []byte(got)
				changed = true
				continue
			}
			t.Errorf("%s: the schedule resolves differently (-want +got; go test ./nemesis -run Golden -update rewrites it):\n%s",
				at, diff.Diff("want", f.Data, "got", []byte(got)))
		default:
			t.Errorf("%s: unknown section %q (want args, schedule or want)", at, f.Name)
		}
	}
	if input != nil {
		t.Errorf("%s: the last schedule section has no want section after it", file)
	}
	if cases == 0 {
		t.Errorf("%s: no want section", file)
	}
	if changed {
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseArgs reads an args section's key value lines.
func parseArgs(text string) (scheduleArgs, error) {
	var a scheduleArgs
	for l := range strings.Lines(text) {
		key, val, _ := strings.Cut(strings.TrimSpace(l), " ")
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "":
		case "nodes":
			a.nodes = strings.Split(val, ",")
		case "seed":
			a.seed, err = strconv.ParseUint(val, 10, 64)
		case "kinds":
			a.kinds = strings.Split(val, ",")
		case "interval":
			a.interval, err = time.ParseDuration(val)
		case "duration":
			a.duration, err = time.ParseDuration(val)
		default:
			err = fmt.Errorf("unknown key %q (want nodes, seed, kinds, interval or duration)", key)
		}
		if err != nil {
			return a, err
		}
	}
	if len(a.nodes) == 0 {
		return a, fmt.Errorf("no nodes")
	}
	return a, nil
}

// resolve parses input, or generates a schedule from a when input is nil,
// and renders the outcome as a want section.
func resolve(t *testing.T, at string, a scheduleArgs, input []byte) string {
	t.Helper()
	var s nemesis.Schedule
	var err error
	generated := input == nil
	if generated {
		if len(a.kinds) == 0 {
			t.Fatalf("%s: want with neither a schedule section before it nor kinds in the args", at)
		}
		s, err = nemesis.Generate(a.seed, a.kinds, a.interval, a.duration, a.nodes)
	} else {
		s, err = nemesis.ParseSchedule(strings.NewReader(string(input)), a.nodes, a.seed)
	}
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	// The printed schedule is a script that replays exactly.
	back, err := nemesis.ParseSchedule(strings.NewReader(s.String()), a.nodes, a.seed+1)
	if err != nil {
		t.Errorf("%s: the resolved schedule does not parse back: %v\n%s", at, err, s)
	} else if !reflect.DeepEqual(back, s) {
		t.Errorf("%s: the resolved schedule parses back differently:\n%s\nbecame\n%s", at, s, back)
	}
	out := listing(s, a.nodes)
	if generated {
		unused := nemesis.Unused(a.kinds, s)
		if len(unused) == 0 {
			unused = []string{"none"}
		}
		out += "unused kinds: " + strings.Join(unused, ",") + "\n"
	}
	return out
}

// effect indents the lines that say what a step does, under its action.
const effect = "          "

// listing renders s one step a line, each followed by what it does.
func listing(s nemesis.Schedule, nodes []string) string {
	if len(s) == 0 {
		return "(no steps)\n"
	}
	var b strings.Builder
	killed, paused := map[string]bool{}, map[string]bool{}
	for _, st := range s {
		fmt.Fprintln(&b, st)
		switch st.Action {
		case nemesis.FStartPartition:
			g := st.Partition.Grudge()
			for _, n := range nodes {
				if len(g[n]) > 0 {
					fmt.Fprintf(&b, "%s%s drops %s\n", effect, n, strings.Join(g[n], ","))
				}
			}
			continue
		case nemesis.FKill, nemesis.FCrash:
			for _, n := range st.Nodes {
				killed[n] = true
				delete(paused, n)
			}
		case nemesis.FRestart:
			for _, n := range st.Nodes {
				delete(killed, n)
			}
		case nemesis.FPause:
			for _, n := range st.Nodes {
				paused[n] = true
			}
		case nemesis.FResume:
			for _, n := range st.Nodes {
				delete(paused, n)
			}
		default:
			continue
		}
		var down []string
		for _, n := range nodes {
			switch {
			case killed[n]:
				down = append(down, n+" killed")
			case paused[n]:
				down = append(down, n+" paused")
			}
		}
		if len(down) == 0 {
			down = []string{"none"}
		}
		fmt.Fprintf(&b, "%sdown: %s\n", effect, strings.Join(down, ", "))
	}
	return b.String()
}
