// Package labhosts brings up test hosts on this machine for tests of SSH
// hosts (docs/ssh-hosts.md "Nodes on SSH hosts"), with scripts/lab-hosts.sh: network
// namespaces on a bridge, each running Debian's openssh-server.
package labhosts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/ec-counter/ec-counter/lab"
)

// EnvRequire set to 1 (as CI does) makes tests that need test hosts fail
// instead of skip where they cannot be made.
const EnvRequire = "EC_COUNTER_REQUIRE_HOSTS"

// Script returns the path of scripts/lab-hosts.sh.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "lab-hosts.sh")
}

// Need skips t (or fails it, with EnvRequire=1) unless test hosts can be
// made here: root, iproute2, nftables and openssh-server.
func Need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts SSH hosts; skipped with -short")
	}
	err := available()
	if err == nil {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(err)
	}
	t.Skip(err)
}

func available() error {
	if os.Geteuid() != 0 {
		return errors.New("test hosts need root (network namespaces, a bridge, sshd)")
	}
	for _, c := range []string{"ip", "nft", "ssh-keygen", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(c); err != nil {
			return errors.New("test hosts need iproute2, nftables and openssh-server: " + err.Error())
		}
	}
	return nil
}

// Up makes n test hosts for t, removed when t ends, and returns the path
// of their hosts file and the file itself.
func Up(t testing.TB, n int) (string, *lab.HostsFile) {
	t.Helper()
	Need(t)
	dir := filepath.Join(t.TempDir(), "hosts")
	out, err := exec.Command(Script(), "up", strconv.Itoa(n), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("lab-hosts.sh up: %v\n%s", err, out)
	}
	t.Cleanup(func() { Down(t, dir) })
	path := filepath.Join(dir, "hosts.toml")
	hf, err := lab.ReadHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, hf
}

// Down removes the hosts of dir (made by Up), once.
func Down(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "state")); err != nil {
		return
	}
	if out, err := exec.Command(Script(), "down", dir).CombinedOutput(); err != nil {
		t.Errorf("lab-hosts.sh down: %v\n%s", err, out)
	}
}
