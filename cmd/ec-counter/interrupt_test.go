package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestInterruptWhileParsingWorkload interrupts `test` while it reads its
// --workload file (a FIFO that gave one line and then nothing): in the
// lab, where the harness is the first process of its PID namespace, on
// loopback, by SIGINT or SIGTERM, and started as a shell's background job
// with SIGINT ignored, it exits 255 with a line within seconds. In the lab
// it used to exit 2, the code of an unknown verdict, with no message.
func TestInterruptWhileParsingWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts the lab")
	}
	bin := buildEcCounter(t)
	for _, tc := range []struct {
		name   string
		net    string
		sig    syscall.Signal
		ignore bool // started with SIGINT ignored, as `cmd &` in a script
	}{
		{"lab/SIGINT", "lab", syscall.SIGINT, false},
		{"lab/SIGTERM", "lab", syscall.SIGTERM, false},
		{"lab/SIGINT-ignored-by-the-shell", "lab", syscall.SIGINT, true},
		{"loopback/SIGINT", "loopback", syscall.SIGINT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "workload.jsonl")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"test", "--net", tc.net, "--workload", fifo, "--store", filepath.Join(dir, "store")}
			cmd := exec.Command(bin, args...)
			if tc.ignore {
				cmd = exec.Command("sh", append([]string{"-c", `trap "" INT; exec "$0" "$@"`, bin}, args...)...)
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			opened := make(chan *os.File, 1)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once the harness opened it
				if err != nil {
					opened <- nil
					return
				}
				opened <- w
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var w *os.File
			select {
			case w = <-opened:
			case err := <-exited:
				if tc.net == "lab" && strings.Contains(out.String(), "--net lab:") && os.Getenv("EC_COUNTER_REQUIRE_LAB") != "1" {
					t.Skipf("the lab is not available here: %s", out.String())
				}
				t.Fatalf("the harness ended before it opened the workload: %v\n%s", err, out.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("the harness did not open the workload in 30s:\n%s", out.String())
			}
			if w == nil {
				t.Fatal("could not open the FIFO for writing")
			}
			defer w.Close()
			if _, err := w.WriteString(`{"client":0,"f":"set","value":1}` + "\n"); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(4 * time.Second): // less than the FIFO's idle timeout
				t.Fatalf("still running 4s after %s:\n%s", tc.sig, out.String())
			}
			code := 0
			if ee, ok := errors.AsType[*exec.ExitError](err); ok {
				code = ee.ExitCode()
			}
			if code != exitCrashed || !strings.Contains(out.String(), "interrupted") {
				t.Fatalf("exit %d after %s, want %d and a line saying it was interrupted:\n%s", code, tc.sig, exitCrashed, out.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a command writes while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestInterruptedRunLeavesTheReport: Ctrl-C mid-run ends at once with
// 255, keeps the history, and leaves report.html to serve rather than make
// the user wait for it (26 s for a 470 MB history before).
func TestInterruptedRunLeavesTheReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	store := filepath.Join(t.TempDir(), "store")
	cmd := exec.Command(buildEcCounter(t), "test", "--net", "loopback", "--requests", "1000", "--rate", "20", "--store", store)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "cluster up"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no cluster up in 30s:\n%s", out.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // some ops in the history
	cmd.Process.Signal(syscall.SIGINT)
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGINT:\n%s", out.String())
	}
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	}
	if code != exitCrashed || !strings.Contains(out.String(), "report.html not written (interrupted)") {
		t.Fatalf("exit %d, want %d saying the report was left for later:\n%s", code, exitCrashed, out.String())
	}
	run, err := filepath.EvalSymlinks(filepath.Join(store, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "report.html")); !os.IsNotExist(err) {
		t.Errorf("report.html of an interrupted run: %v, want none", err)
	}
	if b, err := os.ReadFile(filepath.Join(run, "history.jsonl")); err != nil || len(b) == 0 {
		t.Errorf("the interrupted run's history is lost: %v", err)
	}
}
