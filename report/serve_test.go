package report

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/runstore"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandlerIndexLinks(t *testing.T) {
	root, dirs := testStore(t)
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()

	code, index := get(t, srv.Client(), srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	for verdict, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		if !strings.Contains(index, `data-verdict="`+verdict+`"`) || !strings.Contains(index, filepath.ToSlash(rel)) {
			t.Errorf("index does not list the %s run %s", verdict, rel)
		}
	}
	links := regexp.MustCompile(`href="([^"#]+)"`).FindAllStringSubmatch(index, -1)
	kinds := map[string]int{}
	for _, l := range regexp.MustCompile(`data-kind="([^"]+)"`).FindAllStringSubmatch(index, -1) {
		kinds[l[1]]++
	}
	if kinds["report"] != 4 || kinds["dir"] != 4 || kinds["node-log"] != 9 || kinds["file"] < 4*2 {
		t.Errorf("index links by kind: %v", kinds)
	}
	for _, l := range links {
		u := html.UnescapeString(l[1])
		code, body := get(t, srv.Client(), srv.URL+u)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", u, code, body)
		}
		if strings.HasSuffix(u, "/report.html") && !strings.Contains(body, `data-rendered="false"`) {
			t.Errorf("GET %s is not a report", u)
		}
	}
	// Reports were generated on demand.
	for verdict, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, runstore.ReportFile)); err != nil {
			t.Errorf("%s run has no report after it was served: %v", verdict, err)
		}
	}

	code, body := get(t, srv.Client(), srv.URL+"/runs.json")
	var runs []RunSummary
	if code != http.StatusOK || json.Unmarshal([]byte(body), &runs) != nil || len(runs) != 4 {
		t.Errorf("GET /runs.json: %d, %d runs: %.200s", code, len(runs), body)
	}
	if code, _ := get(t, srv.Client(), srv.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
}

func TestHandlerRegeneratesStaleReport(t *testing.T) {
	root, dirs := testStore(t)
	dir := dirs["incomplete"]
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	rel, _ := filepath.Rel(root, dir)
	url := srv.URL + "/runs/" + filepath.ToSlash(rel) + "/report.html"
	if code, body := get(t, srv.Client(), url); code != 200 || !strings.Contains(body, `data-verdict="incomplete"`) {
		t.Fatalf("GET report: %d", code)
	}
	// The run goes on: its history grows and its results arrive.
	b, _ := os.ReadFile(filepath.Join(dirs["valid"], runstore.ResultsFile))
	later := time.Now().Add(time.Second)
	os.WriteFile(filepath.Join(dir, runstore.ResultsFile), b, 0o644)
	os.Chtimes(filepath.Join(dir, runstore.ResultsFile), later, later)
	if code, body := get(t, srv.Client(), url); code != 200 || !strings.Contains(body, `data-verdict="valid"`) {
		t.Errorf("report was not regenerated after results.json changed: %d", code)
	}
}

func TestHandlerServesOnlyTheStore(t *testing.T) {
	root, dirs := testStore(t)
	outside := t.TempDir()
	const secret = "TOP-SECRET-OUTSIDE-THE-STORE"
	os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(root), "secret"), []byte(secret), 0o644)
	// A run directory outside the store, reachable through a symlink in it.
	outRun := writeRun(t, outside, "out", t0, synth{seed: 9, nodes: 3, clients: 2, ops: 100}, false)
	os.Symlink(outside, filepath.Join(root, "evil"))
	os.Symlink(outRun, filepath.Join(root, "alpha", "evilrun"))
	os.WriteFile(filepath.Join(root, ".hidden"), []byte(secret), 0o644)

	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rel, _ := filepath.Rel(root, dirs["valid"])
	paths := []string{
		"/runs/../secret", "/runs/../../secret", "/runs/%2e%2e/secret", "/runs/..%2fsecret", "/runs/%2e%2e%2fsecret",
		"/runs/alpha/../../secret", "/runs/latest/../../secret", "/runs/..%5csecret", "/runs//etc/passwd",
		"/runs/evil/secret", "/runs/alpha/evilrun/history.jsonl", "/runs/alpha/evilrun/report.html",
		"/runs/.hidden", "/runs/" + filepath.ToSlash(rel) + "/admin-token", "/runs/latest/admin-token",
		"/runs/" + slashPath(outside) + "/secret", "/../secret", "/runs/./../secret",
	}
	for _, p := range paths {
		for _, c := range []*http.Client{noRedirect, srv.Client()} {
			code, body := rawGet(t, c, srv, p)
			refused := code == http.StatusForbidden || code == http.StatusNotFound || code == http.StatusBadRequest ||
				code == http.StatusTemporaryRedirect || code == http.StatusMovedPermanently
			if !refused || strings.Contains(body, secret) || strings.Contains(body, "secret-admin-token") {
				t.Errorf("GET %s: %d %.120q", p, code, body)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(outRun, runstore.ReportFile)); err == nil {
		t.Error("a report was written outside the store")
	}
	// Inside the store, latest and directories work.
	for _, p := range []string{"/runs/latest/run.json", "/runs/latest/nodes/", "/runs/" + filepath.ToSlash(rel) + "/history.jsonl", "/runs/"} {
		if code, body := rawGet(t, srv.Client(), srv, p); code != 200 {
			t.Errorf("GET %s: %d %.200s", p, code, body)
		}
	}
}

func slashPath(p string) string { return strings.TrimPrefix(filepath.ToSlash(p), "/") }

// rawGet sends path exactly as given, without the client cleaning it.
func rawGet(t *testing.T, c *http.Client, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + path
	resp, err := c.Do(req)
	if err != nil {
		// A raw request the client refuses is no leak; try it on the wire.
		return rawWire(t, srv, path)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawWire writes a request line by hand.
func rawWire(t *testing.T, srv *httptest.Server, path string) (int, string) {
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	b, _ := io.ReadAll(conn)
	var code int
	fmt.Sscanf(string(b), "HTTP/1.0 %d", &code)
	return code, string(b)
}

func TestHandlerIndexOf100RunsIsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100 runs")
	}
	root := t.TempDir()
	for i := range 100 {
		s := synth{seed: uint64(i), nodes: 3, clients: 5, ops: 2000, faults: i%2 == 0, bug: i%7 == 0}
		writeRun(t, root, fmt.Sprintf("campaign-%d", i%4), t0.Add(time.Duration(i)*time.Minute), s, i%10 == 9)
	}
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	for _, round := range []string{"cold", "warm"} {
		start := time.Now()
		code, body := get(t, srv.Client(), srv.URL+"/")
		took := time.Since(start)
		if code != 200 || strings.Count(body, `<tr class="run`) != 100 {
			t.Fatalf("index: %d, %d rows", code, strings.Count(body, `<tr class="run`))
		}
		t.Logf("index of 100 runs (%s cache): %s, %d KB", round, took.Round(time.Microsecond), len(body)/1024)
		if took > time.Second {
			t.Errorf("index of 100 runs took %s, want under 1s", took)
		}
	}
}

// TestGuardHostsRefusesRebinding: only IP literals, localhost and the
// names allowed reach the store.
func TestGuardHostsRefusesRebinding(t *testing.T) {
	h := GuardHosts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), "ci.example")
	for host, want := range map[string]int{
		"127.0.0.1:8080":        200,
		"[::1]:8080":            200,
		"10.0.0.5":              200,
		"localhost:8080":        200,
		"LOCALHOST":             200,
		"ci.example:8080":       200,
		"evil.example:8080":     http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io:8080": http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
}

// A report is built only from files inside the store, as only they are
// served: a run whose history, run.json or results.json is a symlink out
// of the store gets no report, and nothing of the outside file is shown.
func TestHandlerReportRefusesFilesOutsideTheStore(t *testing.T) {
	root, dirs := testStore(t)
	outside := t.TempDir()
	const secret = "SECRETNODE"
	hist := `{"index":0,"time":1,"type":"invoke","process":0,"f":"get","node":"` + secret + `"}` + "\n" +
		`{"index":1,"time":2,"type":"ok","process":0,"f":"get","value":0,"node":"` + secret + `"}` + "\n"
	os.WriteFile(filepath.Join(outside, runstore.HistoryFile), []byte(hist), 0o644)
	os.WriteFile(filepath.Join(outside, runstore.RecordFile), []byte(`{"name":"`+secret+`"}`), 0o644)
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	for _, f := range []string{runstore.HistoryFile, runstore.RecordFile} {
		dir := dirs["incomplete"]
		if f == runstore.RecordFile {
			dir = dirs["crashed"]
		}
		os.Remove(filepath.Join(dir, f))
		if err := os.Symlink(filepath.Join(outside, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, dir)
		code, body := get(t, srv.Client(), srv.URL+"/runs/"+filepath.ToSlash(rel)+"/report.html")
		if code != http.StatusForbidden || strings.Contains(body, secret) {
			t.Errorf("report of a run whose %s leads out of the store: %d %.300q", f, code, body)
		}
		if _, err := os.Stat(filepath.Join(dir, runstore.ReportFile)); err == nil {
			t.Errorf("a report was written from a %s outside the store", f)
		}
	}
}

// A run whose history is a FIFO that a writer holds open and never writes
// to holds up its own report for a few seconds at most, and no other run's.
func TestHandlerReportOfAStuckRunBlocksNoOther(t *testing.T) {
	root, dirs := testStore(t)
	stuck := dirs["incomplete"]
	fifo := filepath.Join(stuck, runstore.HistoryFile)
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0) // a writer that stays silent
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	url := func(dir string) string {
		rel, _ := filepath.Rel(root, dir)
		return srv.URL + "/runs/" + filepath.ToSlash(rel) + "/report.html"
	}
	stuckDone := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Get(url(stuck))
		if err != nil {
			stuckDone <- 0
			return
		}
		resp.Body.Close()
		stuckDone <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the stuck run's report is being built
	other := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Get(url(dirs["valid"]))
		if err != nil {
			other <- 0
			return
		}
		resp.Body.Close()
		other <- resp.StatusCode
	}()
	select {
	case code := <-other:
		if code != http.StatusOK {
			t.Errorf("another run's report: %d", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("another run's report waits behind the stuck run's")
	}
	select {
	case code := <-stuckDone:
		if code != http.StatusOK {
			t.Errorf("the stuck run's report: %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Error("the stuck run's report never came")
	}
}

// A FIFO in a run directory is not served (opening it would wait for a
// writer for ever), and it answers at once.
func TestHandlerRefusesAFIFO(t *testing.T) {
	root, dirs := testStore(t)
	fifo := filepath.Join(dirs["valid"], "nodes", "n9.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(root))
	defer srv.Close()
	c := &http.Client{Timeout: 3 * time.Second}
	rel, _ := filepath.Rel(root, fifo)
	resp, err := c.Get(srv.URL + "/runs/" + filepath.ToSlash(rel))
	if err != nil {
		t.Fatalf("GET a FIFO: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET a FIFO: %d, want 403", resp.StatusCode)
	}
}
