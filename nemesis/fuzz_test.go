package nemesis

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseSchedule: any text parses to a schedule or an error naming its
// line, never a panic; a schedule that parses prints in the format it was
// read from, and reads back to itself: Parse(s.String()) == s.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{
		"0s start-partition isolate n1\n2s stop-partition\n3s kill n2\n5s restart n2\n",
		"6s start-link delay=200ms jitter=50ms loss=10% nodes=all\n8s stop-link\n9s pause majority\n11s resume all\n",
		"1s start-partition n1,n2|n3 oneway # a comment\n",
		"1s start-partition majorities-ring\n1.5s start-partition bridge-oneway\n",
		"1.0005s kill n1\n",
		"0s restart all\n",
	} {
		f.Add(s)
	}
	nodes := testNodes(3)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSchedule(strings.NewReader(text), nodes, 1)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "read schedule") {
				t.Fatalf("error %q does not name its line", err)
			}
			return
		}
		back, err := ParseSchedule(strings.NewReader(s.String()), nodes, 2)
		if err != nil {
			t.Fatalf("%q parsed to\n%s\nwhich does not parse: %v", text, s, err)
		}
		if len(s) == 0 && len(back) == 0 {
			return
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip differs:\n%s\n---\n%s", s, back)
		}
	})
}
