package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
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
		{"\n" + `{"client":0,"f":"set","value":7}` + "\n\n" + `{"client":0,"f":"set","value":5}` + "\n" + `{"client":1,"f":"set","value":7}` + "\n" + `{"client":1,"f":"set","value":5}`,
			"line 5: set value 7 was already used on line 2"},
		{`{"client":0,"f":"get","who":1}`, "unknown field"},
		{`{"client":0,"f":"get"} {"client":1,"f":"get"}`, "more than one"},
		{`{"client":0,"f":"get"}}`, "more than one"},
		{`{"client":0,"f":"get","client":1}`, `line 1: key "client" given twice`},
		{`{"client":0,"f":"set","value":1,"value":2}`, `line 1: key "value" given twice`},
		{`{"client":0,"f":"get","at":"1s","at":null}`, `line 1: key "at" given twice`},
		{`{"client":0,"f":"get","f":"set","value":1}`, `line 1: key "f" given twice`},
		{"{\"client\":0,\"f\":\"get\"}\n{\"Client\":0,\"f\":\"get\"}", `line 2: key "Client": keys are case-sensitive, write "client"`},
		{`{"client":0,"F":"get"}`, `key "F": keys are case-sensitive, write "f"`},
		{`{"client":0,"f":"set","VALUE":3}`, `key "VALUE": keys are case-sensitive`},
		{`{"client":0,"f":"get","At":"1s"}`, `key "At": keys are case-sensitive`},
		{`[1]`, "not a request"},
		{strings.Repeat("x", 5000), "longer than"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.60q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParse: Parse never panics, and whatever it accepts encodes and parses
// back to the same workload.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"client": 0, "f": "set", "value": 57}` + "\n" + `{"client": 1, "f": "get", "at": "1.5s"}`))
	f.Add([]byte(`{"client": 0, "f": "get", "value": null}`))
	f.Add([]byte(`{"client": 3, "f": "set", "value": -9223372036854775808, "at": "1h2m3.5s"}`))
	f.Add([]byte(`{"client":0,"f":"get","client":1}`))
	f.Add([]byte(`{"CLIENT":0,"f":"get"}`))
	f.Add([]byte("\n\n{\"client\":0,\"f\":\"set\",\"value\":1}\n\n{\"client\":1,\"f\":\"set\",\"value\":1}"))
	f.Add([]byte(`{"client":0,"f":"s\u0065t","value":2,"at":"1\u002e5s"}`))
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

// FuzzParseLine: the fast decoder decodes every line it takes exactly as
// the strict encoding/json decoder does (same request, or same error), and
// a line either accepts has each key once, written as it must be.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"client": 0, "f": "set", "value": 57}`,
		`{"client":1,"f":"get","at":"1.5s"}`,
		`{"client":1,"f":"get","value":null,"at":null}`,
		`{"client":-0,"f":"set","value":-0}`,
		`{"client":0,"f":"get","client":1}`,
		`{"Client":0,"f":"get"}`,
		`{"client":0,"f":"g\u0065t"}`,
		`{"client":0,"f":"set","value":1e3}`,
		`{"client":0,"f":"get"}}`,
		`{"client":00,"f":"get"}`,
		`{"client":null,"f":"get"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var fast fields
		if !fast.decodeFast(text) {
			return
		}
		slow, err := decode(text)
		if err != nil {
			t.Fatalf("%s: fast decoded %+v, encoding/json refused: %v", text, fast, err)
		}
		freq, ferr := fast.request()
		sreq, serr := slow.request()
		if freq != sreq || fmt.Sprint(ferr) != fmt.Sprint(serr) {
			t.Fatalf("%s: fast %+v, %v; encoding/json %+v, %v", text, freq, ferr, sreq, serr)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(text, &keys); err != nil {
			t.Fatalf("%s: not a JSON object: %v", text, err)
		}
		for k := range keys {
			if keyBit(k) == 0 {
				t.Fatalf("%s: accepted key %q", text, k)
			}
		}
		if n := countKeys(t, text); n != len(keys) {
			t.Fatalf("%s: %d keys written, %d distinct", text, n, len(keys))
		}
	})
}

// countKeys counts the keys of a JSON object, each time one is written.
func countKeys(t *testing.T, text []byte) int {
	dec := json.NewDecoder(bytes.NewReader(text))
	n := 0
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for ; dec.More(); n++ {
		var v json.RawMessage
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// writeFile writes lines to a file in a temporary directory.
func writeFile(t testing.TB, name string, write func(*bytes.Buffer)) string {
	t.Helper()
	var b bytes.Buffer
	write(&b)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseFileCountsFirst: a file of more than MaxRequests lines is
// refused by counting them, before any is parsed (it took 24 s and 2.2 GB
// to parse ten million requests and refuse the next).
func TestParseFileCountsFirst(t *testing.T) {
	p := writeFile(t, "big.jsonl", func(b *bytes.Buffer) {
		b.WriteString("\n")
		for range MaxRequests + 1 {
			b.WriteString("{}\n")
		}
	})
	start := time.Now()
	_, err := ParseFile(context.Background(), p)
	if want := fmt.Sprintf("%s: workload line %d: more than %d requests", p, MaxRequests+2, MaxRequests); err == nil || err.Error() != want {
		t.Fatalf("ParseFile = %v, want %q", err, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s to refuse", took)
	}
}

// TestParseFileLargest parses the largest file accepted, and one request
// more, within seconds and a bounded heap.
func TestParseFileLargest(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes and parses 340 MB, and measures it")
	}
	var b bytes.Buffer
	if err := Plan(1, 100, MaxRequests/100, ValuesBoundaries).Encode(&b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	largest, over := filepath.Join(dir, "largest.jsonl"), filepath.Join(dir, "over.jsonl")
	if err := os.WriteFile(largest, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b.WriteString(`{"client":0,"f":"get"}` + "\n")
	if err := os.WriteFile(over, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b = bytes.Buffer{}
	runtime.GC()
	start := time.Now()
	if _, err := ParseFile(context.Background(), over); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("ParseFile(over) = %v", err)
	}
	t.Logf("refused %d requests in %s", MaxRequests+1, time.Since(start).Round(time.Millisecond))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start = time.Now()
	w, err := ParseFile(context.Background(), largest)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil || len(w) != MaxRequests {
		t.Fatalf("ParseFile(largest) = %d requests, %v", len(w), err)
	}
	t.Logf("parsed %d requests in %s, %d MiB allocated", len(w), took.Round(time.Millisecond), (after.TotalAlloc-before.TotalAlloc)>>20)
	if total := after.TotalAlloc - before.TotalAlloc; total > 600<<20 {
		t.Errorf("allocated %d MiB, want at most 600 (the workload itself is 480)", total>>20)
	}
}

// TestParseFileAnyFile: whatever the path is, ParseFile answers at once.
func TestParseFileAnyFile(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.jsonl")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(context.Background(), zero); err == nil || !strings.HasPrefix(err.Error(), zero+": workload line 1 ") {
		t.Errorf("ParseFile(/dev/zero) = %v, want line 1 refused", err)
	}
	huge := filepath.Join(dir, "huge.jsonl")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, MaxFileSize+1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	if _, err := ParseFile(context.Background(), huge); err == nil || !strings.Contains(err.Error(), "larger than 2048 MiB") {
		t.Errorf("ParseFile(huge) = %v, want too large", err)
	}
	if _, err := ParseFile(context.Background(), dir); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("ParseFile(directory) = %v", err)
	}
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO:", err)
	}
	if _, err := ParseFile(context.Background(), fifo); err == nil || err.Error() != fifo+": the workload holds no request" {
		t.Errorf("ParseFile(FIFO without writer) = %v, want no request", err)
	}
}

// TestParseFileInterrupt: a parse waiting on a FIFO whose writer goes on
// writing stops as soon as its context ends.
func TestParseFileInterrupt(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO:", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Opened for reading too, so that opening does not wait for the parse.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			fmt.Fprintf(f, `{"client":0,"f":"set","value":%d}`+"\n", i)
			time.Sleep(time.Millisecond)
		}
	}()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = ParseFile(ctx, fifo)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("ParseFile = %v after %s, want canceled at once", err, time.Since(start))
	}
}

// BenchmarkParse parses a seeded workload of 100,000 requests (-benchmem:
// bytes per op, against the 4.8 MB the workload itself takes).
func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	if err := Plan(1, 10, 10_000, ValuesBoundaries).Encode(&buf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
