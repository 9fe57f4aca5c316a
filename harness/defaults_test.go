package harness

import (
	"slices"
	"strings"
	"testing"

	"github.com/ec-counter/ec-counter/lab"
)

func TestUseDefaultFaults(t *testing.T) {
	// A node command without the admin API on loopback: no network fault
	// (a named one is refused; a default one is left out, saying why).
	cfg := Defaults()
	cfg.Net, cfg.NodeCmd = NetLoopback, "mynode --listen {http} --dir {data_dir}"
	cfg.UseDefaultFaults()
	// (crash depends on where the test runs: inside the lab's namespaces
	// or not, and /dev/fuse)
	if !cfg.NemesisDefault || !slices.Equal(cfg.Nemesis[:2], []string{"kill", "pause"}) || slices.ContainsFunc(cfg.Nemesis, func(k string) bool { return k == "partition" || k == "delay" || k == "loss" }) {
		t.Errorf("loopback without the admin API: %v", cfg.Nemesis)
	}
	for _, k := range []string{"partition", "delay", "loss"} {
		if cfg.NemesisLeftOut[k] == "" {
			t.Errorf("loopback without the admin API: %s left out without a reason: %v", k, cfg.NemesisLeftOut)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the default faults are refused: %v", err)
	}
	if d := describeFaults(cfg); !strings.Contains(d, "kill, pause") || !strings.Contains(d, "no partition: the node command passes no {admin_token_file}") {
		t.Errorf("describeFaults = %q", d)
	}

	// The default node on loopback: network faults through its admin API.
	cfg = Defaults()
	cfg.Net = NetLoopback
	cfg.UseDefaultFaults()
	if !slices.Equal(cfg.Nemesis[:5], []string{"partition", "delay", "loss", "kill", "pause"}) {
		t.Errorf("the default node on loopback: %v", cfg.Nemesis)
	}

	// SSH hosts: no crash, no delay unless named.
	cfg = Defaults()
	cfg.Hosts = &lab.HostsFile{Hosts: []lab.HostSpec{{NodeAddr: "10.0.0.1"}, {NodeAddr: "10.0.0.2"}, {NodeAddr: "10.0.0.3"}}}
	cfg.UseDefaultFaults()
	if !slices.Equal(cfg.Nemesis, []string{"partition", "loss", "kill", "pause"}) || cfg.NemesisLeftOut["crash"] == "" || cfg.NemesisLeftOut["delay"] == "" {
		t.Errorf("SSH hosts: %v, left out %v", cfg.Nemesis, cfg.NemesisLeftOut)
	}

	// One node: no partition, and no link between nodes to delay.
	cfg = Defaults()
	cfg.Nodes = 1
	cfg.UseDefaultFaults()
	if slices.Contains(cfg.Nemesis, "partition") || cfg.NemesisLeftOut["partition"] == "" || !slices.Contains(cfg.Nemesis, "kill") {
		t.Errorf("one node: %v, left out %v", cfg.Nemesis, cfg.NemesisLeftOut)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("one node's default faults are refused: %v", err)
	}

	// A plain disk cannot crash.
	cfg = Defaults()
	cfg.Disk = DiskPlain
	cfg.UseDefaultFaults()
	if slices.Contains(cfg.Nemesis, "crash") || !strings.Contains(cfg.NemesisLeftOut["crash"], "plain") {
		t.Errorf("--disk plain: %v, left out %v", cfg.Nemesis, cfg.NemesisLeftOut)
	}
}

// A run without faults replays as one: --nemesis none, now that the
// default injects them; the default kinds replay as named kinds.
func TestReplayArgsPinTheFaults(t *testing.T) {
	cfg := Defaults()
	if args := strings.Join(cfg.ReplayArgs(), " "); !strings.Contains(args, "--nemesis none") {
		t.Errorf("a run without faults replays as %q", args)
	}
	cfg.Net = NetLoopback
	cfg.UseDefaultFaults()
	if args := strings.Join(cfg.ReplayArgs(), " "); !strings.Contains(args, "--nemesis "+strings.Join(cfg.Nemesis, ",")) {
		t.Errorf("a default run replays as %q", args)
	}
	cfg = Defaults()
	cfg.Script, cfg.NemesisSchedule = "1s kill n1\n", "s.txt"
	if args := strings.Join(cfg.ReplayArgs(), " "); strings.Contains(args, "none") {
		t.Errorf("a scripted run replays as %q", args)
	}
}
