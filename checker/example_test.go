package checker_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
)

// A server that forgot an acknowledged set: the read of 0 after the ok set
// of 5 on the same server breaks the max register.
func ExampleCheck() {
	ops, err := histories.Read(strings.NewReader(`{"index":0,"time":100000000,"type":"invoke","process":0,"f":"set","value":5,"node":"n1"}
{"index":1,"time":200000000,"type":"ok","process":0,"f":"set","value":5,"node":"n1","applied":true,"current":5}
{"index":2,"time":300000000,"type":"invoke","process":1,"f":"get","node":"n1"}
{"index":3,"time":400000000,"type":"ok","process":1,"f":"get","value":0,"node":"n1"}
{"index":4,"time":500000000,"type":"invoke","process":2,"f":"final-get","node":"n1"}
{"index":5,"time":600000000,"type":"ok","process":2,"f":"final-get","value":5,"node":"n1"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := checker.Check(ops)
	for _, c := range r.Verdicts() {
		fmt.Printf("%-12s %s\n", c.Name, c.Valid)
	}
	fmt.Println()
	r.WriteSummary(os.Stdout) // explains each anomaly, naming the ops
	// Output:
	// thin-air     valid
	// linearizable invalid
	// session      valid
	// convergence  valid
	// stats        valid
	//
	// checks: invalid
	//   thin-air      valid    all 3 reads returned 0 or a value some set had already tried to write
	//   linearizable  invalid  1 of 3 reads saw a value below one that had already completed on their server
	//       - On n1, op 3 (process 1, ok get 0 on n1, t=0.400s, invoked as op 2 at t=0.300s) read 0, but op 1 (process 0, ok set 5 on n1, t=0.200s, invoked as op 0 at t=0.100s) had already completed with 5 at t=0.200000s, before the read was invoked at t=0.300000s: the counter went down.
	//         expected: a value ≥ 5 on n1
	//   session       valid    in all 3 sessions (a process on a server), reads never went down and saw the session's own acknowledged writes
	//   convergence   valid    all 1 server converged to 5, 100ms after the first final read; no acknowledged write or served value was lost
	//   stats         valid    3 client ops, 100.0% ok (get 1 ok/0 fail/0 info, set 1 ok/0 fail/0 info, final-get 1 ok/0 fail/0 info)
}
