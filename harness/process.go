package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ec-counter/ec-counter/api"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/runstore"
	"github.com/kballard/go-shellquote"
)

// DefaultNodeCmd is the node command template used when none is given; the
// executable is this binary.
const DefaultNodeCmd = "{self} node --name {name} --http {http} --gossip {gossip} --peers {peers} --data-dir {data_dir} --admin-token-file {admin_token_file}"

// nodeSpec is everything needed to (re)start one node.
type nodeSpec struct {
	Name      string
	Addrs     runstore.NodeAddrs
	DataDir   string
	LogPath   string
	TokenFile string
	Args      []string
	Host      *lab.Host  // the lab host it runs in; nil on the loopback network
	Fleet     *lab.Fleet // the SSH hosts it runs on (its log is fetched at the end); nil elsewhere
}

// placeholder matches a {name} in a node command template.
var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// expandTemplate splits a command template into words (single and double
// quotes and backslashes as in a shell) and substitutes the placeholders of
// docs/node.md "Testing your own implementation: --node-cmd" in each word. An unknown
// {placeholder} is an error, so a typo
// does not reach the node as a literal.
func expandTemplate(tmpl string, vars map[string]string) ([]string, error) {
	for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
		if _, ok := vars[m[1]]; !ok {
			return nil, fmt.Errorf("unknown placeholder %s in the node command (known: {name} {http} {gossip} {peers} {peer_http} {data_dir} {admin_token_file} {self})", m[0])
		}
	}
	words, err := shellquote.Split(tmpl)
	if err != nil {
		return nil, fmt.Errorf("unterminated quote or escape in the node command: %w", err)
	}
	if len(words) == 0 {
		return nil, errors.New("node command is empty")
	}
	for i, w := range words {
		words[i] = placeholder.ReplaceAllStringFunc(w, func(m string) string { return vars[m[1:len(m)-1]] })
	}
	return words, nil
}

// process is one running node process.
type process struct {
	spec   nodeSpec
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed when the process has exited
	err    error         // the exit status, valid once exited is closed
	killed atomic.Bool   // the harness SIGKILLed it (a kill fault)
	remote *lab.Proc     // the process on an SSH host; then cmd and log are nil
}

// startProcess starts the node described by spec, appending its stderr and
// stdout to its log file (on its SSH host, there).
func startProcess(sp *lab.Spawner, spec nodeSpec) (*process, error) {
	if spec.Fleet != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rp, err := spec.Fleet.Start(ctx, spec.Name, spec.Args)
		if err != nil {
			return nil, err
		}
		p := &process{spec: spec, remote: rp, exited: make(chan struct{})}
		go func() {
			<-rp.Done()
			p.err = rp.Err()
			close(p.exited)
		}()
		return p, nil
	}
	log, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node %s: open log: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := sp.Start(cmd, spec.Host); err != nil {
		log.Close()
		return nil, fmt.Errorf("node %s: start %q: %w", spec.Name, spec.Args[0], err)
	}
	p := &process{spec: spec, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process's group if the process still runs: a
// node started through a wrapper (sh -c '...') is the group's member too.
func (p *process) signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return fmt.Errorf("node %s has exited: %v", p.spec.Name, p.err)
	default:
	}
	return p.signalGroup(sig)
}

// signalGroup sends sig to every process of the node's group (each node
// runs in a group of its own).
func (p *process) signalGroup(sig syscall.Signal) error {
	if p.remote != nil {
		return p.remote.Signal(sig)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// stop asks the process group to exit with SIGTERM, then SIGKILLs it after
// grace. It returns once the process has exited, having SIGKILLed whatever
// was left of its group (a wrapper's children). exitedAlone is true when
// the process had already ended on its own, before any signal.
func (p *process) stop(grace time.Duration) (clean, exitedAlone bool) {
	defer p.signalGroup(syscall.SIGKILL) // what a wrapper left behind
	select {
	case <-p.exited:
		return p.err == nil, true
	default:
	}
	_ = p.signalGroup(syscall.SIGCONT) // a paused node cannot handle SIGTERM
	_ = p.signalGroup(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err == nil, false
	case <-time.After(grace):
	}
	_ = p.signalGroup(syscall.SIGKILL)
	p.waitKilled()
	return false, false
}

// kill SIGKILLs the process group and waits for the process to exit.
func (p *process) kill() {
	p.killed.Store(true)
	_ = p.signalGroup(syscall.SIGKILL)
	p.waitKilled()
}

// remoteKillWait bounds the wait for a node on an SSH host to exit after a
// SIGKILL that may not have reached it (the host did not answer): the run
// goes on, and the fleet's close kills what still runs from its directory.
const remoteKillWait = 30 * time.Second

// waitKilled waits for the process to exit after a SIGKILL: a local
// process always does; a remote one may never be seen to, when its host
// cannot be reached.
func (p *process) waitKilled() {
	if p.remote == nil {
		<-p.exited
		return
	}
	select {
	case <-p.exited:
	case <-time.After(remoteKillWait):
	}
}

// killAll is kill, and then waits until no live process is left in the
// group: a wrapper's child (the node itself, under `sh -c`) may still be
// exiting after the wrapper is gone. A crash must not cut the power while
// the node's last requests are still reaching its file system. It gives up
// after timeout.
func (p *process) killAll(timeout time.Duration) error {
	p.kill()
	if p.remote != nil {
		return nil // the host killed the whole group
	}
	pgid := p.cmd.Process.Pid
	for deadline := time.Now().Add(timeout); ; {
		left := lab.LiveInGroup(pgid) // nil where /proc cannot tell
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of the node's group still alive %s after SIGKILL", left, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// getHealth asks a node for its health.
func getHealth(ctx context.Context, c *http.Client, httpAddr string) (api.HealthResponse, error) {
	var h api.HealthResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/v1/health", nil)
	if err != nil {
		return h, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("health: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("health: %w", err)
	}
	return h, nil
}

// waitReady polls a node until it answers its health check and sees at
// least wantMembers members alive, the process exits, or ctx ends.
func waitReady(ctx context.Context, c *http.Client, p *process, wantMembers int) error {
	var last error
	// A large cluster on a few cores answers slowly: poll it less often.
	scale := time.Duration(max(1, wantMembers/10))
	for {
		hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond*scale)
		h, err := getHealth(hctx, c, p.spec.Addrs.HTTP)
		cancel()
		if err == nil {
			if len(h.Members) >= wantMembers {
				return nil
			}
			err = fmt.Errorf("sees %d of %d members %v", len(h.Members), wantMembers, h.Members)
		}
		last = err
		select {
		case <-p.exited:
			return fmt.Errorf("node %s exited during start-up (%v); see %s", p.spec.Name, p.err, p.spec.LogPath)
		case <-ctx.Done():
			// Wrap ctx's error, so that an interrupted start-up reads as
			// interrupted (context.Canceled), a slow one as a timeout.
			return fmt.Errorf("node %s not ready (%w): %v", p.spec.Name, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond * scale):
		}
	}
}
