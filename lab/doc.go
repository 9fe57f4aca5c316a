// Package lab is where nodes run and how the network between them fails.
//
// Two networks exist. On the loopback network every node listens on its own
// 127.x address and network faults are installed inside each node, through
// its admin API (AdminAPI). The lab (Build) gives every node a host of its
// own, a network namespace with one interface, behind a router (this
// process's namespace), so faults are kernel rules any node binary obeys:
// nftables drops for partitions, nftables numgen for loss, and a netfilter
// queue whose packets a delayer in this process holds for delay and jitter.
//
// The lab needs no root: Reexec runs the harness again in a new user and
// network namespace, and everything the lab makes lives inside it, so the
// kernel removes it all when the harness ends, even on SIGKILL. Nothing is
// added to the machine's own network. Probe says whether all of it works
// here. A Spawner starts node processes in their host's namespace, tied to
// the harness's life.
package lab
