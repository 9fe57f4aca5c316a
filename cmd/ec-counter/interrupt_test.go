package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
