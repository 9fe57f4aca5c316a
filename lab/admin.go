package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

const (
	// adminPath is the node's fault-injection endpoint (docs/node.md "Admin API (fault injection)").
	adminPath = "/v1/admin/faults"
	// adminTimeout bounds one PUT: a node that does not answer within it
	// is recorded as unreachable.
	adminTimeout = 2 * time.Second
)

// AdminAPI is the loopback network's way to install faults: inside each
// node, through its admin API (PUT /v1/admin/faults with the run's bearer
// token). Faults live in the node processes: a restarted node has none.
type AdminAPI struct {
	token  string
	addrs  map[string]string // node → HTTP address
	client *http.Client
}

// NewAdminAPI returns the admin-API network for nodes whose HTTP
// addresses ("host:port") are addrs, by name; token is the run's admin
// token ("" if the admin API is off).
func NewAdminAPI(token string, addrs map[string]string) *AdminAPI {
	return &AdminAPI{
		token: token,
		addrs: addrs,
		// No idle connections, so a run leaves no goroutines behind.
		client: &http.Client{Timeout: adminTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// InNode reports true: the faults live in the node processes.
func (a *AdminAPI) InNode() bool { return true }

// RefusedError is an admin request the node answered with an error status:
// its faults did not change.
type RefusedError struct {
	Status string // e.g. "HTTP 401 Unauthorized"
	Msg    string // the node's error message
}

func (e *RefusedError) Error() string {
	if e.Msg == "" {
		return e.Status
	}
	return e.Status + ": " + e.Msg
}

// Unchanged reports true: a refused request leaves the node's faults as
// they were.
func (e *RefusedError) Unchanged() bool { return true }

// SetFaults replaces node's fault set with fs. A *RefusedError means the
// node refused it and kept its faults; any other error leaves them unknown.
func (a *AdminAPI) SetFaults(ctx context.Context, node string, fs api.FaultSet) error {
	if a.token == "" {
		return &RefusedError{Status: "no admin token: the admin API is off"}
	}
	addr, ok := a.addrs[node]
	if !ok {
		return &RefusedError{Status: fmt.Sprintf("no node %q", node)}
	}
	if fs.Links == nil {
		fs.Links = map[string]api.LinkFaults{}
	}
	body, err := json.Marshal(fs)
	if err != nil {
		return &RefusedError{Status: "encode fault set", Msg: err.Error()}
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	url := strings.TrimSuffix(addr, "/") + adminPath
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return &RefusedError{Status: fmt.Sprintf("bad admin URL %q", url), Msg: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e api.ErrorResponse
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = string(bytes.TrimSpace(b))
		if len(e.Error) > 200 {
			e.Error = e.Error[:200] + "..."
		}
	}
	return &RefusedError{Status: "HTTP " + resp.Status, Msg: e.Error}
}

// Probe asks node whether it serves the admin API with this token: nil if
// GET /v1/admin/faults answers 200. It lets the harness refuse a run whose
// network faults a node cannot take, before any client starts.
func (a *AdminAPI) Probe(ctx context.Context, node string) error {
	if a.token == "" {
		return &RefusedError{Status: "no admin token: the admin API is off"}
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addrs[node]+adminPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &RefusedError{Status: "GET " + adminPath + ": HTTP " + resp.Status}
	}
	return nil
}
