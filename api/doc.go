// Package api holds the wire contract between the harness and a node, as
// types: the bodies of the counter API (docs/node.md "The node: command line, HTTP API and admin API"), which
// the node serves and the harness's clients and readiness check read, and
// the fault set of the admin API (docs/node.md "Admin API (fault injection)"), which the node
// serves, the nemesis computes and each network installs: the loopback
// network by PUTting it to the node, the lab as kernel rules.
//
// It declares types only, and imports only the standard library, so that
// any implementation of the contract can use it.
package api
