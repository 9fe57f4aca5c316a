package checker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

// BenchmarkCheck1M checks a realistic history of a million ops, already in
// memory: 10 clients on 3 servers with overlapping requests, half of them
// sets, nemesis ops, and final reads at the end.
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

// BenchmarkCheckFile compares, on the same generated history files of 1 and
// 10 million ops, what "ec-counter check" does (CheckHistory: decode and
// check in one streaming pass) with reading the whole history into memory
// first and checking that, and with porcupine checking each server (1M
// only: it takes tens of seconds). Each reports the peak of live heap
// (heap-MB) sampled while it runs; the whole process's peak RSS is that plus
// the runtime's overhead. Run with -benchtime 1x:
//
//	go test ./checker -run '^$' -bench CheckFile -benchtime 1x
func BenchmarkCheckFile(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		path := historyFile(b, n)
		name := fmt.Sprintf("%dM", n/1_000_000)
		b.Run("stream-"+name, func(b *testing.B) {
			peak := heapPeak(b, func() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				k, err := CheckHistory(f)
				if err != nil {
					b.Fatal(err)
				}
				if r := k.Result(); r.Valid != Valid {
					b.Fatalf("judged %s:\n%s", r.Valid, summary(r))
				}
			})
			b.ReportMetric(peak, "heap-MB")
		})
		b.Run("in-memory-"+name, func(b *testing.B) {
			peak := heapPeak(b, func() {
				ops, err := histories.ReadFile(path)
				if err != nil {
					b.Fatal(err)
				}
				if r := Check(ops); r.Valid != Valid {
					b.Fatalf("judged %s", r.Valid)
				}
			})
			b.ReportMetric(peak, "heap-MB")
		})
		if n > 1_000_000 {
			continue
		}
		b.Run("porcupine-"+name, func(b *testing.B) {
			peak := heapPeak(b, func() {
				ops, err := histories.ReadFile(path)
				if err != nil {
					b.Fatal(err)
				}
				for _, node := range []string{"n1", "n2", "n3"} {
					if _, _, err := CheckServerPorcupine(ops, node, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(peak, "heap-MB")
		})
	}
}

// historyFile writes clusterHistory's history of n ops to a file, once per
// size, kept in the system's temporary directory between runs.
func historyFile(b *testing.B, n int) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("ec-counter-bench-history-%d.jsonl", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	genCluster(1, 10, 3, n, func(op histories.Op) {
		if err == nil {
			err = enc.Encode(&op)
		}
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// heapPeak runs f b.N times and returns the largest live heap, in MB, seen
// while it ran (sampled every millisecond, after a collection before the
// start).
func heapPeak(b *testing.B, f func()) float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		f()
	}
	b.StopTimer()
	close(stop)
	return float64(<-done) / (1 << 20)
}
