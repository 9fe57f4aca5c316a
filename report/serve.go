package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ec-counter/ec-counter/runstore"
)

// Handler serves a store for browsing:
//
//   - GET / is an index of its runs, newest first, coloured by verdict and
//     filterable, each linking to its files;
//   - GET /runs.json is the same list as JSON (see RunSummary);
//   - GET /runs/NAME/TIMESTAMP/FILE serves a file of a run (also through
//     /runs/latest/), and directories as listings. A run's report.html is
//     generated when it is missing or older than the run's files.
//
// Only files inside the store are served: paths with .. or hidden
// elements, and symbolic links that lead out of the store, are refused, as
// is each run's admin-token.
func Handler(root string) http.Handler {
	s := &server{root: root, runs: newLister(root), building: runLocks{locks: map[string]*runLock{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /runs.json", s.runsJSON)
	mux.HandleFunc("GET /runs/", s.file)
	return mux
}

type server struct {
	root     string
	runs     *lister
	building runLocks // one report generation at a time per run
}

// runLocks serializes the generation of each run's report: two requests
// for one report write it once, and a run whose files are slow to read (a
// FIFO) holds up no other run's.
type runLocks struct {
	mu    sync.Mutex
	locks map[string]*runLock // by run path; removed when unused
}

type runLock struct {
	sync.Mutex
	users int // holders and waiters, guarded by runLocks.mu
}

// lock locks the run at key and returns its unlock.
func (l *runLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	rl := l.locks[key]
	if rl == nil {
		rl = &runLock{}
		l.locks[key] = rl
	}
	rl.users++
	l.mu.Unlock()
	rl.Lock()
	return func() {
		rl.Unlock()
		l.mu.Lock()
		if rl.users--; rl.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// indexView is what the index template renders.
type indexView struct {
	Store    string
	Error    string
	Runs     []indexRow
	Names    []string
	Verdicts []string
	Elapsed  string
}

type indexRow struct {
	RunSummary
	Href   string // the run's URL path, ending in /
	Start  string
	Seed   string
	Search string // what the text filter matches
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	v := indexView{Store: s.root}
	runs, err := s.runs.list()
	status := http.StatusOK
	if err != nil {
		v.Error = err.Error()
		status = http.StatusInternalServerError
	}
	names := map[string]bool{}
	verdicts := map[string]bool{}
	for _, run := range runs {
		row := indexRow{RunSummary: run, Href: "/runs/" + escapePath(run.Path) + "/", Seed: fmt.Sprint(run.Seed)}
		if !run.Start.IsZero() {
			row.Start = run.Start.UTC().Format("2006-01-02 15:04:05Z")
		}
		row.Search = strings.ToLower(strings.Join([]string{run.Name, run.Path, row.Start, row.Seed, run.Nemesis, run.Bug, run.Verdict, run.Error}, " "))
		v.Runs = append(v.Runs, row)
		if !names[run.Name] {
			names[run.Name] = true
			v.Names = append(v.Names, run.Name)
		}
		verdicts[run.Verdict] = true
	}
	for _, vd := range []string{verdictValid, verdictInvalid, verdictUnknown, verdictCrashed, verdictIncomplete} {
		if verdicts[vd] {
			v.Verdicts = append(v.Verdicts, vd)
		}
	}
	v.Elapsed = formatDuration(time.Since(began))
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "index.html.tmpl", v); err != nil {
		http.Error(w, "render index: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *server) runsJSON(w http.ResponseWriter, r *http.Request) {
	runs, err := s.runs.list()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(runs)
}

// escapePath escapes each element of a slash-separated path for a URL.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, e := range parts {
		parts[i] = url.PathEscape(e)
	}
	return strings.Join(parts, "/")
}

// allowed reports whether rel, a slash-separated path under the store, may
// be served.
func allowed(rel string) bool {
	if rel == "." {
		return true
	}
	if !fs.ValidPath(rel) || strings.Contains(rel, "\\") {
		return false
	}
	for _, e := range strings.Split(rel, "/") {
		if strings.HasPrefix(e, ".") || e == "admin-token" {
			return false
		}
	}
	return true
}

func (s *server) file(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, "/runs/")
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		rel = "."
	}
	if !allowed(rel) {
		http.Error(w, "forbidden: only files inside the store are served", http.StatusForbidden)
		return
	}
	root, err := os.OpenRoot(s.root)
	if err != nil {
		http.Error(w, "open store: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer root.Close()
	st, err := root.Stat(rel)
	if err == nil && !st.Mode().IsRegular() && !st.IsDir() {
		// Opening a FIFO would wait for a writer for ever.
		http.Error(w, fmt.Sprintf("forbidden: %s is %s, not a regular file", rel, fileKind(st.Mode())), http.StatusForbidden)
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist) && path.Base(rel) == runstore.ReportFile:
			// A report not generated yet: see below.
		case errors.Is(err, fs.ErrNotExist):
			http.NotFound(w, r)
			return
		default: // root.Stat refuses symbolic links that lead out of the store
			http.Error(w, "forbidden: only files inside the store are served", http.StatusForbidden)
			return
		}
	}
	if path.Base(rel) == runstore.ReportFile {
		if done := s.ensureReport(w, root, path.Dir(rel)); done {
			return
		}
	}
	switch path.Ext(rel) {
	case ".jsonl", ".log":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	req := r.Clone(r.Context())
	req.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, "/runs/")
	req.URL.RawPath = ""
	http.FileServerFS(root.FS()).ServeHTTP(w, req)
}

// ensureReport makes sure the run at runRel (relative to the store) has a
// report at least as new as its files, writing one if not. If the report
// cannot be written (a read-only store, say) it renders it straight to w and
// returns true; so it does when the run's files lead out of the store, to
// refuse them: a report is built only from files inside it, as only they
// are served.
func (s *server) ensureReport(w http.ResponseWriter, root *os.Root, runRel string) (done bool) {
	newest, isRun, err := runModTime(root, runRel)
	if err != nil {
		http.Error(w, "forbidden: a report is built only from files inside the store: "+err.Error(), http.StatusForbidden)
		return true
	}
	if !isRun {
		return false // a 404, or a file named report.html elsewhere
	}
	fresh := func() bool {
		st, err := root.Stat(path.Join(runRel, runstore.ReportFile))
		return err == nil && !st.ModTime().Before(newest)
	}
	if fresh() {
		return false
	}
	defer s.building.lock(runRel)()
	if fresh() {
		return false
	}
	// Checked again under the lock, just before the files are read.
	if _, _, err := runModTime(root, runRel); err != nil {
		http.Error(w, "forbidden: a report is built only from files inside the store: "+err.Error(), http.StatusForbidden)
		return true
	}
	dir := filepath.Join(s.root, filepath.FromSlash(runRel))
	err = Write(dir)
	if err == nil {
		return false
	}
	run, lerr := Load(dir)
	if lerr != nil {
		http.Error(w, fmt.Sprintf("report: %v", errors.Join(err, lerr)), http.StatusInternalServerError)
		return true
	}
	var buf bytes.Buffer
	if rerr := Render(&buf, run); rerr != nil {
		http.Error(w, "report: "+rerr.Error(), http.StatusInternalServerError)
		return true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(buf.Bytes())
	return true
}

// runModTime returns the newest modification time of the files a report
// of the run at runRel is built from, and whether it has any. It fails if
// one leads out of the store (root.Stat refuses those) or cannot be
// looked at.
func runModTime(root *os.Root, runRel string) (newest time.Time, isRun bool, err error) {
	for _, f := range []string{runstore.RecordFile, runstore.HistoryFile, runstore.ResultsFile} {
		st, err := root.Stat(path.Join(runRel, f))
		switch {
		case err == nil:
			isRun = true
			newest = maxTime(newest, st.ModTime())
		case !errors.Is(err, fs.ErrNotExist):
			return time.Time{}, false, err
		}
	}
	return newest, isRun, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// GuardHosts wraps h to answer only requests whose Host header is an IP
// address, "localhost", or one of names: a page on another site cannot
// then read the store through a DNS name rebound to this machine (DNS
// rebinding). Others get 421 Misdirected Request.
func GuardHosts(h http.Handler, names ...string) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, n := range names {
		allowed[strings.ToLower(n)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hn, _, err := net.SplitHostPort(host); err == nil {
			host = hn
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if _, err := netip.ParseAddr(host); err != nil && !allowed[host] {
			http.Error(w, fmt.Sprintf("host %q is not served here; name it with ec-counter serve --allow-host", host), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
