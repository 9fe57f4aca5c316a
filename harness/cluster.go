package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ec-counter/ec-counter/crashfs"
	"github.com/ec-counter/ec-counter/lab"
	"github.com/ec-counter/ec-counter/runstore"
	"golang.org/x/sync/errgroup"
)

// cluster is the set of node processes of one run.
type cluster struct {
	specs []nodeSpec
	sp    *lab.Spawner
	http  *http.Client // for health checks and admin calls
	token string
	grace time.Duration

	mu    sync.Mutex
	procs map[string]*process // by node name; nil entry: not running

	// disks holds each node's power-loss file system, when the data
	// directories sit on one (docs/faults.md "Crash: power loss"); mounts is the
	// directory of their mountpoints.
	disks  map[string]*crashfs.FS
	mounts string
	logf   func(format string, args ...any) // the run's log; nil in tests
	// afterRestart, if set, runs once a restarted node is ready: the run
	// reads it there (docs/faults.md "Faults: the nemesis").
	afterRestart func(ctx context.Context, node string)
	// gates holds each node's clients back while it restarts, until
	// afterRestart has read it: a client's set must not reach a node that
	// came back empty before that read does, or it hides the loss.
	gates map[string]*gate
}

// gate returns the gate of node's clients (nil for an unknown node).
func (c *cluster) gate(node string) *gate { return c.gates[node] }

// gate holds a node's clients back while it is closed: each client waits
// on it before each request.
type gate struct {
	mu     sync.Mutex
	closed chan struct{} // closed again when the gate opens; nil while open
}

// close makes later waits block until open.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

// open releases every waiter.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

// wait returns once the gate is open, or with ctx's error.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.closed
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// diskOptions says whether newCluster puts the data directories on the
// power-loss file system, and how it crashes.
type diskOptions struct {
	lazy bool
	torn bool
	seed uint64
}

// newCluster plans n nodes in the run directory, writes a fresh admin
// token, and expands the node command template for each node. In the lab,
// hosts[i] is node i's host; on the loopback network hosts is nil. On SSH
// hosts (fleet not nil), the template's paths are those on the hosts.
//
// With disk.lazy, each node's data directory is a power-loss file system
// mounted at run/mnt/<name>, whose durable state lives in run/data/<name>;
// the caller must close the cluster (stop) to unmount them.
func newCluster(run runstore.RunDir, n int, nodeCmd string, grace time.Duration, addrs []runstore.NodeAddrs, hosts []*lab.Host, fleet *lab.Fleet, disk diskOptions) (_ *cluster, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	tokenBytes := make([]byte, 16)
	if _, err := rand.Read(tokenBytes); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(tokenBytes)
	tokenFile, err := filepath.Abs(run.File("admin-token"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write admin token: %w", err)
	}
	c := &cluster{
		sp:    lab.NewSpawner(),
		http:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}},
		token: token,
		grace: grace,
		procs: make(map[string]*process),
		disks: make(map[string]*crashfs.FS),
		gates: make(map[string]*gate),
	}
	for _, name := range nodeNames(n) {
		c.gates[name] = new(gate)
	}
	defer func() {
		if err != nil {
			c.unmount()
			c.sp.Close()
		}
	}()
	if disk.lazy {
		if c.mounts, err = filepath.Abs(run.File(runstore.MountsDir)); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		name := nodeNames(n)[i]
		var peers, peerHTTP []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a.Gossip)
				peerHTTP = append(peerHTTP, a.HTTP)
			}
		}
		dataDir, err := filepath.Abs(run.NodeData(name))
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
		if disk.lazy {
			mnt := filepath.Join(c.mounts, name)
			fs, err := crashfs.Mount(dataDir, mnt, crashfs.Options{Torn: disk.torn, Seed: disk.seed + uint64(i)})
			if err != nil {
				return nil, fmt.Errorf("power-loss file system for %s: %w", name, err)
			}
			c.disks[name] = fs
			dataDir = mnt
		}
		nodeSelf, nodeData, nodeToken := self, dataDir, tokenFile
		if fleet != nil {
			p := fleet.Paths(name)
			nodeSelf, nodeData, nodeToken = p.Self, p.DataDir, p.TokenFile
		}
		args, err := expandTemplate(nodeCmd, templateVars(nodeSelf, name, addrs[i].HTTP, addrs[i].Gossip,
			strings.Join(peers, ","), strings.Join(peerHTTP, ","), nodeData, nodeToken))
		if err != nil {
			return nil, err
		}
		spec := nodeSpec{
			Name: name, Addrs: addrs[i], DataDir: dataDir,
			LogPath: run.NodeLog(name), TokenFile: tokenFile, Args: args, Fleet: fleet,
		}
		if hosts != nil {
			spec.Host = hosts[i]
		}
		c.specs = append(c.specs, spec)
	}
	return c, nil
}

// templateVars maps the placeholders of a node command template to values.
func templateVars(self, name, http, gossip, peers, peerHTTP, dataDir, tokenFile string) map[string]string {
	return map[string]string{
		"self":             self,
		"name":             name,
		"http":             http,
		"gossip":           gossip,
		"peers":            peers,
		"peer_http":        peerHTTP,
		"data_dir":         dataDir,
		"admin_token_file": tokenFile,
	}
}

// names returns the node names in order.
func (c *cluster) names() []string {
	out := make([]string, len(c.specs))
	for i, s := range c.specs {
		out[i] = s.Name
	}
	return out
}

func (c *cluster) spec(name string) (nodeSpec, bool) {
	for _, s := range c.specs {
		if s.Name == name {
			return s, true
		}
	}
	return nodeSpec{}, false
}

// startNode starts (or restarts) one node's process.
func (c *cluster) startNode(name string) (*process, error) {
	s, ok := c.spec(name)
	if !ok {
		return nil, fmt.Errorf("no node %q", name)
	}
	c.mu.Lock()
	if p := c.procs[name]; p != nil {
		select {
		case <-p.exited:
		default:
			c.mu.Unlock()
			return nil, fmt.Errorf("node %s is already running", name)
		}
	}
	c.mu.Unlock()
	// Outside the lock: on SSH hosts a start is a round trip, and the
	// nodes of a cluster start side by side.
	p, err := startProcess(c.sp, s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return p, nil
}

// proc returns the node's current process, or nil.
func (c *cluster) proc(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name]
}

// start starts every node and waits until each is healthy and sees all the
// others alive.
func (c *cluster) start(ctx context.Context, timeout time.Duration) error {
	procs := make([]*process, len(c.specs))
	var g errgroup.Group
	for i, s := range c.specs {
		g.Go(func() (err error) {
			procs[i], err = c.startNode(s.Name)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make(chan error, len(procs))
	want := readyMembers(len(c.specs))
	for _, p := range procs {
		go func() {
			err := waitReady(ctx, c.http, p, want)
			if err == nil {
				err = c.owned(ctx, p)
			}
			errs <- err
		}()
	}
	var first error
	for range procs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ownerTimeout bounds the admin request that proves a node is this run's.
const ownerTimeout = 2 * time.Second

// owned checks that the node that answered p's health check is p, not
// another process on its address (another run's node, say): a node whose
// exit was seen is not up, and a node given this run's admin token file
// must accept the token (a node of another run answers 401). A node
// without the admin API cannot be told apart this way; on SSH hosts the
// preflight has already refused ports that something else holds.
func (c *cluster) owned(ctx context.Context, p *process) error {
	s := p.spec
	exited := func() error {
		if p.running() {
			return nil
		}
		return fmt.Errorf("node %s exited during start-up (%v), yet %s answered its health check: another process serves that address; see %s",
			s.Name, p.err, s.Addrs.HTTP, s.LogPath)
	}
	if err := exited(); err != nil {
		return err
	}
	token := s.TokenFile
	if s.Fleet != nil {
		token = s.Fleet.Paths(s.Name).TokenFile
	}
	if !slices.ContainsFunc(s.Args, func(a string) bool { return strings.Contains(a, token) }) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ownerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addrs.HTTP+"/v1/admin/faults", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if err := exited(); err != nil {
			return err
		}
		return fmt.Errorf("node %s: prove it is this run's node (GET /v1/admin/faults with this run's token): %w", s.Name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("node %s: %s answers its health check but refuses this run's admin token (HTTP %d): it is another process, not this run's node (another run on the same address?)",
			s.Name, s.Addrs.HTTP, resp.StatusCode)
	}
	return exited()
}

// readyMembers is how many members each node of an n-node cluster must
// see before the clients start (docs/cli.md "ec-counter test"): all of them up
// to 10 nodes; beyond, a majority, which already makes the cluster one
// (any two majorities share a node) without waiting for n² views, which
// gossip completes while the clients run.
func readyMembers(n int) int {
	if n <= 10 {
		return n
	}
	return n/2 + 1
}

// stop ends every node (SIGTERM, then SIGKILL after the grace period) and
// releases the spawner. It returns the nodes that did not exit cleanly on
// SIGTERM, and, apart, those that had already ended on their own with an
// error, each described with its exit status and the end of its log.
func (c *cluster) stop() (unclean, died []string) {
	c.mu.Lock()
	procs := make(map[string]*process, len(c.procs))
	for k, v := range c.procs {
		procs[k] = v
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clean, alone := p.stop(c.grace)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case alone && !clean && !p.killed.Load():
				if p.remote != nil {
					died = append(died, fmt.Sprintf("node %s exited on its own (%v); its log comes home to %s", name, p.err, p.spec.LogPath))
					break
				}
				died = append(died, fmt.Sprintf("node %s exited on its own (%v); %s ends: %s", name, p.err, p.spec.LogPath, logTail(p.spec.LogPath, 3)))
			case !clean && !alone:
				unclean = append(unclean, name)
			}
		}()
	}
	wg.Wait()
	c.sp.Close()
	c.http.CloseIdleConnections()
	if err := c.unmount(); err != nil {
		died = append(died, "power-loss file systems: "+err.Error())
	}
	sort.Strings(unclean)
	sort.Strings(died)
	return unclean, died
}

// unmount unmounts every power-loss file system and removes the
// mountpoints: the durable state stays in data/<name>.
func (c *cluster) unmount() error {
	var errs []error
	for _, fs := range c.disks {
		if err := fs.Unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	c.disks = nil
	if c.mounts != "" && len(errs) == 0 {
		if err := os.RemoveAll(c.mounts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// logTail returns the last n lines of a log file, joined by " | ", each cut
// to 200 bytes.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 16<<10 {
		f.Seek(-16<<10, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(len(lines)-n, 0):]
	for i, l := range lines {
		if len(l) > 200 {
			lines[i] = l[:200] + "..."
		}
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(nothing)"
	}
	return strings.Join(lines, " | ")
}
