package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLiveLine: a run on a terminal (a pseudo-terminal made by script(1))
// shows a live line of its progress, redrawn in place and erased before
// the summary; the same run in a pipe prints only its phase lines.
func TestLiveLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to make a pseudo-terminal")
	}
	bin := buildEcCounter(t)
	args := []string{"test", "--net", "loopback", "--requests", "40", "--rate", "20", "--nemesis", "pause", "--nemesis-interval", "500ms"}

	store := filepath.Join(t.TempDir(), "store")
	cmdline := bin + " " + strings.Join(args, " ") + " --store " + store
	out, err := exec.Command(script, "-qfec", cmdline, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("on a terminal: %v\n%s", err, out)
	}
	tty := string(out)
	for _, want := range []string{"ops:", " ok, ", "faults: pause", "faults: none", "\r", "\033[K", "checks: valid"} {
		if !strings.Contains(tty, want) {
			t.Errorf("on a terminal, the output lacks %q:\n%q", want, tty)
		}
	}
	// Erased before the summary: no live text on the summary's lines.
	summary := tty[strings.Index(tty, "checks: valid"):]
	if strings.Contains(summary, "ops:") {
		t.Errorf("the live line is drawn over the summary:\n%q", summary)
	}

	code, piped := ecCounter(t, append(args, "--store", filepath.Join(t.TempDir(), "store"))...)
	if code != 0 {
		t.Fatalf("in a pipe: exit %d\n%s", code, piped)
	}
	if strings.Contains(piped, "\033[K") || strings.Contains(piped, "\r") || strings.Contains(piped, "ops: ") {
		t.Errorf("in a pipe, the output has a live line:\n%q", piped)
	}
}
