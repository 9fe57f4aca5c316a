package workload

import (
	"bytes"
	"reflect"
	"testing"
)

// TestPlanRoundTrips: a seeded plan interleaves its clients, and encodes
// and parses back to itself, as a stored run's workload.jsonl must.
func TestPlanRoundTrips(t *testing.T) {
	w := Plan(7, 3, 50, ValuesBoundaries)
	if len(w) != 150 || w.Clients() != 3 || w.MaxPerClient() != 50 {
		t.Fatalf("%d requests, %d clients, %d most", len(w), w.Clients(), w.MaxPerClient())
	}
	for i, r := range w[:6] {
		if r.Client != i%3 {
			t.Fatalf("request %d is client %d's, want %d's (round-robin)", i, r.Client, i%3)
		}
	}
	for c, reqs := range w.ByClient() {
		if !reflect.DeepEqual(reqs, PlanClient(7, c, 3, 50, ValuesBoundaries)) {
			t.Fatalf("client %d's requests differ from its plan", c)
		}
	}
	var buf bytes.Buffer
	if err := w.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, w) {
		t.Fatal("the plan did not parse back to itself")
	}
}
