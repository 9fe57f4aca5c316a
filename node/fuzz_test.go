package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// FuzzReadSetBody: any body gives a value or an error, never a panic; a
// value is accepted only if the body is one JSON object whose only
// "value" key holds exactly that integer.
func FuzzReadSetBody(f *testing.F) {
	for _, s := range []string{`{"value": 57}`, `{"value": 57.0}`, `{"value":50,"value":40}`, `{"value": 9223372036854775808}`, `[57]`, ``, `{"value": -9223372036854775808}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/counter", bytes.NewReader(body))
		v, err := readSetBody(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		if got, perr := strconv.ParseInt(string(bytes.TrimSpace(m["value"])), 10, 64); perr != nil || got != v {
			t.Fatalf("accepted %q as %d; its value is %s", body, v, m["value"])
		}
		if checkDuplicateKeys(body) != nil {
			t.Fatalf("accepted %q, which has a duplicate key", body)
		}
	})
}

// FuzzParseFaultSet: any body gives a fault table or an error, never a
// panic; an accepted set re-encodes to one that parses to the same table.
func FuzzParseFaultSet(f *testing.F) {
	for _, s := range []string{
		`{"links": {}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": true}, "out": {"delay_ms": 200, "jitter_ms": 50, "loss": 0.2}}}}`,
		`{"links": {"[::1]:7946": {"out": {"loss": 1}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": true}}}, "links": {}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ft, err := parseFaultSet(body)
		if err != nil {
			return
		}
		again, err := json.Marshal(ft.spec)
		if err != nil {
			t.Fatalf("encode %+v: %v", ft.spec, err)
		}
		ft2, err := parseFaultSet(again)
		if err != nil {
			t.Fatalf("%q parsed, but its encoding %s does not: %v", body, again, err)
		}
		if b2, _ := json.Marshal(ft2.spec); !bytes.Equal(again, b2) {
			t.Fatalf("round trip changed the set: %s then %s", again, b2)
		}
	})
}
