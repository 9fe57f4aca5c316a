// Package jsonscan scans the subset of JSON that the fast paths of the
// history and workload decoders accept: objects whose strings are
// printable ASCII without escapes, integers in int64's range and the
// literals true, false and null. Anything else makes a method report
// false, and the caller falls back to encoding/json.
package jsonscan

import "strconv"

// Scanner reads one JSON text from its start.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner of b.
func New(b []byte) Scanner { return Scanner{b: b} }

// Pos is the offset of the next byte to read.
func (s *Scanner) Pos() int { return s.i }

// Space consumes white space.
func (s *Scanner) Space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// AtEnd consumes white space and reports whether nothing follows.
func (s *Scanner) AtEnd() bool {
	s.Space()
	return s.i == len(s.b)
}

// Peek returns the next byte after white space, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.Space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Skip consumes c, after white space, if it comes next.
func (s *Scanner) Skip(c byte) bool {
	if s.Peek() != c {
		return false
	}
	s.i++
	return true
}

// Literal consumes word (true, false, null), after white space, if it
// comes next.
func (s *Scanner) Literal(word string) bool {
	s.Space()
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// Str scans a string of printable ASCII without escapes, and returns its
// contents.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Skip('"') {
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

// Int scans a JSON number that is an integer in int64's range, written
// -?(0|[1-9][0-9]*).
func (s *Scanner) Int() (int64, bool) {
	s.Space()
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
