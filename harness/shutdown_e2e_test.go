package harness

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNodesThatDoNotStopAreNamed: the shutdown is quick for nodes that
// stop on SIGTERM, and a node that does not (its wrapper ignores SIGTERM
// and lingers) is still killed after the grace and named, in the log and
// in run.json.
func TestNodesThatDoNotStopAreNamed(t *testing.T) {
	bin, _ := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	lingering := `sh -c 'trap "" TERM; {self} node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file {admin_token_file}; sleep 30'`
	code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--requests", "10", "--rate", "50", "--node-cmd", lingering)
	if !strings.Contains(out, "nodes that did not exit cleanly on SIGTERM: n1, n2, n3") {
		t.Fatalf("exit %d; the lingering nodes are not named:\n%s", code, out)
	}
	r := readRun(t, root)
	unclean, _ := r.record["unclean_shutdown"].([]any)
	if len(unclean) != 3 {
		t.Errorf("run.json's unclean = %v, want n1, n2, n3", r.record["unclean_shutdown"])
	}
}
