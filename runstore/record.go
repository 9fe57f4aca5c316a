package runstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// What a reader reads of a run's JSON files at most, whatever they are (a
// symlink to a device, a FIFO, a huge file: see boundedfile): run.json is
// a few kilobytes, some hundreds with 200 nodes; results.json lists at
// most 20 anomalies per check. A file over its bound is refused.
const (
	maxRecordSize  = 16 << 20
	maxResultsSize = 64 << 20
)

// Record is run.json (docs/store-and-exit-codes.md "Store layout"): written by the harness when a
// run starts and again when it ends, read by reports, listings and replays.
// Readers tolerate fields they do not know and records cut short by a crash
// of the harness (no End, no Timings).
type Record struct {
	Name    string `json:"name"`
	Seed    uint64 `json:"seed"`
	Version string `json:"version"`
	// Config is the harness's configuration, as the harness encodes it.
	Config  json.RawMessage      `json:"config"`
	Command []string             `json:"command"`
	Replay  string               `json:"replay"` // the command that replays the run
	Nodes   map[string]NodeAddrs `json:"nodes"`
	Start   time.Time            `json:"start"`
	End     time.Time            `json:"end,omitzero"` // zero while running, or after a hard crash
	Timings *Timings             `json:"timings,omitempty"`
	Valid   *checker.Validity    `json:"valid,omitempty"`
	Error   string               `json:"error,omitempty"` // why the harness failed
	// Unclean lists the nodes that did not exit cleanly on SIGTERM.
	Unclean  []string `json:"unclean_shutdown,omitempty"`
	Schedule string   `json:"nemesis_schedule,omitempty"` // the schedule the nemesis ran
	// NemesisUnused lists the --nemesis kinds the run was too short for.
	NemesisUnused []string `json:"nemesis_unused,omitempty"`
	Interrupted   bool     `json:"interrupted,omitempty"`
	Network       string   `json:"network,omitempty"` // lab or loopback
	Disk          string   `json:"disk,omitempty"`    // plain, lazy or torn (docs/faults.md "Crash: power loss")
	Lab           *Lab     `json:"lab,omitempty"`
	// HostsTag is the run's tag on its SSH hosts (docs/ssh-hosts.md "Nodes on SSH hosts"): its files, lock, nftables tables and processes there.
	HostsTag string `json:"hosts_tag,omitempty"`
}

// NodeAddrs are the addresses one node listens on.
type NodeAddrs struct {
	HTTP   string `json:"http"`
	Gossip string `json:"gossip"`
}

// Timings splits a run's wall time into its phases.
type Timings struct {
	Startup     time.Duration `json:"startup_ns"`
	Clients     time.Duration `json:"clients_ns"`
	Convergence time.Duration `json:"convergence_ns"`
	Shutdown    time.Duration `json:"shutdown_ns"`
	Checking    time.Duration `json:"checking_ns"`
	Total       time.Duration `json:"total_ns"`
}

// Lab is what run.json says of the lab: its number, and the network
// namespaces of the router and of each host, by which a test can tell that
// none outlived the run.
type Lab struct {
	ID         int                `json:"id"`
	Router     string             `json:"router_netns"`
	Hosts      map[string]LabHost `json:"hosts"`
	QueueDrops uint64             `json:"queue_drops"`
}

// LabHost is one host of the lab.
type LabHost struct {
	Addr  string `json:"addr"`
	NetNS string `json:"netns"`
}

// ReadRecord reads dir's run.json.
func ReadRecord(dir RunDir) (*Record, error) {
	var r Record
	if err := readJSON(dir.File(RecordFile), maxRecordSize, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// WriteRecord replaces dir's run.json with r, durably.
func WriteRecord(dir RunDir, r *Record) error {
	return WriteJSON(dir.File(RecordFile), r)
}

// WriteJSON replaces the file at path with v as indented JSON, durably
// (see atomicfile.WriteFile).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, 0o644, append(b, '\n'))
}

// ReadResults reads dir's results.json.
func ReadResults(dir RunDir) (*checker.Result, error) {
	var r checker.Result
	if err := readJSON(dir.File(ResultsFile), maxResultsSize, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// readJSON decodes the JSON file at path, of at most limit bytes, into v.
// Its errors name the path.
func readJSON(path string, limit int64, v any) error {
	b, err := boundedfile.ReadFile(path, limit)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("%s is empty", path)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
