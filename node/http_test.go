package node

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestSetBadRequests(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	set(t, s, 10)

	pad := func(n int) string {
		prefix, suffix := `{"value": 99, "pad": "`, `"}`
		return prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix
	}
	for _, body := range []string{
		"",
		"not json",
		"{",
		`{"value": 57`,
		`{"value": 57} x`,
		`{"value": 57}{"value": 58}`,
		`{"value": 50, "value": 40}`,
		`{"value": 50, "pad": {"a": 1, "a": 2}}`,
		`{}`,
		`null`,
		`57`,
		`[57]`,
		`"57"`,
		`{"value": null}`,
		`{"value": 57.0}`,
		`{"value": 5.7}`,
		`{"value": 1e3}`,
		`{"value": 1E3}`,
		`{"value": -0.0}`,
		`{"value": "57"}`,
		`{"value": true}`,
		`{"value": [57]}`,
		`{"value": {"n": 57}}`,
		`{"Value ": 57}`,
		`{"value": 9223372036854775808}`,
		`{"value": -9223372036854775809}`,
		`{"value": 100000000000000000000000000000}`,
		pad(4097),
		pad(5000),
	} {
		code, _, m := do(t, http.MethodPost, url(s, "/v1/counter"), "", body)
		short := body
		if len(short) > 40 {
			short = short[:40] + "..."
		}
		if code != http.StatusBadRequest {
			t.Errorf("POST %q: status %d (%v), want 400", short, code, m)
			continue
		}
		if msg, ok := m["error"].(string); !ok || msg == "" {
			t.Errorf("POST %q: no error message in %v", short, m)
		}
	}
	if v := get(t, s); v != 10 {
		t.Errorf("after bad requests the counter is %d, want 10", v)
	}

	// A body of exactly 4 KiB is fine, and fields other than value are ignored.
	if v, applied := setBody(t, s, pad(4096)); v != 99 || !applied {
		t.Errorf("4096-byte body: value %d applied %v, want 99 true", v, applied)
	}
}

// setBody posts body and returns the response's value and applied.
func setBody(t *testing.T, s *Server, body string) (int64, bool) {
	t.Helper()
	code, _, m := do(t, http.MethodPost, url(s, "/v1/counter"), "", body)
	if code != http.StatusOK {
		t.Fatalf("POST %.40q: %d %v", body, code, m)
	}
	return num(t, m, "value"), m["applied"].(bool)
}

func TestSetIsMax(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	if v := get(t, s); v != 0 {
		t.Fatalf("new node: value %d, want 0", v)
	}
	for _, c := range []struct {
		set, want int64
		applied   bool
	}{
		{5, 5, true},
		{3, 5, false},
		{5, 5, false},
		{-1, 5, false},
		{0, 5, false},
		{6, 6, true},
		{math.MaxInt64, math.MaxInt64, true},
		{math.MinInt64, math.MaxInt64, false},
	} {
		v, applied := set(t, s, c.set)
		if v != c.want || applied != c.applied {
			t.Errorf("set %d: value %d applied %v, want %d %v", c.set, v, applied, c.want, c.applied)
		}
		if g := get(t, s); g != c.want {
			t.Errorf("get after set %d: %d, want %d", c.set, g, c.want)
		}
	}
	// Negative values on a fresh node are valid sets that do not apply.
	s2 := startCluster(t, 1).nodes[0]
	if v, applied := set(t, s2, -7); v != 0 || applied {
		t.Errorf("set -7 on 0: value %d applied %v, want 0 false", v, applied)
	}
	// Content type is not required.
	code, _, m := do(t, http.MethodPost, url(s2, "/v1/counter"), "", `{"value": 3, "other": [1, "x"]}`)
	if code != http.StatusOK || num(t, m, "value") != 3 {
		t.Errorf("set with extra field: %d %v", code, m)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodPut, "/v1/counter", 405, "GET, HEAD, POST"},
		{http.MethodDelete, "/v1/counter", 405, "GET, HEAD, POST"},
		{http.MethodPatch, "/v1/counter", 405, "GET, HEAD, POST"},
		{http.MethodPost, "/v1/health", 405, "GET, HEAD"},
		{http.MethodPut, "/v1/health", 405, "GET, HEAD"},
		{http.MethodGet, "/", 404, ""},
		{http.MethodGet, "/v1/counter/", 404, ""},
		{http.MethodGet, "/v1/counters", 404, ""},
		{http.MethodPost, "/v2/counter", 404, ""},
		{http.MethodGet, "/v1/admin/faults", 404, ""}, // no token file
		// Paths that are not clean name no endpoint: 404, not a redirect.
		{http.MethodGet, "/v1//counter", 404, ""},
		{http.MethodGet, "//v1/health", 404, ""},
		{http.MethodPost, "/v1/./counter", 404, ""},
		{http.MethodGet, "/v1/counter/.", 404, ""},
	} {
		code, h, m := do(t, c.method, url(s, c.path), "", `{"value": 1}`)
		if code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.code)
		}
		if got := h.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if _, ok := m["error"].(string); !ok {
			t.Errorf("%s %s: no JSON error in %v", c.method, c.path, m)
		}
	}
	if v := get(t, s); v != 0 {
		t.Errorf("counter changed to %d by rejected requests", v)
	}
	if code, _, _ := do(t, http.MethodHead, url(s, "/v1/counter"), "", ""); code != 200 {
		t.Errorf("HEAD /v1/counter: %d", code)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	set(t, s, 42)
	code, _, m := do(t, http.MethodGet, url(s, "/v1/health"), "", "")
	if code != 200 || m["name"] != "n1" || num(t, m, "value") != 42 || fmt.Sprint(m["members"]) != "[n1]" {
		t.Errorf("health: %d %v", code, m)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ok := Config{Name: "n1", HTTPAddr: "127.0.0.1:0", GossipAddr: "127.3.4.5:7946", DataDir: t.TempDir()}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no name":        func(c *Config) { c.Name = "" },
		"bad http":       func(c *Config) { c.HTTPAddr = "nope" },
		"gossip host":    func(c *Config) { c.GossipAddr = "localhost:7946" },
		"gossip port 0":  func(c *Config) { c.GossipAddr = "127.3.4.5:0" },
		"bad peer":       func(c *Config) { c.Peers = []string{"127.3.4.6"} },
		"no data dir":    func(c *Config) { c.DataDir = "" },
		"negative probe": func(c *Config) { c.ProbeInterval = -1 },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if s, err := Start(c); err == nil {
			s.Close()
			t.Errorf("%s: Start accepted %+v", name, c)
		}
	}
	c := ok
	c.AdminTokenFile = t.TempDir() + "/missing"
	if s, err := Start(c); err == nil {
		s.Close()
		t.Error("Start accepted a missing admin token file")
	}
}

func TestReadSetBodyErrorsNameTheProblem(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	for body, want := range map[string]string{
		`{"value": 1.5}`:                 "integer",
		`{"value": "3"}`:                 "string",
		`{"value": 9223372036854775808}`: "range",
		`{}`:                             "missing",
		`{"value": 1} 2`:                 "after",
	} {
		_, _, m := do(t, http.MethodPost, url(s, "/v1/counter"), "", body)
		if msg, _ := m["error"].(string); !strings.Contains(msg, want) {
			t.Errorf("POST %s: error %q does not mention %q", body, msg, want)
		}
	}
	if got := members(t, s); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("members %v", got)
	}
}
