package checker

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ec-counter/ec-counter/histories"
)

// FuzzCheck: Check never panics, whatever history it is given, its
// verdict is one of the three, encodes, and agrees with its checks, and
// CheckHistory's streaming pass over the same bytes gives the same result.
func FuzzCheck(f *testing.F) {
	b := validBase()
	b.finals(20, 20)
	var seed bytes.Buffer
	histories.Encode(&seed, b.ops)
	f.Add(seed.Bytes())
	f.Add([]byte(`{"index":0,"time":0,"type":"ok","process":0,"f":"get","value":1}` + "\n"))
	f.Add([]byte(`{"index":0,"time":5,"type":"invoke","process":0,"f":"set","value":9223372036854775807,"node":"n1"}` + "\n" +
		`{"index":1,"time":4,"type":"ok","process":0,"f":"set","value":9223372036854775807,"node":"n1","applied":true,"current":-9223372036854775808}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ops, rerr := histories.Read(bytes.NewReader(in))
		r := Check(ops)
		// The streaming pass over the same bytes agrees exactly.
		k, serr := CheckHistory(bytes.NewReader(in))
		if (rerr == nil) != (serr == nil) {
			t.Fatalf("Read error %v, CheckHistory error %v", rerr, serr)
		}
		want, _ := json.Marshal(r)
		if got, _ := json.Marshal(k.Result()); !bytes.Equal(got, want) {
			t.Fatalf("CheckHistory and Check differ:\n%s\n%s", got, want)
		}
		switch r.Valid {
		case Valid, Invalid, Unknown:
		default:
			t.Fatalf("verdict %v", r.Valid)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("results do not encode: %v", err)
		}
		if r.Valid == Valid && len(r.Anomalies) > 0 {
			t.Fatalf("valid with %d anomalies", len(r.Anomalies))
		}
		if r.Valid == Invalid && len(r.Anomalies) == 0 {
			t.Fatalf("invalid without an anomaly")
		}
	})
}
