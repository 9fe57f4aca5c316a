package harness

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/workload"
)

func TestExpandTemplate(t *testing.T) {
	vars := map[string]string{"name": "n1", "http": "127.0.0.11:8080", "peers": ""}
	got, err := expandTemplate(`mynode --id {name} --listen "{http}" --peers {peers} --note 'a b' x\ y`, vars)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mynode", "--id", "n1", "--listen", "127.0.0.11:8080", "--peers", "", "--note", "a b", "x y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"", "mynode {nmae}", `mynode "unterminated`} {
		if _, err := expandTemplate(bad, vars); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestAllocateAddrsGivesDistinctLoopbackAddresses(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, err := allocateAddrs(10, rng)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, x := range a {
		host := strings.Split(x.HTTP, ":")[0]
		if !strings.HasPrefix(host, "127.") || host == "127.0.0.1" || seen[host] {
			t.Errorf("bad or repeated address %s", host)
		}
		seen[host] = true
	}
}

func TestConfigValidate(t *testing.T) {
	good := Defaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.Nodes = 0 },
		func(c *Config) { c.Clients = -1 },
		func(c *Config) { c.Requests = 0 },
		func(c *Config) { c.Rate = -1 },
		func(c *Config) { c.RequestTimeout = 0 },
		func(c *Config) { c.Name = "../x" },
		func(c *Config) { c.NodeCmd = " " },
	} {
		c := Defaults()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
}

// TestProbeAdminRefusesNodesWithoutTheAPI: on loopback, a node whose admin
// API does not answer makes the run refuse network faults before clients
// start.
func TestProbeAdminRefusesNodesWithoutTheAPI(t *testing.T) {
	with := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/admin/faults" || r.Header.Get("Authorization") != "Bearer tok" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"links":{}}`))
	}))
	defer with.Close()
	without := httptest.NewServer(http.NotFoundHandler())
	defer without.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	admin := lab.NewAdminAPI("tok", map[string]string{"n1": addr(with), "n2": addr(without)})
	if err := probeAdmin(t.Context(), admin, []string{"n1"}); err != nil {
		t.Errorf("a node with the admin API: %v", err)
	}
	err := probeAdmin(t.Context(), admin, []string{"n1", "n2"})
	if !errors.Is(err, ErrFaultsUnsupported) || !strings.Contains(err.Error(), "n2") || !strings.Contains(err.Error(), "--net lab") {
		t.Errorf("a node without it: %v", err)
	}
}

func TestLateSteps(t *testing.T) {
	s, err := nemesis.ParseSchedule(strings.NewReader("1s kill n1\n5s restart n1\n30s kill n2\n31s restart n2\n"), nodeNames(3), 1)
	if err != nil {
		t.Fatal(err)
	}
	if late := lateSteps(s, 10*time.Second); len(late) != 2 || late[0].At != 30*time.Second {
		t.Errorf("late steps %v, want the two at 30s and 31s", late)
	}
	if late := lateSteps(s, time.Minute); len(late) != 0 {
		t.Errorf("late steps %v, want none", late)
	}
	// A late step that only undoes a fault is the final heal's to do.
	if late := lateSteps(s, 31*time.Second); len(late) != 0 {
		t.Errorf("late steps %v, want none: a restart is the heal's", late)
	}
}

// TestServerErrorsAreRecordedAsUnknown: a set the node answers with 500
// (its disk is full, say) may or may not have been applied: info, and the
// client goes on as a new process; a get is a fail; a 400 set is a fail.
func TestServerErrorsAreRecordedAsUnknown(t *testing.T) {
	status := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(`{"error":"write state: no space left on device"}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		status int
		f      string
		want   histories.Type
	}{
		{http.StatusInternalServerError, histories.FSet, histories.Info},
		{http.StatusInternalServerError, histories.FGet, histories.Fail},
		{http.StatusBadRequest, histories.FSet, histories.Fail},
	} {
		status = tc.status
		var buf strings.Builder
		rec := &recorder{w: histories.NewWriter(&buf, time.Now())}
		rec.next.Store(1)
		c := &clientRun{node: "n1", api: newCounterClient(strings.TrimPrefix(srv.URL, "http://")),
			reqs: []workload.Request{{F: tc.f, Value: 5}}, timeout: time.Second}
		if err := c.run(t.Context(), rec, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		c.api.close()
		ops, err := histories.Read(strings.NewReader(buf.String()))
		if err != nil || len(ops) != 2 {
			t.Fatalf("history %q: %v", buf.String(), err)
		}
		if ops[1].Type != tc.want || !strings.Contains(ops[1].Error, "no space left") {
			t.Errorf("HTTP %d on a %s: recorded %s %q, want %s", tc.status, tc.f, ops[1].Type, ops[1].Error, tc.want)
		}
	}
}

// TestSummaryNamesTheReportOnlyIfWritten: with a full disk the report is
// not written, and the summary does not point at it.
func TestSummaryNamesTheReportOnlyIfWritten(t *testing.T) {
	var with, without strings.Builder
	printSummary(&with, &Outcome{Dir: "d", Report: "d/report.html"})
	printSummary(&without, &Outcome{Dir: "d"})
	if !strings.Contains(with.String(), "report:  d/report.html") || strings.Contains(without.String(), "report:") {
		t.Errorf("with a report:\n%s\nwithout:\n%s", with.String(), without.String())
	}
}

// TestCampaignShards: the shards of a campaign cover its seeds once each,
// in order, and bad options are refused.
func TestCampaignShards(t *testing.T) {
	for _, n := range []int{1, 5, 12, 13} {
		for m := 1; m <= n && m <= 5; m++ {
			var all []uint64
			for k := 1; k <= m; k++ {
				o := CampaignOptions{Count: n, Shard: k, Shards: m}
				if err := o.validate(); err != nil {
					t.Fatalf("%d runs, shard %d/%d: %v", n, k, m, err)
				}
				all = append(all, o.Seeds(7)...)
			}
			want := CampaignOptions{Count: n}.Seeds(7)
			if !slices.Equal(all, want) || len(want) != n || want[0] != 7 {
				t.Errorf("%d runs in %d shards: seeds %v, want %v", n, m, all, want)
			}
		}
	}
	for _, o := range []CampaignOptions{
		{Count: 0}, {Count: 4, Shard: 0, Shards: 2}, {Count: 4, Shard: 3, Shards: 2}, {Count: 2, Shard: 1, Shards: 3},
		{Count: 4, Parallel: 65}, {Count: 100_001},
	} {
		if err := o.validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
