package harness

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/runstore"
)

// TestStaleReadIsCaughtWithLinearHTML: the example run exits 1 and
// leaves porcupine's view of the violation in the run directory.
func TestStaleReadIsCaughtWithLinearHTML(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--bug", "stale-read", "--seed", "3", "--rate", "40")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	r := readRun(t, root)
	html, err := os.ReadFile(filepath.Join(r.dir, runstore.LinearFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<html") {
		t.Errorf("%s is not HTML", runstore.LinearFile)
	}
	anomalies, _ := r.results["anomalies"].([]any)
	if len(anomalies) == 0 {
		t.Fatal("results.json lists no anomaly")
	}
	a := anomalies[0].(map[string]any)
	for _, k := range []string{"check", "message", "ops", "expected"} {
		if a[k] == nil || a[k] == "" {
			t.Errorf("anomaly lacks %q: %v", k, a)
		}
	}
	if !strings.Contains(out, "INVALID") || !strings.Contains(out, "op ") {
		t.Errorf("summary does not explain the anomaly:\n%s", out)
	}
}

// junitDoc is the part of JUnit XML the tests read.
type junitDoc struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(d.Suites) != 1 {
		t.Fatalf("%d test suites, want 1", len(d.Suites))
	}
	return d
}

func TestCampaignJUnit(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	junit := filepath.Join(dir, "out.xml")
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", filepath.Join(dir, "store"), "--test-count", "2", "--junit", junit, "--rate", "50")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	d := readJUnit(t, junit)
	if s := d.Suites[0]; s.Tests != 2 || s.Failures != 0 || len(s.Cases) != 2 {
		t.Errorf("passing campaign: %+v", s)
	}

	code, out = runCLI(t, bin, "test", "--nemesis", "none", "--store", filepath.Join(dir, "store"), "--test-count", "2", "--junit", junit,
		"--rate", "50", "--requests", "50", "--bug", "no-gossip")
	if code != 1 {
		t.Fatalf("no-gossip campaign: exit %d, want 1:\n%s", code, out)
	}
	d = readJUnit(t, junit)
	if s := d.Suites[0]; s.Tests != 2 || s.Failures != 2 {
		t.Errorf("no-gossip campaign: %d tests, %d failures; want 2 and 2", s.Tests, s.Failures)
	}
	for _, c := range d.Suites[0].Cases {
		if c.Failure == nil || !strings.Contains(c.Failure.Body, "replay:") || !strings.Contains(c.Failure.Body, "convergence") {
			t.Errorf("testcase %s: failure lacks anomalies or replay command: %+v", c.Name, c.Failure)
		}
	}
}

// TestParallelShardedCampaign runs a campaign of 4 seeds as two shards of
// two runs at once each, merges their JUnit files, and checks that every
// seed ran exactly once and passed.
func TestParallelShardedCampaign(t *testing.T) {
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	var files []string
	for _, shard := range []string{"1/2", "2/2"} {
		junit := filepath.Join(dir, "shard"+shard[:1]+".xml")
		code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", filepath.Join(dir, "store"), "--test-count", "4", "--seed", "100",
			"--parallel", "2", "--shard", shard, "--junit", junit, "--rate", "50", "--requests", "40")
		if code != 0 {
			t.Fatalf("shard %s: exit %d, want 0:\n%s", shard, code, out)
		}
		files = append(files, junit)
	}
	merged := filepath.Join(dir, "merged.xml")
	if code, out := runCLI(t, bin, append([]string{"junit-merge", "--out", merged}, files...)...); code != 0 {
		t.Fatalf("junit-merge: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var seeds []string
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			seeds = append(seeds, c.Name)
			if c.Failure != nil {
				t.Errorf("%s failed: %s", c.Name, c.Failure.Message)
			}
		}
	}
	if want := []string{"seed 100", "seed 101", "seed 102", "seed 103"}; !slices.Equal(seeds, want) {
		t.Errorf("merged testcases %q, want %q", seeds, want)
	}
}

// TestIntegerWidthBugsAreCaught: the default workload crosses 2^31, 2^32
// and 2^53, so a node that keeps the counter in 32 bits or decodes values
// through float64 is caught without any fault, in every seed tried.
func TestIntegerWidthBugsAreCaught(t *testing.T) {
	bin, _ := buildBinaries(t)
	type job struct {
		bug, values string
		seed        int
	}
	var jobs []job
	for _, bug := range []string{"int32", "float-json"} {
		for seed := 1; seed <= 3; seed++ {
			jobs = append(jobs, job{bug, "boundaries", seed})
		}
	}
	parallelRuns(jobs, 2, func(j job) {
		root := filepath.Join(t.TempDir(), "store")
		code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--bug", j.bug, "--values", j.values,
			"--seed", strconv.Itoa(j.seed), "--requests", "60", "--rate", "40")
		if code != 1 {
			t.Errorf("--bug %s --values %s --seed %d: exit %d, want 1\n%s", j.bug, j.values, j.seed, code, out)
			return
		}
		if !strings.Contains(out, "linearizable  invalid") {
			t.Errorf("--bug %s --seed %d: caught, but not by the linearizable check:\n%s", j.bug, j.seed, out)
		}
	})
}
