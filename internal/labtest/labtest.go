// Package labtest runs a package's tests inside the private namespaces the
// lab needs, so that tests may build labs without touching this machine's
// network.
package labtest

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/lab"
)

// envOutside tells the tests, in the same process, why they run outside.
const envOutside = "EC_COUNTER_LAB_TESTS_OUTSIDE"

// EnvRequire set to 1 (as CI does) makes tests that need the lab fail
// instead of skip where it is not available.
const EnvRequire = "EC_COUNTER_REQUIRE_LAB"

// Main runs m inside the namespace lab.Reexec makes: the test binary runs
// again there and Main exits with its code. Where that is impossible, the
// tests run here and Need skips (or fails) the tests that need the lab.
func Main(m *testing.M) int {
	if fuzzing() {
		// The fuzzer talks to its workers over inherited descriptors that a
		// re-executed binary would not keep: fuzz here, without the lab.
		os.Setenv(envOutside, "fuzzing")
	}
	if !lab.Inside() && os.Getenv(envOutside) == "" {
		code, err := lab.Reexec()
		if err == nil {
			return code
		}
		fmt.Fprintf(os.Stderr, "tests run outside a private namespace: %v\n", err)
		os.Setenv(envOutside, err.Error())
	}
	if lab.Inside() {
		if err := lab.Init(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// Need skips t, or fails it when EnvRequire is 1, unless the tests run
// inside the lab's namespace.
func Need(t testing.TB) {
	t.Helper()
	if lab.Inside() {
		return
	}
	msg := "the lab is not available here: " + os.Getenv(envOutside)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Env returns this process's environment without the lab's marker, for a
// child that must make its own namespace (an ec-counter command a test
// runs).
func Env() []string { return lab.OutsideEnv() }

// fuzzing reports whether the test binary runs a fuzz target or is one of
// the fuzzer's workers.
func fuzzing() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzz") {
			return true
		}
	}
	return false
}
