// Package harness runs one ec-counter test: it starts a cluster of real node
// processes (each in a lab host of its own, or on a loopback address),
// drives clients that record an operation history, lets the nemesis inject
// faults, waits for convergence, checks the history and stores the run.
package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/nemesis"
	"github.com/ec-counter/ec-counter/runstore"
	"github.com/ec-counter/ec-counter/workload"
)

// Config describes one test run. The zero value of a field means its
// default (see Defaults), except Seed, which is drawn at random when HasSeed
// is false.
type Config struct {
	Name            string        `json:"name"`
	Nodes           int           `json:"nodes"`
	Clients         int           `json:"clients"`
	Requests        int           `json:"requests"` // per client
	Rate            float64       `json:"rate"`     // requests per second per client; 0: back to back
	Seed            uint64        `json:"seed"`
	HasSeed         bool          `json:"-"`
	RequestTimeout  time.Duration `json:"request_timeout"`
	ConvergeTimeout time.Duration `json:"converge_timeout"`
	Store           string        `json:"store"`
	NodeCmd         string        `json:"node_cmd"`
	// Nemesis lists the fault kinds to schedule from the seed (see
	// nemesis.Describe); empty means no faults.
	Nemesis []string `json:"nemesis,omitempty"`
	// NemesisDefault says Nemesis holds the default kinds, not named by
	// the user (UseDefaultFaults); NemesisLeftOut holds each default kind
	// this run could not inject, and why.
	NemesisDefault bool              `json:"nemesis_default,omitempty"`
	NemesisLeftOut map[string]string `json:"nemesis_left_out,omitempty"`
	// NemesisInterval is about how long each fault lasts, and each clean
	// stretch between faults.
	NemesisInterval time.Duration `json:"nemesis_interval,omitempty"`
	// Script is a scripted schedule (docs/faults.md "Scripted schedules"), used
	// instead of Nemesis. The run stores it as schedule.txt.
	Script string `json:"-"`
	// NemesisSchedule names the file Script was read from, for the record.
	NemesisSchedule string `json:"nemesis_schedule,omitempty"`
	// Bug switches a deliberate bug on in every node: "--bug NAME" is
	// appended to the node command (ec-counter node --bug).
	Bug string `json:"bug,omitempty"`
	// StopGrace is how long a node has to exit after SIGTERM before SIGKILL.
	StopGrace time.Duration `json:"stop_grace"`
	// StartTimeout bounds the wait for every node to be healthy and see the others.
	StartTimeout time.Duration `json:"start_timeout"`
	// Values is the seeded workload's set values:
	// workload.ValuesBoundaries (across 2^31, 2^32 and 2^53) or
	// workload.ValuesSmall.
	Values string `json:"values"`
	// Workload, when not nil, is what the clients send instead of the
	// seeded plan (docs/workloads.md "Scripted workloads"); it fixes Clients and
	// Requests. The run stores it as workload.jsonl.
	Workload workload.Workload `json:"-"`
	// WorkloadFile names the file Workload was read from, for the record.
	WorkloadFile string `json:"workload,omitempty"`
	// Net is the network the nodes run on: NetLab, NetLoopback, or NetAuto
	// (the lab when this process runs inside the namespace lab.Reexec
	// makes, else loopback).
	Net string `json:"net"`
	// Hosts, when not nil, runs the nodes on SSH hosts, one per entry
	// (docs/ssh-hosts.md "Nodes on SSH hosts"): Net is then NetHosts, and the nodes
	// run on the first Nodes entries.
	Hosts *lab.HostsFile `json:"hosts,omitempty"`
	// HostsFile names the file Hosts was read from, for the replay.
	HostsFile string `json:"hosts_file,omitempty"`
	// Disk is what the nodes' data directories sit on: DiskPlain, DiskLazy,
	// DiskTorn, or DiskAuto (DiskLazy when the schedule can crash a node).
	Disk string `json:"disk"`

	// Command is the command line that asked for the run, recorded in
	// run.json; Program is how a replay command names this program
	// (default "ec-counter"). Both are the caller's to set.
	Command []string `json:"-"`
	Program string   `json:"-"`
	// Progress, when not nil, is a terminal on which a live line of the
	// run's progress is drawn while it is under way (and erased before
	// each phase line and the summary); nil draws none. The caller's to set.
	Progress io.Writer `json:"-"`
}

// The networks a run can use (docs/networks.md "Networks: the lab and loopback").
const (
	NetAuto     = "auto"     // the lab where it can be built, else loopback
	NetLab      = "lab"      // every node in a network namespace; faults by the kernel
	NetLoopback = "loopback" // every node on a 127.x address; faults in the nodes
	NetHosts    = "hosts"    // every node on an SSH host (Config.Hosts); faults by nftables there
)

// The disks a run's data directories can sit on (docs/faults.md "Crash: power loss").
const (
	DiskAuto  = "auto"  // lazy when the nemesis can crash a node, else plain
	DiskPlain = "plain" // the run directory's own file system
	DiskLazy  = "lazy"  // the power-loss file system: a crash loses what was not fsynced
	DiskTorn  = "torn"  // lazy, and a crash keeps a random prefix of each file's unsynced writes
)

// Bounds on the sizes a user can give (docs/cli.md "ec-counter test").
const (
	MaxRequests      = 1_000_000  // per client
	MaxTotalRequests = 10_000_000 // over all clients: the plan and history stay in memory
	MinRate          = 0.01       // requests per second per client, unless 0 (back to back)
	MaxRate          = 100_000.0
)

// ErrFaultsUnsupported marks a run refused because a fault it asks for
// cannot be injected on the network in use: a usage error, never a verdict.
var ErrFaultsUnsupported = errors.New("cannot inject the faults asked for")

// SetWorkload makes the run send w, read from file (for the record),
// instead of the seeded plan: the workload fixes Clients and Requests.
func (c *Config) SetWorkload(w workload.Workload, file string) {
	c.Workload, c.WorkloadFile = w, file
	c.Clients, c.Requests = w.Clients(), w.MaxPerClient()
}

// network resolves Net to NetLab or NetLoopback.
func (c *Config) network() string {
	if c.Hosts != nil {
		return NetHosts
	}
	if c.Net == NetAuto || c.Net == "" {
		if lab.Inside() {
			return NetLab
		}
		return NetLoopback
	}
	return c.Net
}

// Defaults returns the mission's defaults: 3 nodes, 5 clients of 100
// requests each at 10 requests per second (a client phase of about 10 s).
func Defaults() Config {
	return Config{
		Name:            "ec-counter",
		Nodes:           3,
		Clients:         5,
		Requests:        100,
		Rate:            10,
		RequestTimeout:  time.Second,
		ConvergeTimeout: 10 * time.Second,
		Store:           "store",
		NodeCmd:         DefaultNodeCmd,
		NemesisInterval: 2 * time.Second,
		StopGrace:       3 * time.Second,
		StartTimeout:    20 * time.Second,
		Net:             NetAuto,
		Disk:            DiskAuto,
		Values:          workload.ValuesBoundaries,
	}
}

// A FieldError is a Config setting that cannot be used. Field and Others
// are the settings' JSON names (as in run.json's config); Problem is a
// format with one %s for each of Others, so that a caller (the CLI) can
// name the settings as its user knows them.
type FieldError struct {
	Field   string
	Problem string
	Others  []string
}

func (e *FieldError) Error() string { return e.Name(func(f string) string { return f }) }

// Name renders the error with each setting named by name.
func (e *FieldError) Name(name func(field string) string) string {
	others := make([]any, len(e.Others))
	for i, o := range e.Others {
		others[i] = name(o)
	}
	return name(e.Field) + " " + fmt.Sprintf(e.Problem, others...)
}

// fieldErr is a FieldError whose problem names no other setting.
func fieldErr(field, problem string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: strings.ReplaceAll(fmt.Sprintf(problem, args...), "%", "%%")}
}

// Validate reports every unusable setting, joined (errors.Join) as
// *FieldError values, in words a user can act on. A schedule that asks for
// network faults the network cannot inject is ErrFaultsUnsupported.
func (c *Config) Validate() error {
	var errs []error
	if err := runstore.ValidateTestName(c.Name); err != nil {
		errs = append(errs, fieldErr("name", "%v", err))
	}
	if c.Nodes < 1 || c.Nodes > 200 {
		errs = append(errs, fieldErr("nodes", "must be between 1 and 200, got %d", c.Nodes))
	}
	if c.Clients < 1 || c.Clients > 10000 {
		errs = append(errs, fieldErr("clients", "must be between 1 and 10000, got %d", c.Clients))
	}
	if c.Requests < 1 || c.Requests > MaxRequests {
		errs = append(errs, fieldErr("requests", "must be between 1 and %d, got %d", MaxRequests, c.Requests))
	} else if c.Clients >= 1 && int64(c.Clients)*int64(c.Requests) > MaxTotalRequests {
		errs = append(errs, &FieldError{Field: "clients", Others: []string{"requests"}, Problem: fmt.Sprintf(
			"× %%s must be at most %d (about %d GB of history), got %d",
			MaxTotalRequests, MaxTotalRequests*200>>30, int64(c.Clients)*int64(c.Requests))})
	}
	if !(c.Rate == 0 || c.Rate >= MinRate && c.Rate <= MaxRate) { // false for NaN
		errs = append(errs, fieldErr("rate", "must be 0 (back to back) or between %g and %g requests per second, got %g", MinRate, MaxRate, c.Rate))
	}
	for _, d := range []struct {
		field    string
		v, least time.Duration
		most     time.Duration
	}{
		{"request_timeout", c.RequestTimeout, time.Millisecond, 10 * time.Minute},
		{"converge_timeout", c.ConvergeTimeout, time.Millisecond, time.Hour},
		{"nemesis_interval", c.NemesisInterval, 10 * time.Millisecond, time.Hour},
	} {
		if d.v < d.least || d.v > d.most {
			errs = append(errs, fieldErr(d.field, "must be between %s and %s, got %s", d.least, d.most, d.v))
		}
	}
	if strings.TrimSpace(c.NodeCmd) == "" {
		errs = append(errs, fieldErr("node_cmd", "must not be empty"))
	} else if _, err := expandTemplate(c.NodeCmd, templateVars("", "", "", "", "", "", "", "")); err != nil {
		errs = append(errs, fieldErr("node_cmd", "is unusable: %v", err))
	}
	if c.NemesisSchedule != "" && c.Script == "" {
		// A caller that names a file but forgot to read it must not get a
		// run without the faults it asked for.
		errs = append(errs, fieldErr("nemesis_schedule", "%s holds no schedule", c.NemesisSchedule))
	}
	if c.WorkloadFile != "" && len(c.Workload) == 0 {
		errs = append(errs, fieldErr("workload", "%s holds no request", c.WorkloadFile))
	}
	if len(c.Workload) > 0 && (c.Workload.Clients() != c.Clients || c.Workload.MaxPerClient() != c.Requests) {
		errs = append(errs, &FieldError{Field: "workload", Others: []string{"clients", "requests"}, Problem: fmt.Sprintf(
			"has %d clients of at most %d requests, which %%s and %%s must match (or be left to it)", c.Workload.Clients(), c.Workload.MaxPerClient())})
	}
	if len(c.Nemesis) > 0 && c.Script != "" {
		errs = append(errs, &FieldError{Field: "nemesis", Others: []string{"nemesis_schedule"}, Problem: "and %s exclude each other: give one"})
	}
	switch c.Values {
	case workload.ValuesBoundaries, workload.ValuesSmall:
	default:
		errs = append(errs, fieldErr("values", "must be boundaries or small, got %q", c.Values))
	}
	switch c.Net {
	case NetAuto, NetLab, NetLoopback:
	case NetHosts:
		if c.Hosts == nil {
			errs = append(errs, fieldErr("net", "hosts needs a hosts file (--hosts)"))
		}
	default:
		errs = append(errs, fieldErr("net", "must be auto, lab or loopback, got %q", c.Net))
	}
	if c.Hosts != nil {
		if c.Net != NetAuto && c.Net != NetHosts && c.Net != "" {
			errs = append(errs, &FieldError{Field: "net", Others: []string{"hosts"}, Problem: "and %s exclude each other: the nodes run on the hosts"})
		}
		if c.Nodes > len(c.Hosts.Hosts) {
			errs = append(errs, &FieldError{Field: "nodes", Others: []string{"hosts"}, Problem: fmt.Sprintf(
				"is %d, but %%s lists %d hosts (one node each)", c.Nodes, len(c.Hosts.Hosts))})
		}
	}
	if c.Net == NetLab && !lab.Inside() {
		errs = append(errs, fieldErr("net", "lab: the lab is built only inside the namespace the ec-counter command makes for it (lab.Reexec)"))
	}
	switch c.Disk {
	case DiskAuto, DiskPlain, DiskLazy, DiskTorn:
	default:
		errs = append(errs, fieldErr("disk", "must be auto, plain, lazy or torn, got %q", c.Disk))
	}
	if c.Nodes >= 1 && c.Nodes <= 200 && c.NemesisInterval >= 10*time.Millisecond && c.NemesisInterval <= time.Hour {
		s, err := c.schedule(nodeNames(c.Nodes))
		if err != nil {
			errs = append(errs, err)
		} else if err := c.checkNetworkFaults(s); err != nil {
			errs = append(errs, err)
		} else if err := c.checkHosts(s); err != nil {
			errs = append(errs, err)
		} else if err := c.checkDisk(s); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Store == "" {
		errs = append(errs, fieldErr("store", "must not be empty"))
	}
	return errors.Join(errs...)
}

// checkNetworkFaults refuses a schedule with network faults on the
// loopback network when the node command gives the nodes no admin API
// token: such nodes cannot take the faults, and a run that says VALID
// without them would lie.
func (c *Config) checkNetworkFaults(s nemesis.Schedule) error {
	if !(s.NetworkFaults() || nemesis.NetworkKinds(c.Nemesis)) || c.network() != NetLoopback || strings.Contains(c.NodeCmd, "{admin_token_file}") {
		return nil
	}
	return fmt.Errorf("%w: the nemesis asks for network faults (partitions, delay or loss), which the loopback "+
		"network injects through each node's admin API, but --node-cmd does not pass {admin_token_file}, so the "+
		"nodes have none; use --net lab (kernel faults for any node binary; 'ec-counter doctor' says whether this "+
		"machine can build it) or give the node the admin API (docs/node.md \"Admin API (fault injection)\")", ErrFaultsUnsupported)
}

// checkHosts refuses, on SSH hosts, the faults they cannot take (docs/ssh-hosts.md "Nodes on SSH hosts"): crash (no power-loss file system there), and
// network faults between two nodes that share an address, which rules by
// address cannot tell apart.
func (c *Config) checkHosts(s nemesis.Schedule) error {
	if c.Hosts == nil {
		return nil
	}
	refuse := func(why string) error {
		return fmt.Errorf("%w: on SSH hosts (--hosts), %s", ErrFaultsUnsupported, why)
	}
	if s.Crashes() || slices.Contains(c.Nemesis, nemesis.FCrash) || (c.Disk != DiskAuto && c.Disk != DiskPlain && c.Disk != "") {
		return refuse("crash and the power-loss disk are not available: they need the power-loss file system, which runs on this machine only (kill works)")
	}
	if a := c.usedHosts().SharedAddrs(); a != "" && s.NetworkFaults() {
		return refuse(fmt.Sprintf("two nodes share the address %s, and network faults, which match addresses, would cut both: give each node its own node_addr, or drop the network faults", a))
	}
	return nil
}

// usedHosts returns the hosts file's first Nodes entries, where the nodes run.
func (c *Config) usedHosts() *lab.HostsFile {
	hf := *c.Hosts
	hf.Hosts = hf.Hosts[:min(c.Nodes, len(hf.Hosts))]
	return &hf
}

// delays reports whether s delays a link.
func delays(s nemesis.Schedule) bool {
	return slices.ContainsFunc(s, func(st nemesis.Step) bool {
		return st.Action == nemesis.FStartLink && (st.Link.Delay > 0 || st.Link.Jitter > 0)
	})
}

// disk resolves Disk for schedule s: DiskPlain, DiskLazy or DiskTorn.
func (c *Config) disk(s nemesis.Schedule) string {
	if c.Disk == DiskAuto || c.Disk == "" {
		if s.Crashes() {
			return DiskLazy
		}
		return DiskPlain
	}
	return c.Disk
}

// checkDisk refuses a crash on a plain disk, which cannot lose unsynced
// writes (a run would test a kill and call it a crash), and the power-loss
// file system outside the private mount namespace lab.Reexec makes, where
// a crash of the harness could leave its mounts behind.
func (c *Config) checkDisk(s nemesis.Schedule) error {
	switch d := c.disk(s); {
	case d == DiskPlain && s.Crashes():
		return &FieldError{Field: "disk", Others: []string{"nemesis"}, Problem: "plain cannot lose unsynced writes, which a crash in %s needs: use lazy, torn or auto"}
	case d != DiskPlain && !lab.Inside():
		return fmt.Errorf("%w: the crash fault and the power-loss disk (--disk lazy or torn) need the private mount "+
			"namespace ec-counter re-runs itself in, so that no mount outlives the run; it is made for --net lab and "+
			"auto, not loopback, and only where this machine allows ('ec-counter doctor' says whether it does)", ErrFaultsUnsupported)
	}
	return nil
}

// ReplayArgs returns the test command's arguments that reproduce this run:
// the same seed and every setting that shapes the schedule and operations.
func (c *Config) ReplayArgs() []string {
	d := Defaults()
	args := []string{"test", "--seed", strconv.FormatUint(c.Seed, 10)}
	add := func(flag, v, def string) {
		if v != def {
			args = append(args, flag, v)
		}
	}
	add("--name", c.Name, d.Name)
	if c.HostsFile != "" {
		args = append(args, "--nodes", strconv.Itoa(c.Nodes)) // the default is the host count
	} else {
		add("--nodes", strconv.Itoa(c.Nodes), strconv.Itoa(d.Nodes))
	}
	if c.WorkloadFile == "" {
		add("--clients", strconv.Itoa(c.Clients), strconv.Itoa(d.Clients))
		add("--requests", strconv.Itoa(c.Requests), strconv.Itoa(d.Requests))
	}
	add("--rate", strconv.FormatFloat(c.Rate, 'g', -1, 64), strconv.FormatFloat(d.Rate, 'g', -1, 64))
	add("--request-timeout", c.RequestTimeout.String(), d.RequestTimeout.String())
	add("--converge-timeout", c.ConvergeTimeout.String(), d.ConvergeTimeout.String())
	add("--store", c.Store, d.Store)
	add("--node-cmd", c.NodeCmd, d.NodeCmd)
	add("--bug", c.Bug, "")
	if len(c.Nemesis) == 0 && c.NemesisSchedule == "" {
		args = append(args, "--nemesis", NemesisNone) // a run without faults is not the default
	}
	add("--nemesis", strings.Join(c.Nemesis, ","), "")
	add("--nemesis-interval", c.NemesisInterval.String(), d.NemesisInterval.String())
	add("--nemesis-schedule", c.NemesisSchedule, "")
	add("--workload", c.WorkloadFile, "")
	if c.WorkloadFile == "" {
		add("--values", c.Values, d.Values)
	}
	add("--hosts", c.HostsFile, "")
	if c.HostsFile == "" {
		add("--net", c.Net, d.Net)
	}
	add("--disk", c.Disk, d.Disk)
	return args
}

// nodeCommand is the node command template, with the bug switched on.
func (c *Config) nodeCommand() string {
	if c.Bug != "" {
		return c.NodeCmd + " --bug " + c.Bug
	}
	return c.NodeCmd
}

// nodeNames returns n1..nN.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i+1)
	}
	return names
}
