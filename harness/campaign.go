package harness

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ec-counter/ec-counter/checker"
)

// CampaignRun is one run of a campaign.
type CampaignRun struct {
	Seed     uint64
	Outcome  *Outcome // nil when the run crashed
	Err      error    // why the harness failed, if it did
	Duration time.Duration
}

// Verdict names the run's result: valid, invalid, unknown or crashed.
func (r CampaignRun) Verdict() string {
	if r.Outcome == nil {
		return "crashed"
	}
	return r.Outcome.Result.Valid.String()
}

// Campaign runs count runs of cfg with consecutive seeds from cfg.Seed (a
// random one when cfg has none). Each run's full output goes to its
// harness.log; out gets one line per run, or, when live is true (out is a
// terminal), a progress line redrawn in place. It stops early only when ctx
// ends.
func Campaign(ctx context.Context, cfg Config, count int, out io.Writer, live bool) ([]CampaignRun, error) {
	if count < 1 {
		return nil, fmt.Errorf("--test-count must be at least 1, got %d", count)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.HasSeed {
		cfg.Seed, cfg.HasSeed = rand.Uint64()>>1, true
	}
	var runs []CampaignRun
	counts := map[string]int{}
	for i := 0; i < count && ctx.Err() == nil; i++ {
		rc := cfg
		rc.Seed = cfg.Seed + uint64(i)
		if live {
			fmt.Fprintf(out, "\r\033[K[%d/%d] seed %d running...  %s", i+1, count, rc.Seed, tally(counts))
		}
		start := time.Now()
		o, err := Run(ctx, rc, io.Discard)
		r := CampaignRun{Seed: rc.Seed, Outcome: o, Err: err, Duration: time.Since(start)}
		if err != nil {
			r.Outcome = nil
		}
		runs = append(runs, r)
		counts[r.Verdict()]++
		line := fmt.Sprintf("[%d/%d] seed %d: %s in %s", i+1, count, r.Seed, strings.ToUpper(r.Verdict()), r.Duration.Round(time.Millisecond))
		if r.Outcome != nil {
			line += "  " + r.Outcome.Dir
		} else {
			line += fmt.Sprintf("  (%v)", err)
		}
		if live {
			fmt.Fprint(out, "\r\033[K")
		}
		fmt.Fprintln(out, line)
	}
	return runs, ctx.Err()
}

func tally(counts map[string]int) string {
	var parts []string
	for _, v := range []string{"valid", "invalid", "unknown", "crashed"} {
		if counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	return strings.Join(parts, ", ")
}

// WriteCampaignTable prints one row per run: seed, verdict, the checks
// that failed, time, and where the run is stored.
func WriteCampaignTable(w io.Writer, runs []CampaignRun) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEED\tVERDICT\tFAILED CHECKS\tCONVERGED IN\tTIME\tRUN")
	var converge []time.Duration
	for _, r := range runs {
		failed, conv, dir := "-", "-", "-"
		if r.Outcome != nil {
			if f := failedChecks(r.Outcome.Result); len(f) > 0 {
				failed = strings.Join(f, ",")
			}
			if t := r.Outcome.Result.Checks.Convergence.TimeToConvergeNS; t != nil {
				converge = append(converge, time.Duration(*t))
				conv = time.Duration(*t).Round(time.Millisecond).String()
			}
			dir = r.Outcome.Dir
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seed, strings.ToUpper(r.Verdict()), failed, conv, r.Duration.Round(time.Millisecond), dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(converge) > 0 {
		slices.Sort(converge)
		fmt.Fprintf(w, "time to converge after the final heal over %d runs: median %s, max %s\n", len(converge),
			converge[len(converge)/2].Round(time.Millisecond), converge[len(converge)-1].Round(time.Millisecond))
	}
	return nil
}

// failedChecks names the checks that did not find the history valid.
func failedChecks(res checker.Result) []string {
	var out []string
	for _, c := range res.Verdicts() {
		if c.Valid != checker.Valid {
			out = append(out, c.Name)
		}
	}
	return out
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the campaign as JUnit XML: one testcase per run. An
// invalid or unknown run is a failure carrying its anomalies and the
// command that replays it; a crashed run is an error.
func WriteJUnit(w io.Writer, name string, runs []CampaignRun) error {
	s := junitSuite{Name: name, Tests: len(runs)}
	var total time.Duration
	for _, r := range runs {
		total += r.Duration
		c := junitCase{Name: fmt.Sprintf("seed %d", r.Seed), Classname: name, Time: seconds(r.Duration)}
		switch {
		case r.Outcome == nil:
			s.Errors++
			c.Error = &junitProblem{Message: "harness failed", Type: "crashed", Body: fmt.Sprint(r.Err)}
		case r.Outcome.Result.Valid != checker.Valid:
			s.Failures++
			var b strings.Builder
			for _, a := range r.Outcome.Result.Anomalies {
				fmt.Fprintf(&b, "[%s] %s\n  expected: %s\n", a.Check, a.Message, a.Expected)
			}
			for _, f := range failedChecks(r.Outcome.Result) {
				if len(r.Outcome.Result.Anomalies) == 0 {
					fmt.Fprintf(&b, "check %s: %s\n", f, r.Outcome.Result.Valid)
				}
			}
			fmt.Fprintf(&b, "\nreplay: %s\nrun: %s\n", r.Outcome.Replay, r.Outcome.Dir)
			c.Failure = &junitProblem{
				Message: fmt.Sprintf("%s: %s", r.Outcome.Result.Valid, strings.Join(failedChecks(r.Outcome.Result), ", ")),
				Type:    r.Outcome.Result.Valid.String(),
				Body:    b.String(),
			}
		}
		if r.Outcome != nil {
			c.SystemOut = fmt.Sprintf("run: %s\nreplay: %s\n", r.Outcome.Dir, r.Outcome.Replay)
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return fmt.Errorf("encode JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
