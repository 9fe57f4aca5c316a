package checker

import (
	"testing"
)

// BenchmarkCheck1M checks a realistic history of a million ops: 10 clients
// on 3 servers with overlapping requests, half of them sets, nemesis ops,
// and final reads at the end.
func BenchmarkCheck1M(b *testing.B) {
	ops := clusterHistory(1, 10, 3, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := Check(ops); r.Valid != Valid {
			b.Fatalf("judged %s:\n%s", r.Valid, summary(r))
		}
	}
	b.ReportMetric(float64(len(ops)), "ops")
}
