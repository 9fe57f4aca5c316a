package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A file a user or a store may hand the CLI, of the kinds that used to
// make it read forever or hang: each kind is made at a path by its make.
var hostileFiles = []struct {
	kind string
	make func(t *testing.T, path string)
}{
	{"symlink-to-/dev/zero", func(t *testing.T, path string) {
		if err := os.Symlink("/dev/zero", path); err != nil {
			t.Fatal(err)
		}
	}},
	{"fifo-without-writer", func(t *testing.T, path string) {
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}},
	{"fifo-whose-writer-is-silent", func(t *testing.T, path string) {
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(path, os.O_RDWR, 0) // a writer that never writes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
	}},
	{"huge-sparse-file", func(t *testing.T, path string) {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(64 << 30); err != nil {
			t.Fatal(err)
		}
	}},
	{"directory", func(t *testing.T, path string) {
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}},
}

// storedRun writes a small stored run (name t) under store, with one of
// its files to be replaced by the test.
func storedRun(t *testing.T, store string) string {
	t.Helper()
	run := filepath.Join(store, "t", "20260101T000000.000Z")
	for name, content := range map[string]string{
		"run.json":       `{"name":"t","seed":1,"network":"loopback","config":{"name":"t","nodes":1,"clients":1,"requests":1,"rate":10,"net":"loopback","values":"small","disk":"plain"}}`,
		"results.json":   `{"valid":false,"checks":{"linearizable":{"valid":false}}}`,
		"history.jsonl":  `{"index":0,"time":1,"type":"invoke","process":0,"f":"get","node":"n1"}` + "\n",
		"harness.log":    "a log\n",
		"workload.jsonl": `{"client":0,"f":"get"}` + "\n",
	} {
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join("t", "20260101T000000.000Z"), filepath.Join(store, "latest")); err != nil {
		t.Fatal(err)
	}
	return run
}

// pathCase is a command run with a hostile file at one of its paths.
type pathCase struct {
	name  string
	file  string            // where the file goes, relative to the command's directory or stored run
	extra map[string]string // other files the case needs
	store bool              // a stored run at store/t/...; file is inside it
	args  []string
	codes []int // acceptable exit codes
	note  bool  // on exit 0, the output must name the file: the command reads it
}

// TestEveryPathMayBeAnything is a property of the whole CLI: every path
// argument, and every path inside a config, hosts file or store, may be a
// device, a FIFO (silent or without writer), a huge file or a directory,
// and the command still answers within a few seconds and a few hundred
// MB, with 254 or a note, never by reading gigabytes or waiting forever.
func TestEveryPathMayBeAnything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it about a hundred times")
	}
	bin := buildEcCounter(t)
	key, err := os.ReadFile("testdata/test-only-key")
	if err != nil {
		t.Fatal(err)
	}
	hostsWith := func(field string) string {
		return "[[host]]\naddress = \"127.0.0.1\"\nport = 1\nuser = \"root\"\n" + field + "\n"
	}
	// Each case places the hostile file at X under its own directory (the
	// working directory of the command) and runs args there.
	cases := []pathCase{
		{name: "test --config", file: "X", args: []string{"test", "--net", "loopback", "--config", "X"}, codes: []int{254}},
		{name: "test --nemesis-schedule", file: "X", args: []string{"test", "--net", "loopback", "--nemesis-schedule", "X"}, codes: []int{254}},
		{name: "test --workload", file: "X", args: []string{"test", "--net", "loopback", "--workload", "X"}, codes: []int{254}},
		{name: "test --hosts", file: "X", args: []string{"test", "--hosts", "X"}, codes: []int{254}},
		{name: "doctor --hosts", file: "X", args: []string{"doctor", "--hosts", "X"}, codes: []int{254}},
		{name: "cleanup --hosts", file: "X", args: []string{"cleanup", "--hosts", "X"}, codes: []int{254}},
		{name: "hosts key", file: "X", extra: map[string]string{"h.toml": hostsWith(`key = "X"` + "\ninsecure_ignore_host_key = true")},
			args: []string{"test", "--hosts", "h.toml"}, codes: []int{254}},
		{name: "hosts known_hosts", file: "X", extra: map[string]string{"h.toml": hostsWith(`key = "k"` + "\nknown_hosts = \"X\""), "k": string(key)},
			args: []string{"test", "--hosts", "h.toml"}, codes: []int{254}},
		// An empty history (a FIFO nobody writes to) is checked: unknown.
		{name: "check PATH", file: "X", args: []string{"check", "X"}, codes: []int{2, 254}},
		{name: "check RUN's history", store: true, file: "history.jsonl", args: []string{"check", "store/latest"}, codes: []int{2, 254}},
		{name: "junit-merge FILE", file: "X", args: []string{"junit-merge", "X"}, codes: []int{254}},
	}
	for _, f := range []string{"run.json", "results.json", "history.jsonl", "harness.log", "workload.jsonl"} {
		cases = append(cases,
			pathCase{name: "runs with " + f, store: true, file: f, args: []string{"runs", "--store", "store"}, codes: []int{0},
				note: f == "run.json" || f == "results.json" || f == "history.jsonl"},
			pathCase{name: "show with " + f, store: true, file: f, args: []string{"show", "--store", "store", "latest"}, codes: []int{0, 254},
				note: f == "run.json" || f == "results.json"},
		)
	}
	for _, f := range []string{"run.json", "results.json", "workload.jsonl"} {
		cases = append(cases, pathCase{name: "shrink with " + f, store: true, file: f, args: []string{"shrink", "--store", "store", "latest"}, codes: []int{254}})
	}
	// The commands mostly wait (on a silent FIFO's idle limit, say): they
	// run side by side, a dozen at a time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 12)
	for _, c := range cases {
		for _, h := range hostileFiles {
			dir := t.TempDir()
			for name, content := range c.extra {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := filepath.Join(dir, c.file)
			if c.store {
				target = filepath.Join(storedRun(t, filepath.Join(dir, "store")), c.file)
				if err := os.Remove(target); err != nil {
					t.Fatal(err)
				}
			}
			h.make(t, target)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				name := c.name + " / " + h.kind
				code, out, took, rss, err := runBounded(dir, bin, c.args...)
				switch {
				case err != nil:
					t.Errorf("%s: %v", name, err)
				case !slices.Contains(c.codes, code):
					t.Errorf("%s: exit %d, want one of %v\n%s", name, code, c.codes, out)
				case took > 15*time.Second:
					t.Errorf("%s: took %s, want a few seconds\n%s", name, took.Round(time.Millisecond), out)
				case rss > 300<<20:
					t.Errorf("%s: peak memory %d MiB, want at most a few hundred\n%s", name, rss>>20, out)
				case code == 0 && c.note && !strings.Contains(out, c.file):
					t.Errorf("%s: exit 0 without a note naming %s\n%s", name, c.file, out)
				}
			}()
		}
	}
	wg.Wait()
}

// runBounded runs bin in dir, killing it after 60 s, and returns its exit
// code, output, wall time and peak resident memory in bytes.
func runBounded(dir, bin string, args ...string) (code int, out string, took time.Duration, rss int64, err error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, "", 0, 0, err
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	err = cmd.Wait()
	timer.Stop()
	took = time.Since(start)
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code, err = ee.ExitCode(), nil
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10
	}
	return code, fmt.Sprintf("$ ec-counter %s\n%s", strings.Join(args, " "), buf.String()), took, rss, err
}
