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
// # Schedule format
//
// A scripted schedule is a text file with one step a line: a time offset
// from the start of the nemesis, an action, and the action's arguments.
// Blank lines and everything from a # to the end of a line are ignored.
// Steps run in file order; times are Go durations (0s, 1.5s, 500ms, 1m30s)
// and must never decrease. For example:
//
//	# at   action            arguments
//	0s     start-partition   isolate n1
//	2s     stop-partition
//	3s     kill              n2
//	5s     restart           n2
//	6s     start-link        delay=200ms jitter=50ms loss=10% nodes=all
//	8s     stop-link
//	9s     pause             majority
//	11s    resume            all
//
// The actions:
//
//	start-partition SHAPE [oneway]  cut the network, replacing any partition in force
//	stop-partition                  heal the partition
//	start-link ARGS                 degrade links, replacing any link fault in force
//	stop-link                       remove the link fault
//	kill TARGET                     SIGKILL nodes, waiting for them to exit
//	restart NODES|all               start killed nodes again
//	pause TARGET                    SIGSTOP nodes
//	resume NODES|all                SIGCONT paused nodes
//
// SHAPE is one of (random choices are drawn from the run's seed):
//
//	isolate [NODE]                  NODE (default: a random node) against the rest
//	halves [A|B]                    the first ⌊n/2⌋ nodes against the rest
//	random-halves [A|B]             a random ⌊n/2⌋ nodes against the rest
//	bridge [A|X|B]                  A and B cut apart, X sees both (default: random)
//	majorities-ring [RING]          each node sees itself and the nodes nearest it in
//	                                RING (default: a random order), a majority
//	A|B|...                         explicit groups, like n1,n2|n3: every group drops
//	                                the others' traffic; unlisted nodes are not cut
//
// where A, B and X are comma-separated node names. With "oneway", or a
// "-oneway" suffix on the shape, only one direction is cut: each group drops
// the traffic of the groups after it (for a bridge, A drops B's), while they
// still hear it. The majorities ring has no one-way variant.
//
// start-link takes key=value arguments, at least one of delay, jitter and
// loss:
//
//	delay=DURATION                  added delay, e.g. 200ms (whole milliseconds)
//	jitter=DURATION                 the delay varies uniformly by ± this
//	loss=PERCENT                    packets and streams lost, e.g. 10% or 0.1
//	nodes=TARGET                    whose links, to and from every peer (default all)
//
// TARGET is one, minority (⌊(n-1)/2⌋ nodes, at least one), majority
// (⌊n/2⌋+1 nodes), all, or comma-separated node names like n1,n3. Symbolic
// targets of kill and pause choose among the nodes that are neither killed
// nor paused at that point of the schedule. restart and resume take node
// names, which must be killed (paused) at that point, or all: every node
// killed (paused) and not yet restarted (resumed).
//
// Parsing resolves every symbolic choice, so a parsed or generated
// [Schedule] is concrete, and its String method prints it in this format.
// Errors name the line and what is wrong.
package nemesis
