package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinary returns the ec-counter binary: $EC_COUNTER_BIN if set, else
// one built from this module.
func buildBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("EC_COUNTER_BIN"); bin != "" {
		return bin
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary with (set EC_COUNTER_BIN)")
	}
	bin := filepath.Join(t.TempDir(), "ec-counter")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/ec-counter/ec-counter/cmd/ec-counter").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a port free on ip right now.
func freePort(t *testing.T, ip netip.Addr) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// syncBuffer is a bytes.Buffer safe for a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// process is a node running as a child process.
type process struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	base   string
	exited chan struct{}
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// startNodeProcess starts `ec-counter node` with extra flags and waits
// until it is healthy.
func startNodeProcess(t *testing.T, bin, httpAddr, gossipAddr, dataDir string, extra ...string) *process {
	t.Helper()
	args := []string{"node", "--name", "n1", "--http", httpAddr, "--gossip", gossipAddr, "--peers", "", "--data-dir", dataDir}
	p := startProcess(t, bin, append(args, extra...)...)
	p.base = "http://" + httpAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.base + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("node exited during startup: %v\n%s", p.cmd.ProcessState, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not healthy after 10s\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call posts or gets the counter of a node process and returns the value.
func call(ctx context.Context, base string, set int64) (int64, error) {
	var req *http.Request
	var err error
	if set == 0 {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/counter", nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/counter", strings.NewReader(fmt.Sprintf(`{"value": %d}`, set)))
	}
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct{ Value int64 }
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, b.String())
	}
	if _, err := fmt.Sscanf(b.String(), `{"value":%d`, &body.Value); err != nil {
		return 0, fmt.Errorf("response %q: %w", b.String(), err)
	}
	return body.Value, nil
}

// TestKill9KeepsAcknowledgedValues runs a node process under concurrent
// sets and gets, kills it with SIGKILL, restarts it on the same data
// directory, and checks that it serves at least every value it
// acknowledged or served before the kill. Then it checks that SIGTERM is
// a clean exit 0.
func TestKill9KeepsAcknowledgedValues(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds and runs the ec-counter binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	ip := randomLoopback()
	httpAddr := netip.AddrPortFrom(ip, freePort(t, ip)).String()
	gossipAddr := netip.AddrPortFrom(ip, 7946).String()
	dataDir := t.TempDir()

	for round := range 3 {
		p := startNodeProcess(t, bin, httpAddr, gossipAddr, dataDir)
		start, err := call(context.Background(), p.base, 0)
		if err != nil {
			t.Fatal(err)
		}
		var (
			next    atomic.Int64 // last value attempted
			highest atomic.Int64 // highest value acknowledged or read
			wg      sync.WaitGroup
		)
		next.Store(start)
		highest.Store(start)
		raise := func(v int64) {
			for {
				h := highest.Load()
				if v <= h || highest.CompareAndSwap(h, v) {
					return
				}
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		for w := range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					arg := int64(0) // get
					if w%2 == 0 {
						arg = next.Add(1)
					}
					v, err := call(ctx, p.base, arg)
					if err != nil {
						return // killed
					}
					raise(v)
				}
			})
		}
		time.Sleep(300 * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		cancel()
		wg.Wait()

		p = startNodeProcess(t, bin, httpAddr, gossipAddr, dataDir)
		got, err := call(context.Background(), p.base, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d values attempted, highest acknowledged or read %d, after kill -9 and restart %d",
			round, next.Load()-start, highest.Load(), got)
		if got < highest.Load() {
			t.Fatalf("after kill -9 the node serves %d, below %d which it acknowledged or served before", got, highest.Load())
		}
		if got > next.Load() {
			t.Fatalf("after kill -9 the node serves %d, which was never set (last attempt %d)", got, next.Load())
		}

		// SIGTERM: clean shutdown, exit 0.
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("node still running 10s after SIGTERM\n%s", p.stderr)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "node stopped") {
			t.Errorf("no 'node stopped' in the log after SIGTERM:\n%s", p.stderr)
		}
	}
}

func TestNodeCommandUsageErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the ec-counter binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	busyIP := randomLoopback()
	busy, err := net.Listen("tcp", netip.AddrPortFrom(busyIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ok := []string{"--name", "n1", "--http", "127.0.0.1:0", "--gossip", randomLoopback().String() + ":7946", "--data-dir", dir}
	for name, c := range map[string]struct {
		args []string
		code int
	}{
		"missing name":   {[]string{"node", "--http", "127.0.0.1:0", "--gossip", "127.9.9.9:7946", "--data-dir", dir}, 254},
		"bad gossip":     {[]string{"node", "--name", "n1", "--http", "127.0.0.1:0", "--gossip", "localhost:7946", "--data-dir", dir}, 254},
		"bad peers":      {append([]string{"node", "--peers", "127.0.0.2"}, ok...), 254},
		"unknown flag":   {append([]string{"node", "--bogus"}, ok...), 254},
		"bad duration":   {append([]string{"node", "--probe-interval", "fast"}, ok...), 254},
		"negative":       {append([]string{"node", "--rejoin-interval", "-1s"}, ok...), 254},
		"bad log level":  {append([]string{"node", "--log-level", "loud"}, ok...), 254},
		"extra argument": {append([]string{"node", "extra"}, ok...), 254},
		"missing token":  {append([]string{"node", "--admin-token-file", filepath.Join(dir, "nope")}, ok...), 255},
		"gossip in use":  {[]string{"node", "--name", "n1", "--http", "127.0.0.1:0", "--gossip", busy.Addr().String(), "--data-dir", dir}, 255},
	} {
		p := startProcess(t, bin, c.args...)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still running", name)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != c.code {
			t.Errorf("%s: exit code %d, want %d\n%s", name, code, c.code, p.stderr)
		}
	}
}
