package histories

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ec-counter/ec-counter/internal/jsonscan"
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
	s := jsonscan.New(line)
	if !s.Skip('{') {
		return false
	}
	seen := 0
	for first := true; ; first = false {
		if s.Skip('}') {
			break
		}
		if !first && !s.Skip(',') {
			return false
		}
		key, ok := s.Str()
		if !ok || !s.Skip(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "index":
			bit = keyIndex
			op.Index, ok = s.Int()
		case "time":
			bit = keyTime
			op.Time, ok = s.Int()
		case "type":
			bit = keyType
			var t string
			t, ok = d.str(&s)
			op.Type = Type(t)
		case "process":
			bit = keyProcess
			if s.Peek() == '"' {
				var p []byte
				p, ok = s.Str()
				ok = ok && string(p) == "nemesis"
				op.Process = Nemesis
			} else {
				var n int64
				n, ok = s.Int()
				ok = ok && n >= 0 && n <= 1<<31-1
				op.Process = Process(n)
			}
		case "f":
			bit = keyF
			op.F, ok = d.str(&s)
		case "value":
			bit = keyValue
			if s.Literal("null") {
				op.Value = json.RawMessage("null")
			} else {
				start := s.Pos()
				_, ok = s.Int()
				op.Value = json.RawMessage(string(line[start:s.Pos()]))
			}
		case "node":
			bit = keyNode
			op.Node, ok = d.str(&s)
		case "applied":
			bit = keyApplied
			var b bool
			switch {
			case s.Literal("true"):
				b = true
			case s.Literal("false"):
			default:
				ok = false
			}
			op.Applied = &b
		case "current":
			bit = keyCurrent
			var n int64
			n, ok = s.Int()
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
	return s.AtEnd()
}

// str scans a string, interning it.
func (d *decoder) str(s *jsonscan.Scanner) (string, bool) {
	b, ok := s.Str()
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
