package histories

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// decoder decodes history lines. Most lines are flat objects of known keys
// whose values are integers, strings, booleans or null; those it scans
// itself, several times faster than encoding/json. Anything else (an
// unknown, duplicate or differently cased key, escapes or non-ASCII bytes,
// a number that is not a plain integer, a nested value, a null where
// encoding/json would leave a field alone, or anything that is not JSON)
// it hands to encoding/json, so that every line decodes exactly as
// encoding/json decodes it into an Op (FuzzDecodeOp compares the two), and
// errors read the same.
type decoder struct {
	// names holds strings recently decoded, by a hash of their bytes, so
	// that the few a history repeats (types, fs, node names) are not
	// allocated again on every line.
	names [256]string
}

// decode decodes one line into op, which must be zero.
func (d *decoder) decode(line []byte, op *Op) error {
	if !d.fast(line, op) {
		*op = Op{}
		if err := json.Unmarshal(line, op); err != nil {
			return err
		}
	}
	if !op.Type.Valid() {
		return fmt.Errorf("unknown op type %q", op.Type)
	}
	if op.F == "" {
		return errors.New("op has no f")
	}
	return nil
}

// The keys of an Op, as bits, to catch a key given twice.
const (
	keyIndex = 1 << iota
	keyTime
	keyType
	keyProcess
	keyF
	keyValue
	keyNode
	keyApplied
	keyCurrent
	keyError
)

// fast decodes line into op if it has the common shape, and reports whether
// it did; op is left partly filled when it did not.
func (d *decoder) fast(line []byte, op *Op) bool {
	s := scanner{b: line}
	if !s.skip('{') {
		return false
	}
	seen := 0
	for first := true; ; first = false {
		if s.skip('}') {
			break
		}
		if !first && !s.skip(',') {
			return false
		}
		key, ok := s.str()
		if !ok || !s.skip(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "index":
			bit = keyIndex
			op.Index, ok = s.int()
		case "time":
			bit = keyTime
			op.Time, ok = s.int()
		case "type":
			bit = keyType
			var t string
			t, ok = d.str(&s)
			op.Type = Type(t)
		case "process":
			bit = keyProcess
			if s.peek() == '"' {
				var p []byte
				p, ok = s.str()
				ok = ok && string(p) == "nemesis"
				op.Process = Nemesis
			} else {
				var n int64
				n, ok = s.int()
				ok = ok && n >= 0 && n <= 1<<31-1
				op.Process = Process(n)
			}
		case "f":
			bit = keyF
			op.F, ok = d.str(&s)
		case "value":
			bit = keyValue
			if s.literal("null") {
				op.Value = json.RawMessage("null")
			} else {
				start := s.i
				_, ok = s.int()
				op.Value = json.RawMessage(string(line[start:s.i]))
			}
		case "node":
			bit = keyNode
			op.Node, ok = d.str(&s)
		case "applied":
			bit = keyApplied
			var b bool
			switch {
			case s.literal("true"):
				b = true
			case s.literal("false"):
			default:
				ok = false
			}
			op.Applied = &b
		case "current":
			bit = keyCurrent
			var n int64
			n, ok = s.int()
			op.Current = &n
		case "error":
			bit = keyError
			op.Error, ok = d.str(&s)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	s.space()
	return s.i == len(s.b)
}

// str scans a string, interning it.
func (d *decoder) str(s *scanner) (string, bool) {
	b, ok := s.str()
	if !ok {
		return "", false
	}
	h := uint32(2166136261) // FNV-1a
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &d.names[h%uint32(len(d.names))]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot, true
}

// scanner reads the JSON subset the fast path accepts.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// skip consumes c, after white space, if it comes next.
func (s *scanner) skip(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// literal consumes word (true, false, null) if it comes next.
func (s *scanner) literal(word string) bool {
	s.space()
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// str scans a string of printable ASCII without escapes, and returns its
// contents.
func (s *scanner) str() ([]byte, bool) {
	if !s.skip('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// int scans a JSON number that is an integer in int64's range, written
// -?(0|[1-9][0-9]*).
func (s *scanner) int() (int64, bool) {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i > digits+1) {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}
