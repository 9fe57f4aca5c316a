package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/api"
)

// Fast tuning for tests.
const (
	testGossip   = 20 * time.Millisecond
	testPushPull = 300 * time.Millisecond
	testProbe    = 100 * time.Millisecond
	testRejoin   = 200 * time.Millisecond
)

// randomLoopback returns a random IP in 127.1.0.0–127.254.255.255, so that
// parallel tests (and runs) never share one.
func randomLoopback() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(254)), byte(1 + rand.IntN(254)), byte(1 + rand.IntN(254))})
}

// testLogger logs to stderr when EC_NODE_TEST_LOG is a level (e.g.
// "debug"), and nowhere otherwise.
func testLogger(t testing.TB) *slog.Logger {
	var level slog.Level
	if s := os.Getenv("EC_NODE_TEST_LOG"); s != "" && level.UnmarshalText([]byte(s)) == nil {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// cluster is a set of in-process nodes on their own loopback IPs.
type cluster struct {
	t     testing.TB
	nodes []*Server
	gossi []string // gossip address of each node
	root  string   // parent of the nodes' data directories
}

// clusterOption adjusts each node's config before it starts.
type clusterOption func(i int, c *Config)

// withToken enables the admin API with the given token.
func withToken(t testing.TB, token string) clusterOption {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(i int, c *Config) { c.AdminTokenFile = path }
}

// newCluster picks addresses for n nodes n1..nn that know each other as
// peers, without starting them.
func newCluster(t testing.TB, n int) *cluster {
	c := &cluster{t: t, root: t.TempDir(), nodes: make([]*Server, n)}
	for range n {
		c.gossi = append(c.gossi, netip.AddrPortFrom(randomLoopback(), 7946).String())
	}
	return c
}

// startCluster starts n nodes n1..nn that know each other as peers.
func startCluster(t testing.TB, n int, opts ...clusterOption) *cluster {
	t.Helper()
	c := newCluster(t, n)
	for i := range n {
		c.nodes[i] = c.start(i, opts...)
	}
	return c
}

// start starts node i (again) with a data directory kept across restarts.
func (c *cluster) start(i int, opts ...clusterOption) *Server {
	t := c.t
	t.Helper()
	ip := netip.MustParseAddrPort(c.gossi[i]).Addr()
	cfg := Config{
		Name:             fmt.Sprintf("n%d", i+1),
		HTTPAddr:         netip.AddrPortFrom(ip, 0).String(),
		GossipAddr:       c.gossi[i],
		Peers:            c.gossi,
		DataDir:          filepath.Join(c.root, fmt.Sprintf("n%d", i+1)),
		GossipInterval:   testGossip,
		PushPullInterval: testPushPull,
		ProbeInterval:    testProbe,
		RejoinInterval:   testRejoin,
		Logger:           testLogger(t),
	}
	for _, o := range opts {
		o(i, &cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// url returns the URL of path on node s.
func url(s *Server, path string) string { return "http://" + s.HTTPAddr() + path }

// do sends a request and returns the status and the decoded JSON body.
func do(t testing.TB, method, url, auth string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	// A hung request fails the test instead of hanging it.
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodHead {
		return resp.StatusCode, resp.Header, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s %s: %d response is not a JSON object: %q", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header, m
}

// num returns m[key] as an int64.
func num(t testing.TB, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%q is %v, want a number (in %v)", key, m[key], m)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// get returns the value node s serves.
func get(t testing.TB, s *Server) int64 {
	t.Helper()
	code, _, m := do(t, http.MethodGet, url(s, "/v1/counter"), "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/counter: %d %v", code, m)
	}
	return num(t, m, "value")
}

// set sets v on node s and returns the response's value and applied.
func set(t testing.TB, s *Server, v int64) (int64, bool) {
	t.Helper()
	code, _, m := do(t, http.MethodPost, url(s, "/v1/counter"), "", fmt.Sprintf(`{"value": %d}`, v))
	if code != http.StatusOK {
		t.Fatalf("POST /v1/counter %d: %d %v", v, code, m)
	}
	applied, ok := m["applied"].(bool)
	if !ok {
		t.Fatalf("applied missing in %v", m)
	}
	return num(t, m, "value"), applied
}

// trySet sets v on node s, giving up after timeout: a node with a bug may
// never acknowledge. It returns the acknowledged value.
func trySet(s *Server, v int64, timeout time.Duration) (int64, error) {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Post(url(s, "/v1/counter"), "application/json", strings.NewReader(fmt.Sprintf(`{"value": %d}`, v)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body api.SetResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /v1/counter %d: %d %v", v, resp.StatusCode, err)
	}
	return body.Value, nil
}

// members returns the members node s sees alive.
func members(t testing.TB, s *Server) []string {
	t.Helper()
	code, _, m := do(t, http.MethodGet, url(s, "/v1/health"), "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/health: %d %v", code, m)
	}
	var names []string
	for _, n := range m["members"].([]any) {
		names = append(names, n.(string))
	}
	return names
}

// waitFor polls cond every 10ms until it holds or timeout passes, and
// returns how long it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// allEqual reports whether every node in ns serves v.
func allEqual(t testing.TB, v int64, ns ...*Server) bool {
	for _, s := range ns {
		if get(t, s) != v {
			return false
		}
	}
	return true
}

// allSee reports whether every node in ns sees exactly names alive.
func allSee(t testing.TB, names []string, ns ...*Server) bool {
	for _, s := range ns {
		if !slices.Equal(members(t, s), names) {
			return false
		}
	}
	return true
}
