//go:build !race

package workload

// raceEnabled: the race detector multiplies time and memory several times,
// so tests that measure them skip.
const raceEnabled = false
