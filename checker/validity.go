package checker

import (
	"bytes"
	"fmt"
)

// Validity is a checker's verdict. It encodes in JSON as true (valid), false
// (invalid) or "unknown", the values results.json uses (docs/store-and-exit-codes.md "Store layout"). The zero
// Validity is Unknown.
type Validity uint8

// The three verdicts.
const (
	Unknown Validity = iota // the history does not let the checker decide
	Valid                   // no anomaly was found
	Invalid                 // at least one anomaly was found
)

// String returns "valid", "invalid" or "unknown".
func (v Validity) String() string {
	switch v {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	}
	return "unknown"
}

// MarshalJSON encodes Valid as true, Invalid as false and Unknown as "unknown".
func (v Validity) MarshalJSON() ([]byte, error) {
	switch v {
	case Valid:
		return []byte("true"), nil
	case Invalid:
		return []byte("false"), nil
	case Unknown:
		return []byte(`"unknown"`), nil
	}
	return nil, fmt.Errorf("invalid Validity %d", uint8(v))
}

// UnmarshalJSON accepts true, false and "unknown".
func (v *Validity) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true":
		*v = Valid
	case "false":
		*v = Invalid
	case `"unknown"`:
		*v = Unknown
	default:
		return fmt.Errorf(`validity must be true, false or "unknown", got %s`, b)
	}
	return nil
}

// combine returns the verdict of several checks together: invalid if any is
// invalid, else unknown if any is unknown, else valid.
func combine(vs ...Validity) Validity {
	out := Valid
	for _, v := range vs {
		switch {
		case v == Invalid:
			return Invalid
		case v != Valid:
			out = Unknown
		}
	}
	return out
}
