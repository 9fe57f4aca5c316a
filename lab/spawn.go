package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Spawner starts node processes from one OS thread that stays alive until
// Close: Linux delivers the parent-death signal when the thread that forked
// a child exits, so starting nodes from arbitrary goroutines could kill them
// early, and not setting it would let them outlive a SIGKILLed harness. The
// same thread can enter a host's network namespace just for the fork, so a
// node starts inside its host.
type Spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd   *exec.Cmd
	netns int // a network namespace fd to start the process in; -1: here
	err   chan error
}

// NewSpawner starts the spawner's thread.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		defer close(s.done)
		home, err := os.Open(threadNetns)
		close(ready)
		if home != nil {
			defer home.Close()
		}
		broken := err
		for r := range s.reqs {
			switch {
			case broken != nil:
				r.err <- fmt.Errorf("spawner: %w", broken)
			case r.netns < 0:
				r.err <- r.cmd.Start()
			default:
				var serr error
				if serr = unix.Setns(r.netns, unix.CLONE_NEWNET); serr != nil {
					r.err <- fmt.Errorf("enter the host's network namespace: %w", serr)
					continue
				}
				serr = r.cmd.Start()
				if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
					broken = fmt.Errorf("could not return to the harness's network namespace: %w", err)
				}
				r.err <- serr
			}
		}
	}()
	<-ready
	return s
}

// Start starts cmd so that it dies with the harness (SIGKILL on the parent's
// death) in a process group of its own, so that Ctrl-C reaches only the
// harness, which then stops nodes in order. With a host, the process starts
// in the host's network namespace; with nil, in the harness's own.
func (s *Spawner) Start(cmd *exec.Cmd, host *Host) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	cmd.Env = withoutInsideMarker(cmd.Env)
	r := spawnReq{cmd: cmd, netns: -1, err: make(chan error, 1)}
	if host != nil {
		if host.ns == nil {
			return errors.New("host " + host.Name + " is closed")
		}
		r.netns = int(host.ns.Fd())
	}
	s.reqs <- r
	return <-r.err
}

// Close stops the spawner; call it only after every child has exited, since
// its thread's exit kills the children still running.
func (s *Spawner) Close() {
	close(s.reqs)
	<-s.done
}

// OutsideEnv returns this process's environment without the marker that
// says it runs inside the lab's namespace: for a child that is an
// ec-counter command of its own, which must make its own namespace.
func OutsideEnv() []string { return withoutInsideMarker(nil) }

// withoutInsideMarker returns env (nil: this process's environment) without
// the marker that tells a process it runs inside the lab's namespace, and
// its lifeline: a node runs in a host's namespace, not the harness's.
func withoutInsideMarker(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, envInside+"=") && !strings.HasPrefix(kv, envLifeline+"=") {
			out = append(out, kv)
		}
	}
	return out
}
