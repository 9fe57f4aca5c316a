package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// adminPath is the node's fault-injection endpoint (DESIGN §3.3).
	adminPath = "/v1/admin/faults"
	// adminTimeout bounds one PUT: a node that does not answer within it
	// is recorded as unreachable.
	adminTimeout = 2 * time.Second
)

// newAdminClient returns the HTTP client for admin requests. It keeps no
// idle connections, so a nemesis leaves no goroutines behind.
func newAdminClient() *http.Client {
	return &http.Client{
		Timeout:   adminTimeout,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
}

// statusError is an admin request the node answered with an error status:
// the node's faults did not change.
type statusError struct {
	status string
	msg    string
}

func (e *statusError) Error() string {
	if e.msg == "" {
		return e.status
	}
	return e.status + ": " + e.msg
}

// putFaults replaces node's fault set with body. An error of type
// *statusError means the node refused it and kept its faults; any other
// error leaves the node's faults unknown.
func (n *Nemesis) putFaults(ctx context.Context, node, body string) error {
	token := n.cluster.Token()
	if token == "" {
		return &statusError{status: "no admin token: the admin API is off"}
	}
	addr := n.cluster.HTTPAddr(node)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	url := strings.TrimSuffix(addr, "/") + adminPath
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return &statusError{status: fmt.Sprintf("bad admin URL %q: %v", url, err)}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = string(bytes.TrimSpace(b))
		if len(e.Error) > 200 {
			e.Error = e.Error[:200] + "..."
		}
	}
	return &statusError{status: "HTTP " + resp.Status, msg: e.Error}
}
