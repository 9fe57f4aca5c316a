package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/runstore"
)

// TestRefusedRunIsNotStored: a run refused once its nodes were up (a node
// command without the admin API that the loopback network's partitions
// need) exits 254 and, like a bad flag, stores nothing: the store keeps
// its last run as latest. It used to be stored, and listed as crashed.
func TestRefusedRunIsNotStored(t *testing.T) {
	bin, mini := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "store")
	if code, out := runCLI(t, bin, "test", "--nemesis", "none", "--store", root, "--net", "loopback", "--requests", "5", "--rate", "0"); code != 0 {
		t.Fatalf("the first run: exit %d\n%s", code, out)
	}
	first := runstore.Latest(root)
	tmpl := "env ADMIN_TOKEN_FILE={admin_token_file} " + mini + " -id {name} -listen {http} -peer-http {peer_http} -dir {data_dir}"
	code, out := runCLI(t, bin, "test", "--store", root, "--net", "loopback", "--nemesis", "partition", "--node-cmd", tmpl)
	if code != 254 || !strings.Contains(out, "no usable admin API") || !strings.Contains(out, "nothing stored") {
		t.Fatalf("a run refused after its nodes started: exit %d, want 254 saying why and that nothing was stored\n%s", code, out)
	}
	if got := runstore.Latest(root); got != first {
		t.Errorf("latest -> %q after the refused run, want %q", got, first)
	}
	runs, err := runstore.RunPaths(root)
	if err != nil || len(runs) != 1 {
		t.Errorf("the store holds %v (%v), want only the first run", runs, err)
	}
	if _, err := os.Stat(filepath.Join(root, first)); err != nil {
		t.Error(err)
	}
}
