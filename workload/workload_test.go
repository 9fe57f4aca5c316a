package workload

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
)

func TestParse(t *testing.T) {
	good := `{"client": 0, "f": "set", "value": 57}

{"client": 1, "f": "get"}
{"client": 0, "f": "get", "at": "1.5s"}
{"client": 1, "f": "get", "value": null, "at": "0s"}
`
	w, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Workload{
		{Client: 0, F: histories.FSet, Value: 57},
		{Client: 1, F: histories.FGet},
		{Client: 0, F: histories.FGet, At: 1500 * time.Millisecond, HasAt: true},
		{Client: 1, F: histories.FGet, HasAt: true},
	}
	if !reflect.DeepEqual(w, want) {
		t.Fatalf("parsed %+v, want %+v", w, want)
	}
	if w.Clients() != 2 || w.MaxPerClient() != 2 || w.Duration() != 1500*time.Millisecond {
		t.Errorf("clients %d, most %d, duration %s", w.Clients(), w.MaxPerClient(), w.Duration())
	}
	for _, tc := range []struct{ in, want string }{
		{"", "no request"},
		{"\n\n", "no request"},
		{`{"f":"get"}`, `line 1: no "client"`},
		{`{"client":-1,"f":"get"}`, "outside"},
		{`{"client":10000,"f":"get"}`, "outside"},
		{`{"client":1.5,"f":"get"}`, "line 1: not a request"},
		{`{"client":0,"f":"cas"}`, `"f" must be get or set`},
		{`{"client":0,"f":"set"}`, "needs an integer"},
		{`{"client":0,"f":"set","value":1.5}`, "not an integer"},
		{`{"client":0,"f":"set","value":9223372036854775808}`, "not an integer"},
		{`{"client":0,"f":"get","value":3}`, "takes no"},
		{`{"client":0,"f":"get","at":"soon"}`, `"at" must be`},
		{`{"client":0,"f":"get","at":"-1s"}`, `"at" must be`},
		{`{"client":0,"f":"get","at":"25h"}`, `"at" must be`},
		{`{"client":0,"f":"get","at":"2s"}` + "\n" + `{"client":0,"f":"get","at":"1s"}`, "line 2: client 0's"},
		{`{"client":0,"f":"set","value":5}` + "\n" + `{"client":1,"f":"set","value":5}`, "line 2: set value 5 was already used on line 1"},
		{`{"client":0,"f":"get","who":1}`, "unknown field"},
		{`{"client":0,"f":"get"} {"client":1,"f":"get"}`, "more than one"},
		{`[1]`, "not a request"},
		{strings.Repeat("x", 5000), "longer than"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.60q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

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

// FuzzParse: Parse never panics, and whatever it accepts encodes and parses
// back to the same workload.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"client": 0, "f": "set", "value": 57}` + "\n" + `{"client": 1, "f": "get", "at": "1.5s"}`))
	f.Add([]byte(`{"client": 0, "f": "get", "value": null}`))
	f.Add([]byte(`{"client": 3, "f": "set", "value": -9223372036854775808, "at": "1h2m3.5s"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		w, err := Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := w.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(&buf)
		if err != nil {
			t.Fatalf("%s: encoded as %s, which does not parse: %v", in, buf.Bytes(), err)
		}
		if !reflect.DeepEqual(back, w) {
			t.Fatalf("%s: parsed back as %+v, want %+v", in, back, w)
		}
	})
}
