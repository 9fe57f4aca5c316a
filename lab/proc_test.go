package lab

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// TestLiveInGroup finds a live process by its group, and not once it has
// exited.
func TestLiveInGroup(t *testing.T) {
	if !ProcMatches() {
		t.Skip("/proc shows another PID namespace")
	}
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	if got := LiveInGroup(pgid); !slices.Equal(got, []int{pgid}) {
		t.Errorf("LiveInGroup(%d) = %v while sleep runs", pgid, got)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := LiveInGroup(pgid); len(got) != 0 {
		t.Errorf("LiveInGroup(%d) = %v after sleep exited", pgid, got)
	}
}
