package nemesis_test

import (
	"fmt"
	"strings"

	"github.com/ec-counter/ec-counter/nemesis"
)

// A scripted schedule: targets left open ("isolate" without a node, "one")
// are resolved from the seed, so the schedule prints concretely and replays
// exactly.
func ExampleParseSchedule() {
	text := `
# at   action            arguments
0s     start-partition   isolate n1
2s     stop-partition
3s     kill              one
5s     restart           all
6s     start-link        delay=200ms jitter=50ms loss=10% nodes=n2,n3
8s     stop-link
`
	s, err := nemesis.ParseSchedule(strings.NewReader(text), []string{"n1", "n2", "n3"}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(s)
	fmt.Println("network faults:", s.NetworkFaults())
	// Output:
	// 0s        start-partition  isolate n1
	// 2s        stop-partition
	// 3s        kill             n3
	// 5s        restart          n3
	// 6s        start-link       delay=200ms jitter=50ms loss=10% nodes=n2,n3
	// 8s        stop-link
	// network faults: true
}
