package api

// CounterResponse is the answer to GET /v1/counter (docs/node.md "The node: command line, HTTP API and admin API"): the node's counter, e.g.
//
//	{"value": 42}
type CounterResponse struct {
	Value int64 `json:"value"`
}

// SetRequest is the body of POST /v1/counter (docs/node.md "The node: command line, HTTP API and admin API"),
// e.g.
//
//	{"value": 57}
//
// The value must be an integer literal in int64 range, given once; a node
// answers any other body, or one over 4 KiB, with 400 and an ErrorResponse,
// and leaves its counter as it was.
type SetRequest struct {
	Value int64 `json:"value"`
}

// SetResponse is the answer to an accepted POST /v1/counter (docs/node.md "The node: command line, HTTP API and admin API"): the counter after the request, and whether this
// request raised it, e.g.
//
//	{"value": 57, "applied": true}
//
// The node answers only once that value is durable.
type SetResponse struct {
	Value   int64 `json:"value"`
	Applied bool  `json:"applied"`
}

// HealthResponse is the answer to GET /v1/health (docs/node.md "The node: command line, HTTP API and admin API"): the node's name, its counter, and the names of the members it
// sees alive, itself included, e.g.
//
//	{"name": "n1", "value": 57, "members": ["n1","n2","n3"]}
//
// A node is ready when it answers 200 with every node in Members (docs/node.md "Testing your own implementation: --node-cmd").
type HealthResponse struct {
	Name    string   `json:"name"`
	Value   int64    `json:"value"`
	Members []string `json:"members"`
}

// ErrorResponse is the body of every error answer of the counter API and
// the admin API (docs/node.md "The node: command line, HTTP API and admin API", "Admin API"): 400 for a
// malformed body, 401 for a wrong admin token, 404 for no such endpoint,
// 405 for a wrong method, 500 for a failed write, 503 for a set that
// arrives while the node shuts down, e.g.
//
//	{"error": "missing \"value\""}
type ErrorResponse struct {
	Error string `json:"error"`
}
