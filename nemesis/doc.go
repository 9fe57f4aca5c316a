// Package nemesis injects faults into an ec-counter cluster under test:
// network partitions and link faults through a [Network] (each node's admin
// API on the loopback network, kernel rules in the lab), and process faults
// through the harness's [Cluster]. It runs [Schedule]s,
// generated from a seed by [Generate] or scripted and read by
// [ParseSchedule], and records every action as an info op of process
// "nemesis" whose value says what was actually done and whose error what
// went wrong (see [New]).
//
// # Faults
//
// A partition is a [Grudge]: for each node, the nodes whose traffic it
// drops. [NewPartition] makes one from a shape: "isolate" (one node cut off),
// "halves" (the first ⌊n/2⌋ nodes against the rest), "random-halves",
// "bridge" (two halves cut apart, one node between them sees both) and
// "majorities-ring" (every node sees a majority, no two the same), and the
// one-way variants "isolate-oneway", "halves-oneway", "random-halves-oneway"
// and "bridge-oneway", which cut one direction only. A link fault
// ([LinkFault]) adds delay with jitter and loss to the links of some nodes.
// At most one partition and one link fault are in force at a time, and they
// compose. Process faults are kill (SIGKILL) then restart, and pause
// (SIGSTOP) then resume (SIGCONT).
//
// # Fault sets
//
// The nemesis computes each node's whole fault set, the admin API's body,
// and hands it to the [Network], which on the loopback network sends it as
//
//	PUT /v1/admin/faults
//	Authorization: Bearer <token>
//
//	{"links": {"127.0.0.12:7946": {"in": {"drop": true},
//	                               "out": {"delay_ms": 200, "jitter_ms": 50, "loss": 0.2}}}}
//
// Keys are peers' gossip addresses; "in" is traffic from the peer to the
// node, "out" from the node to the peer; each direction has drop, delay_ms,
// jitter_ms (integers ≥ 0) and loss (a probability). {"links": {}} heals.
// A grudge entry a: [b] becomes an "in" drop on a's link to b; a link fault
// on node x becomes an "out" fault on every link from x, and on every link
// to x from the other nodes, so each directed link is degraded once. When
// faults live in the nodes, a node that cannot be reached (paused, killed)
// is named in the op's error, like "unreachable: n2", and gets the faults
// in force when it is resumed or restarted. When they live outside (the
// lab), they change whatever the processes do, and a network that fails to
// install them is named as "not installed: n2".
//
// # Schedules
//
// A [Schedule] is concrete: every random choice (the node to isolate, the
// nodes "majority" stands for) is made when it is generated or parsed, so
// its String method prints it as a script that [ParseSchedule] reads back
// as the same schedule. The script format (its actions, partition shapes,
// link-fault arguments, targets and errors), the fault kinds [Generate]
// draws from and what each action records in the history are documented
// once, in SCHEDULE.md next to this file; testdata/schedules holds a golden
// example of every kind of step and error.
package nemesis
