package jsonscan

import "testing"

func TestScanner(t *testing.T) {
	s := New([]byte(` {"a": -12, "b" :null, "c":"x"} `))
	if !s.Skip('{') {
		t.Fatal("no {")
	}
	if k, ok := s.Str(); !ok || string(k) != "a" || !s.Skip(':') {
		t.Fatalf("key a: %q %v", k, ok)
	}
	if n, ok := s.Int(); !ok || n != -12 {
		t.Fatalf("int: %d %v", n, ok)
	}
	if !s.Skip(',') {
		t.Fatal("no ,")
	}
	if k, ok := s.Str(); !ok || string(k) != "b" || !s.Skip(':') || !s.Literal("null") || !s.Skip(',') {
		t.Fatalf("key b: %q %v", k, ok)
	}
	if k, ok := s.Str(); !ok || string(k) != "c" || !s.Skip(':') {
		t.Fatalf("key c: %q %v", k, ok)
	}
	if v, ok := s.Str(); !ok || string(v) != "x" || !s.Skip('}') || !s.AtEnd() {
		t.Fatalf("value x: %q %v", v, ok)
	}
}

// What the fast paths leave to encoding/json is refused.
func TestScannerRefuses(t *testing.T) {
	for _, in := range []string{`01`, `1.5`, `1e3`, `-`, `99999999999999999999`, ``} {
		s := New([]byte(in))
		if n, ok := s.Int(); ok {
			t.Errorf("Int(%q) = %d, want refused", in, n)
		}
	}
	for _, in := range []string{`"a\"b"`, "\"\x01\"", `"é"`, `"open`, `x`} {
		s := New([]byte(in))
		if v, ok := s.Str(); ok {
			t.Errorf("Str(%q) = %q, want refused", in, v)
		}
	}
}
