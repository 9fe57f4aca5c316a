package report

import (
	"bytes"
	"context"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/runstore"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// needChromium skips browser tests in -short mode and where chromium is
// not installed.
func needChromium(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test: needs headless chromium at %s (apt-get install -y chromium)", chromiumPath)
	}
}

// chromium runs headless chromium on url with extra flags (e.g.
// --dump-dom, --screenshot=FILE) and returns its standard output and how
// long it ran.
func chromium(t testing.TB, url string, flags ...string) ([]byte, time.Duration) {
	t.Helper()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,2000", "--virtual-time-budget=4000",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, append(append(args, flags...), url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.Bytes())
	}
	return stdout.Bytes(), took
}

// attrsOf returns the attributes of the first element matching open (a
// regexp of its start tag's beginning, e.g. `<body` or `<section id="x"`).
func attrsOf(t testing.TB, dom []byte, open string) map[string]string {
	t.Helper()
	tag := regexp.MustCompile(open + `[^>]*>`).Find(dom)
	if tag == nil {
		t.Fatalf("the DOM has no element %s", open)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`([\w-]+)="([^"]*)"`).FindAllSubmatch(tag, -1) {
		out[string(m[1])] = html.UnescapeString(string(m[2]))
	}
	return out
}

func fileURL(t testing.TB, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + abs
}

// screenshotDir is where screenshots go: $REPORT_SCREENSHOT_DIR if set (to
// keep them), else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("REPORT_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func TestBrowserReport10k(t *testing.T) {
	needChromium(t)
	root := t.TempDir()
	s := synth{seed: 10, nodes: 3, clients: 10, ops: 10_000, faults: true, bug: true}
	dir := writeRun(t, root, "browser", t0, s, false)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, runstore.ReportFile)
	dom, wall := chromium(t, fileURL(t, report), "--dump-dom")

	body := attrsOf(t, dom, `<body`)
	if e := body["data-error"]; e != "" {
		t.Fatalf("the page's script failed: %s", e)
	}
	if body["data-rendered"] != "true" {
		t.Fatalf("the page did not finish rendering: body %v", body)
	}
	renderMS, err := strconv.ParseFloat(body["data-render-ms"], 64)
	if err != nil {
		t.Fatalf("no data-render-ms: %v", body)
	}
	pageMS, _ := strconv.ParseFloat(body["data-page-ms"], 64)
	t.Logf("10,000-op report: script rendered in %.0f ms (%.0f ms since navigation); chromium ran %s in all (start-up included)",
		renderMS, pageMS, wall.Round(time.Millisecond))
	if renderMS > 3000 || pageMS > 3000 {
		t.Errorf("rendering took %.0f ms (%.0f ms since navigation), want under 3 s", renderMS, pageMS)
	}
	if wall > 10*time.Second {
		t.Errorf("chromium took %s to load and render the report", wall)
	}
	if n, _ := strconv.Atoi(body["data-ops"]); n != len(s.history()) {
		t.Errorf("the page saw %d ops, want %d", n, len(s.history()))
	}

	res := checker.Check(s.history())
	for _, sec := range []string{"summary", "timeline", "values", "latency", "convergence", "anomalies", "config"} {
		a := attrsOf(t, dom, `<section id="`+sec+`"`)
		if a["data-rendered"] != "true" {
			t.Errorf("section %s not rendered: %v", sec, a)
		}
	}
	tl := attrsOf(t, dom, `<section id="timeline"`)
	if n, _ := strconv.Atoi(tl["data-calls"]); n != res.Checks.Stats.ClientOps {
		t.Errorf("timeline has %s calls, want %d", tl["data-calls"], res.Checks.Stats.ClientOps)
	}
	if n, _ := strconv.Atoi(tl["data-bars"]); n < 100 {
		t.Errorf("timeline drew %s bars", tl["data-bars"])
	}
	if n, _ := strconv.Atoi(tl["data-windows"]); n < 4 {
		t.Errorf("timeline shows %s nemesis windows, want several", tl["data-windows"])
	}
	for _, sec := range []string{"values", "latency"} {
		if n, _ := strconv.Atoi(attrsOf(t, dom, `<section id="`+sec+`"`)["data-points"]); n < 100 {
			t.Errorf("%s chart drew %d points", sec, n)
		}
	}
	an := attrsOf(t, dom, `<section id="anomalies"`)
	if an["data-unlinked-refs"] != "0" || an["data-linked-refs"] == "0" {
		t.Errorf("anomaly links: %v", an)
	}
	if !bytes.Contains(dom, []byte(`id="lat-table"`)) || !bytes.Contains(dom, []byte("<th>get</th>")) {
		t.Error("the window's latency quantiles were not filled in")
	}

	shot := filepath.Join(screenshotDir(t), "report-10k.png")
	chromium(t, fileURL(t, report), "--screenshot="+shot, "--window-size=1400,2600")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 20_000 {
		t.Fatalf("screenshot %s: %v (%d bytes)", shot, err, st.Size())
	}
	t.Logf("screenshot: %s", shot)
}

func TestBrowserAnomalyLinksToOps(t *testing.T) {
	needChromium(t)
	root := t.TempDir()
	dir := writeRun(t, root, "anomaly", t0, synth{seed: 11, nodes: 3, clients: 6, ops: 3000, faults: true, bug: true}, false)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	res, err := runstore.ReadResults(runstore.RunDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Anomalies) == 0 || len(res.Anomalies[0].Ops) == 0 {
		t.Fatalf("want an anomaly with ops, got %+v", res.Anomalies)
	}
	a := res.Anomalies[0]
	var want []string
	for _, r := range a.Ops {
		want = append(want, strconv.FormatInt(r.Index, 10))
	}

	// Following an anomaly's link selects its ops in the timeline.
	dom, _ := chromium(t, fileURL(t, filepath.Join(dir, runstore.ReportFile))+"#anomaly=1", "--dump-dom")
	if e := attrsOf(t, dom, `<body`)["data-error"]; e != "" {
		t.Fatalf("script error: %s", e)
	}
	details := attrsOf(t, dom, `<div id="details"`)
	if got := details["data-selected-op"]; got != strings.Join(want, ",") {
		t.Errorf("anomaly 1 selected ops %q, want %q", got, strings.Join(want, ","))
	}
	// An anomaly may name both ends of one op: count the distinct ones.
	ops, _ := histories.ReadFile(filepath.Join(dir, runstore.HistoryFile))
	p := buildPage(ops, nil, nil)
	callOf := map[int64]int{}
	for i := range p.Calls.Inv {
		callOf[p.Calls.Inv[i]], callOf[p.Calls.Cmp[i]] = i, i
	}
	calls := map[int]bool{}
	for _, r := range a.Ops {
		calls[callOf[r.Index]] = true
	}
	if n, _ := strconv.Atoi(details["data-selected-calls"]); n != len(calls) {
		t.Errorf("anomaly 1 selected %d calls in the timeline, want %d", n, len(calls))
	}
	if !regexp.MustCompile(`class="anomaly selected"[^>]*id="anomaly-1"|id="anomaly-1"[^>]*class="anomaly selected"`).Match(dom) &&
		!regexp.MustCompile(`<div class="anomaly selected" id="anomaly-1"`).Match(dom) {
		t.Error("anomaly 1 is not highlighted")
	}
	// The details panel shows the op: its index, its f and its node.
	m := regexp.MustCompile(`(?s)<div id="details".*?</div>\s*</section>`).Find(dom)
	if m == nil || !bytes.Contains(m, []byte(want[0])) || !bytes.Contains(m, []byte(a.Ops[0].Node)) {
		t.Errorf("details panel does not show op %s on %s: %s", want[0], a.Ops[0].Node, m)
	}
	// Each op link of the anomaly points to an op drawn in the timeline.
	for _, idx := range want {
		if !regexp.MustCompile(`data-op="` + idx + `"[^>]*data-linked="call"`).Match(dom) {
			t.Errorf("op link %s is not linked to a timeline op", idx)
		}
	}

	// A single op, by its link.
	dom, _ = chromium(t, fileURL(t, filepath.Join(dir, runstore.ReportFile))+"#op="+want[0], "--dump-dom")
	if got := attrsOf(t, dom, `<div id="details"`)["data-selected-op"]; got != want[0] {
		t.Errorf("#op=%s selected %q", want[0], got)
	}
}

func TestBrowserServeIndex(t *testing.T) {
	needChromium(t)
	root := t.TempDir()
	writeRun(t, root, "alpha", t0, synth{seed: 1, nodes: 3, clients: 4, ops: 600, faults: true}, false)
	writeRun(t, root, "alpha", t0.Add(time.Hour), synth{seed: 2, nodes: 3, clients: 4, ops: 600, bug: true}, false)
	writeRun(t, root, "beta", t0.Add(2*time.Hour), synth{seed: 3, nodes: 3, clients: 4, ops: 600}, true)
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()

	dom, _ := chromium(t, srv.URL+"/", "--dump-dom")
	if n := attrsOf(t, dom, `<body`)["data-runs"]; n != "3" {
		t.Fatalf("index lists %s runs, want 3", n)
	}
	if n := attrsOf(t, dom, `<body`)["data-shown"]; n != "3" {
		t.Errorf("index script shows %s runs, want 3", n)
	}
	for _, v := range []string{"valid", "invalid", "crashed"} {
		if !bytes.Contains(dom, []byte(`data-verdict="`+v+`"`)) {
			t.Errorf("index has no %s run", v)
		}
	}
	// The filter, from the URL, hides what does not match.
	dom2, _ := chromium(t, srv.URL+"/?verdict=invalid", "--dump-dom")
	if n := attrsOf(t, dom2, `<body`)["data-shown"]; n != "1" {
		t.Errorf("filtered index shows %s runs, want 1", n)
	}

	// Every link of the index answers 200.
	links := regexp.MustCompile(`href="(/runs/[^"]*)"`).FindAllSubmatch(dom, -1)
	if len(links) < 3*6 {
		t.Fatalf("index has %d links, want each run's files", len(links))
	}
	for _, l := range links {
		u := srv.URL + html.UnescapeString(string(l[1]))
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}

	// A report served on demand renders in the browser too.
	dom3, _ := chromium(t, srv.URL+"/runs/latest/report.html", "--dump-dom")
	if b := attrsOf(t, dom3, `<body`); b["data-rendered"] != "true" || b["data-verdict"] != "crashed" {
		t.Errorf("served report of the latest run: %v", b)
	}
}

// interactions is a script appended to a report by TestBrowserInteractions:
// it hovers, clicks, zooms, drags and brushes like a user, through real
// DOM events, and writes what happened into data-test-* attributes.
const interactions = `<script>
(function () {
  const out = (k, v) => document.body.setAttribute('data-test-' + k, String(v));
  try {
    const D = JSON.parse(document.getElementById('report-data').textContent);
    const cv = document.getElementById('lanes'), r = cv.getBoundingClientRect();
    const left = +cv.dataset.left, right = +cv.dataset.right, top = +cv.dataset.top, lh = +cv.dataset.laneHeight;
    const plotW = r.width - left - right, END = D.end;
    let best = -1, bw = -1;
    for (let i = 0; i < D.calls.inv.length; i++) {
      if (D.calls.lane[i] === 0 && D.calls.t1[i] - D.calls.t0[i] > bw) { bw = D.calls.t1[i] - D.calls.t0[i]; best = i; }
    }
    const t = (D.calls.t0[best] + D.calls.t1[best]) / 2;
    const x = r.left + left + t / END * plotW, y = r.top + top + lh / 2;
    const ev = (type, x, y) => new MouseEvent(type, { clientX: x, clientY: y, bubbles: true });
    out('hover-op', D.calls.inv[best]);
    cv.dispatchEvent(ev('mousemove', x, y));
    const tip = document.getElementById('tip');
    out('tip', tip.hidden ? 'hidden' : tip.textContent);
    cv.dispatchEvent(ev('mousedown', x, y)); window.dispatchEvent(ev('mouseup', x, y));
    out('clicked', document.getElementById('details').dataset.selectedOp);
    const win = () => document.getElementById('win-from').value + ',' + document.getElementById('win-to').value;
    const cx = r.left + left + plotW / 2;
    cv.dispatchEvent(new WheelEvent('wheel', { clientX: cx, clientY: y, deltaY: -500, ctrlKey: true, bubbles: true, cancelable: true }));
    setTimeout(() => {
      out('zoomed', win());
      cv.dispatchEvent(ev('mousedown', cx, y)); window.dispatchEvent(ev('mousemove', cx + 100, y)); window.dispatchEvent(ev('mouseup', cx + 100, y));
      setTimeout(() => {
        out('dragged', win());
        const ov = document.getElementById('overview'), o = ov.getBoundingClientRect();
        const ox = (f) => o.left + left + f * (o.width - left - right);
        ov.dispatchEvent(ev('mousedown', ox(0.1), o.top + 10)); window.dispatchEvent(ev('mousemove', ox(0.2), o.top + 10)); window.dispatchEvent(ev('mouseup', ox(0.2), o.top + 10));
        setTimeout(() => {
          out('brushed', win());
          document.querySelector('a.anomaly-link').click();
          out('anomaly', document.getElementById('details').dataset.selectedOp);
          out('done', 'true');
        }, 300);
      }, 300);
    }, 300);
  } catch (e) { out('error', e.message); }
})();
</script>
`

func TestBrowserInteractions(t *testing.T) {
	needChromium(t)
	root := t.TempDir()
	s := synth{seed: 12, nodes: 3, clients: 6, ops: 4000, faults: true, bug: true}
	dir := writeRun(t, root, "ui", t0, s, false)
	ops := s.history()
	end := float64(ops[len(ops)-1].Time/1000) / 1e6 // the page's time unit is the µs
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, runstore.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "ui.html")
	os.WriteFile(page, bytes.Replace(b, []byte("</body>"), []byte(interactions+"</body>"), 1), 0o644)
	dom, _ := chromium(t, fileURL(t, page), "--dump-dom")
	body := attrsOf(t, dom, `<body`)
	if body["data-error"] != "" || body["data-test-error"] != "" || body["data-test-done"] != "true" {
		t.Fatalf("interactions did not run: %v", body)
	}
	op := body["data-test-hover-op"]
	if tip := body["data-test-tip"]; !strings.Contains(tip, "op"+op+" invoke") && !strings.Contains(tip, op+" invoke") {
		t.Errorf("hovering op %s shows %q", op, tip)
	}
	if got := body["data-test-clicked"]; got != op {
		t.Errorf("clicking op %s selected %q", op, got)
	}
	window := func(k string) (float64, float64) {
		a, b, _ := strings.Cut(body["data-test-"+k], ",")
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("window after %s: %q", k, body["data-test-"+k])
		}
		return x, y
	}
	near := func(x, want float64) bool { return x > want-0.002 && x < want+0.002 }
	za, zb := window("zoomed") // ctrl and a wheel of -500 pixels zoom in by e around the centre
	if !near(zb-za, end/math.E) || !near((za+zb)/2, end/2) {
		t.Errorf("wheel zoom: window %g..%g, want %g wide around %g", za, zb, end/math.E, end/2)
	}
	da, db := window("dragged")
	if !(da < za) || !near(db-da, zb-za) {
		t.Errorf("dragging right should move the window earlier at the same width: %g..%g then %g..%g", za, zb, da, db)
	}
	ba, bb := window("brushed")
	if !near(ba, 0.1*end) || !near(bb, 0.2*end) {
		t.Errorf("brushing 10%% to 20%% of the overview selected %g..%g, want %g..%g", ba, bb, 0.1*end, 0.2*end)
	}
	if body["data-test-anomaly"] == "" {
		t.Error("clicking anomaly 1 selected nothing")
	}
}

func TestBrowserEdgeCases(t *testing.T) {
	needChromium(t)
	root := t.TempDir()
	// A run that crashed before its first op: run.json only.
	early, err := runstore.Create(root, "early", t0)
	if err != nil {
		t.Fatal(err)
	}
	writeJSONFile(t, early.File(runstore.RecordFile), map[string]any{"name": "early", "seed": 1, "start": t0, "error": "start cluster: boom"})
	// A run cut short: one op invoked, never completed, and a nemesis op.
	cut, err := runstore.Create(root, "cut", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cut.File(runstore.HistoryFile), []byte(
		`{"index":0,"time":1000,"type":"invoke","process":0,"f":"set","value":9223372036854775807,"node":"n1"}`+"\n"+
			`{"index":1,"time":2000,"type":"info","process":"nemesis","f":"kill","value":["n1"],"error":"failed: n2 (no such process)"}`+"\n"), 0o644)
	for _, run := range []runstore.RunDir{early, cut} {
		if err := Write(string(run)); err != nil {
			t.Fatal(err)
		}
		dom, _ := chromium(t, fileURL(t, run.File(runstore.ReportFile))+"#op=0", "--dump-dom")
		body := attrsOf(t, dom, `<body`)
		if body["data-error"] != "" || body["data-rendered"] != "true" {
			t.Errorf("%s: %v", string(run), body)
		}
		if run == cut && !regexp.MustCompile(`(?s)<div id="details".*9223372036854775807.*pending at the end`).Match(dom) {
			t.Error("the pending set's exact value is not shown when it is selected")
		}
	}
	// The nemesis op, selected, shows its nodes and its error.
	dom, _ := chromium(t, fileURL(t, cut.File(runstore.ReportFile))+"#op=1", "--dump-dom")
	if !regexp.MustCompile(`(?s)<div id="details".*kill n1.*error: failed: n2 \(no such process\)`).Match(dom) {
		t.Errorf("the selected nemesis op does not show its nodes and error:\n%s", dom)
	}
}

// TestBrowserReport100k renders a report of 100,000 ops in a real browser.
// How fast is BenchmarkBrowserReport100k's to measure.
func TestBrowserReport100k(t *testing.T) {
	pageMS, size, wall := renderBig(t)
	t.Logf("100,000-op report (%.1f MB): rendered %.0f ms after navigation; chromium ran %s",
		float64(size)/1e6, pageMS, wall.Round(time.Millisecond))
}

// BenchmarkBrowserReport100k measures how long a 100,000-op report takes
// to render in headless Chromium, from navigation to the end of its script
// (the goal: under 5 s on a 2-core machine).
//
//	go test ./report -run XXX -bench BrowserReport100k -benchtime 3x
func BenchmarkBrowserReport100k(b *testing.B) {
	var total float64
	for i := 0; i < b.N; i++ {
		pageMS, _, _ := renderBig(b)
		total += pageMS
	}
	b.ReportMetric(total/float64(b.N), "page-ms")
}

// renderBig writes a 100,000-op report and renders it in Chromium; it
// returns the page's own render time, the report's size and Chromium's
// wall time.
func renderBig(t testing.TB) (pageMS float64, size int64, wall time.Duration) {
	t.Helper()
	needChromium(t)
	root := t.TempDir()
	dir := writeRun(t, root, "big", t0, synth{seed: 13, nodes: 5, clients: 40, ops: 100_000, faults: true}, false)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, runstore.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	dom, wall := chromium(t, fileURL(t, filepath.Join(dir, runstore.ReportFile)), "--dump-dom")
	body := attrsOf(t, dom, `<body`)
	if body["data-error"] != "" || body["data-rendered"] != "true" {
		t.Fatalf("100,000-op report did not render: %v", body)
	}
	pageMS, err = strconv.ParseFloat(body["data-page-ms"], 64)
	if err != nil {
		t.Fatalf("the report did not say how long it took (data-page-ms %q)", body["data-page-ms"])
	}
	return pageMS, st.Size(), wall
}
