package histories

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const twoOps = `{"index":0,"time":1200,"type":"invoke","process":0,"f":"set","value":57,"node":"n1"}
{"index":1,"time":2350,"type":"ok","process":0,"f":"set","value":57,"node":"n1","applied":true,"current":57}
`

func TestReadHistories(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		ops       int
		truncated bool
		bad       string // a substring of the error, "" for none
	}{
		{"empty", "", 0, false, ""},
		{"two ops", twoOps, 2, false, ""},
		{"blank lines", "\n" + twoOps + "\n\n", 2, false, ""},
		{"no final newline", strings.TrimSuffix(twoOps, "\n"), 2, false, ""},
		{"cut short by a crash", twoOps + `{"index":2,"time":24`, 2, true, ""},
		{"not JSON", "hello", 0, false, "line 1"},
		{"a JSON array", "[1,2,3]", 0, false, "line 1"},
		{"a bad line in the middle", twoOps + "oops\n" + twoOps, 2, false, "line 3"},
		{"unknown type", `{"index":0,"time":1,"type":"maybe","process":0,"f":"get"}` + "\n", 0, false, "unknown op type"},
		{"no f", `{"index":0,"time":1,"type":"ok","process":0}` + "\n", 0, false, "no f"},
		{"a line too long", twoOps + `{"index":2,"value":"` + strings.Repeat("x", MaxLine) + "\"}\n", 2, false, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := Read(strings.NewReader(tc.in))
			if len(ops) != tc.ops {
				t.Errorf("%d ops, want %d", len(ops), tc.ops)
			}
			switch {
			case tc.truncated:
				if !errors.Is(err, ErrTruncated) {
					t.Errorf("error %v, want ErrTruncated", err)
				}
			case tc.bad != "":
				if err == nil || errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), tc.bad) {
					t.Errorf("error %v, want one naming %q (and not a truncation)", err, tc.bad)
				}
			case err != nil:
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestReadStopsAtAnEndlessLine reads from a stream of zeros, as
// "ec-counter check /dev/zero" does: it must fail after MaxLine bytes, not
// grow without end.
func TestReadStopsAtAnEndlessLine(t *testing.T) {
	zeros := &countingReader{r: zeroReader{}}
	_, err := Read(zeros)
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("error %v", err)
	}
	if zeros.n > 2*MaxLine {
		t.Errorf("read %d bytes before giving up; want about %d", zeros.n, MaxLine)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzRead: any input gives ops and an error, never a panic; what it
// decodes encodes and decodes back to the same ops.
func FuzzRead(f *testing.F) {
	f.Add([]byte(twoOps))
	f.Add([]byte(twoOps + `{"index":2,"time":24`))
	f.Add([]byte(`{"index":2,"time":2400,"type":"info","process":"nemesis","f":"start-partition","value":{"n1":["n2"]}}` + "\n"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ops, _ := Read(bytes.NewReader(in))
		var buf bytes.Buffer
		if err := Encode(&buf, ops); err != nil {
			t.Fatalf("encode what was read: %v", err)
		}
		again, err := Read(&buf)
		if err != nil || len(again) != len(ops) {
			t.Fatalf("read back %d ops (%v), want %d", len(again), err, len(ops))
		}
	})
}
