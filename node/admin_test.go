package node

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAdminOffWithoutTokenFile(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1).nodes[0]
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		code, _, _ := do(t, m, url(s, "/v1/admin/faults"), "Bearer x", `{"links": {}}`)
		if code != http.StatusNotFound {
			t.Errorf("%s without token file: %d, want 404", m, code)
		}
	}
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	s := startCluster(t, 1, withToken(t, "s3cret")).nodes[0]
	for _, auth := range []string{"", "s3cret", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cret2", "bearer s3cret", "Basic s3cret"} {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			code, h, body := do(t, m, url(s, "/v1/admin/faults"), auth, `{"links": {}}`)
			if code != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d, want 401", m, auth, code)
			}
			if h.Get("WWW-Authenticate") == "" || body["error"] == nil {
				t.Errorf("%s with Authorization %q: 401 without challenge or error: %v %v", m, auth, h, body)
			}
		}
	}
	code, _, _ := do(t, http.MethodGet, url(s, "/v1/admin/faults"), "Bearer s3cret", "")
	if code != http.StatusOK {
		t.Errorf("GET with the right token: %d", code)
	}
	code, h, _ := do(t, http.MethodPost, url(s, "/v1/admin/faults"), "Bearer s3cret", `{"links": {}}`)
	if code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD, PUT" {
		t.Errorf("POST: %d Allow %q, want 405", code, h.Get("Allow"))
	}
}

func TestAdminRejectsBadFaultSets(t *testing.T) {
	t.Parallel()
	const token = "tok"
	s := startCluster(t, 1, withToken(t, token)).nodes[0]
	good := `{"links": {"127.0.0.12:7946": {"in": {"drop": true}}}}`
	c := &cluster{t: t}
	c.putFaults(s, token, good)
	for _, body := range []string{
		"",
		"nope",
		"null",
		"{}",
		`{"links": null}`,
		`{"links": []}`,
		`{"links": {}} {}`,
		`{"links": {}, "extra": 1}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": true}}}, "links": {}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": true, "drop": false}}}}`,
		`{"links": {"127.0.0.12": {}}}`,
		`{"links": {"localhost:7946": {}}}`,
		`{"links": {"127.0.0.12:7946": {"sideways": {}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": "yes"}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"dorp": true}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"delay_ms": -1}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"delay_ms": 1.5}}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"jitter_ms": -5}}}}`,
		`{"links": {"127.0.0.12:7946": {"out": {"delay_ms": 3600001}}}}`,
		`{"links": {"127.0.0.12:7946": {"out": {"loss": 1.01}}}}`,
		`{"links": {"127.0.0.12:7946": {"out": {"loss": -0.1}}}}`,
		`{"links": {"127.0.0.12:7946": {}, "127.0.0.12:7947": {}}}`,
		`{"links": {"127.0.0.12:7946": {"in": {"drop": true}}}` + strings.Repeat(" ", 70<<10) + `}`,
	} {
		code, _, m := do(t, http.MethodPut, url(s, "/v1/admin/faults"), "Bearer "+token, body)
		short := body
		if len(short) > 80 {
			short = short[:80] + "..."
		}
		if code != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("PUT %q: %d %v, want 400 with an error", short, code, m)
		}
	}
	// The fault set is unchanged by rejected requests.
	_, _, m := do(t, http.MethodGet, url(s, "/v1/admin/faults"), "Bearer "+token, "")
	if got := mustJSON(t, m); got != `{"links":{"127.0.0.12:7946":{"in":{"drop":true}}}}` {
		t.Errorf("after bad PUTs the fault set is %s", got)
	}
}

func TestAdminRoundTrip(t *testing.T) {
	t.Parallel()
	const token = "round-trip"
	s := startCluster(t, 1, withToken(t, token)).nodes[0]
	auth := "Bearer " + token
	get := func() string {
		code, _, m := do(t, http.MethodGet, url(s, "/v1/admin/faults"), auth, "")
		if code != http.StatusOK {
			t.Fatalf("GET faults: %d %v", code, m)
		}
		return mustJSON(t, m)
	}
	if got := get(); got != `{"links":{}}` {
		t.Errorf("initial faults %s", got)
	}
	body := `{"links": {
		"127.0.0.12:7946": {"in": {"drop": true}, "out": {"delay_ms": 200, "jitter_ms": 50, "loss": 0.2}},
		"[::ffff:127.0.0.13]:7946": {"out": {"loss": 1}},
		"127.0.0.14:7946": {"in": {}}}}`
	want := `{"links":{"127.0.0.12:7946":{"in":{"drop":true},"out":{"delay_ms":200,"jitter_ms":50,"loss":0.2}},` +
		`"127.0.0.13:7946":{"out":{"loss":1}},"127.0.0.14:7946":{"in":{}}}}`
	code, _, m := do(t, http.MethodPut, url(s, "/v1/admin/faults"), auth, body)
	if code != http.StatusOK || mustJSON(t, m) != want {
		t.Errorf("PUT: %d %s, want 200 %s", code, mustJSON(t, m), want)
	}
	if got := get(); got != want {
		t.Errorf("GET after PUT: %s, want %s", got, want)
	}
	// The token file's trailing newline is not part of the token, and
	// extra spaces after "Bearer" are tolerated.
	code, _, m = do(t, http.MethodPut, url(s, "/v1/admin/faults"), "Bearer  "+token+" ", `{"links": {}}`)
	if code != http.StatusOK || mustJSON(t, m) != `{"links":{}}` {
		t.Errorf("heal: %d %s", code, mustJSON(t, m))
	}
	if got := get(); got != `{"links":{}}` {
		t.Errorf("after heal: %s", got)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
