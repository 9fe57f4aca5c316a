package labhosts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/lab"
)

// sleepers lists this machine's processes (the test hosts share them)
// whose command line is exactly cmd.
func sleepers(cmd string) []string {
	var found []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") == cmd {
			found = append(found, f)
		}
	}
	return found
}

// A host whose command hangs (here nft, as on a stuck kernel) fails the
// preflight by the context's deadline, and what hung is killed there: it
// used to hang doctor, and a given-up command ran on.
func TestHungHostCommandIsKilled(t *testing.T) {
	_, hf := Up(t, 1)
	slow := filepath.Join(t.TempDir(), "slow-nft")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 6001\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hf.Hosts[0].Nft = slow
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	reps := lab.CheckHosts(ctx, hf, lab.FleetOptions{Nft: true})
	took := time.Since(start)
	if took > 5*time.Second || reps[0].OK() || !strings.Contains(strings.Join(reps[0].Problems(), "; "), "no answer within 2s (killed)") {
		t.Errorf("a host whose nft hangs: %q after %s, want a failure by the 2s deadline", reps[0].Problems(), took)
	}
	for deadline := time.Now().Add(3 * time.Second); len(sleepers("sleep 6001")) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hung command outlived the preflight that gave up on it: %v", sleepers("sleep 6001"))
		}
	}
}
