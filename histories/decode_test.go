package histories

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeOp: the fast decoder decodes every line exactly as
// encoding/json does, and fails exactly when it fails.
func FuzzDecodeOp(f *testing.F) {
	for _, line := range []string{
		`{"index":0,"time":1200,"type":"invoke","process":0,"f":"set","value":57,"node":"n1"}`,
		`{"index":1,"time":2350,"type":"ok","process":0,"f":"set","value":57,"node":"n1","applied":true,"current":57}`,
		`{"index":2,"time":2400,"type":"info","process":"nemesis","f":"start-partition","value":{"n1":["n2"]}}`,
		`{"index":3,"time":2500,"type":"fail","process":7,"f":"get","node":"n2","error":"timeout"}`,
		`{"index":4,"time":1,"type":"ok","process":1,"f":"get","value":null,"current":null,"applied":false}`,
		`{"index":1,"index":2,"time":1,"type":"ok","process":1,"f":"get","value":3}`,
		`{"Index":5,"time":1,"type":"ok","process":1,"f":"get","value":01}`,
		`{"index":5,"time":1e3,"type":"ok","process":1,"f":"get","value":1.0}`,
		`{"index":5,"time":1,"type":"ok","process":"nem\u0065sis","f":"get","value":-0}`,
		`{"index":5,"time":1,"type":"ok","process":4294967296,"f":"get","value":9223372036854775808}`,
		`{"index":5,"time":1,"type":"ok","process":1,"f":"g\u00e9t","node":"\xff"}`,
		`{"index":5} x`,
		`[1]`,
	} {
		f.Add([]byte(line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var d decoder
		var fast Op
		fastErr := d.decode(line, &fast)
		var slow Op
		slowErr := json.Unmarshal(line, &slow)
		if slowErr == nil && !slow.Type.Valid() || slowErr == nil && slow.F == "" {
			slowErr = errSentinel
		}
		if (fastErr == nil) != (slowErr == nil) {
			t.Fatalf("%s: decoder error %v, encoding/json error %v", line, fastErr, slowErr)
		}
		if fastErr == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s:\ndecoder       %#v\nencoding/json %#v", line, fast, slow)
		}
	})
}

var errSentinel = json.Unmarshal([]byte("x"), new(int))

// TestDecodeTakesTheFastPath keeps the common lines on the fast path: a
// change that sent them all to encoding/json would pass every other test
// and be several times slower.
func TestDecodeTakesTheFastPath(t *testing.T) {
	for _, line := range []string{
		`{"index":0,"time":1200,"type":"invoke","process":0,"f":"set","value":57,"node":"n1"}`,
		`{"index":1,"time":2350,"type":"ok","process":0,"f":"set","value":57,"node":"n1","applied":true,"current":57}`,
		`{"index":2,"time":2351,"type":"invoke","process":0,"f":"get","node":"n1"}`,
		`{"index":3,"time":2500,"type":"fail","process":7,"f":"get","node":"n2","error":"timeout"}`,
		`{"index":4,"time":2600,"type":"info","process":"nemesis","f":"kill","value":null}`,
	} {
		var d decoder
		var op Op
		if !d.fast([]byte(line), &op) {
			t.Errorf("%s: not decoded on the fast path", line)
		}
	}
}
