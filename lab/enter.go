package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// envInside marks the process Reexec starts; its value is the identity of
// the network namespace the parent ran in, so that a copied environment
// alone does not make a process believe it is inside.
const envInside = "EC_COUNTER_LAB_OUTER_NETNS"

// netnsID identifies the network namespace of this process, e.g.
// "net:[4026531840]".
func netnsID() (string, error) {
	return os.Readlink("/proc/self/ns/net")
}

// Inside reports whether this process is the one Reexec started, in a
// network namespace of its own. Only there may the lab add links, routes
// and rules: whatever it adds dies with the process.
func Inside() bool {
	outer := os.Getenv(envInside)
	if outer == "" {
		return false
	}
	own, err := netnsID()
	return err == nil && own != outer
}

// NotAvailableError says why this machine cannot give the harness private
// namespaces, and how to enable them.
type NotAvailableError struct {
	Err error
}

func (e *NotAvailableError) Error() string {
	hint := "run 'ec-counter doctor' for details"
	if os.Geteuid() != 0 {
		hint = "unprivileged user namespaces seem disabled (sysctl kernel.unprivileged_userns_clone=1, " +
			"user.max_user_namespaces > 0, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0); " + hint
	}
	return fmt.Sprintf("cannot create a private network namespace: %v; %s", e.Err, hint)
}

func (e *NotAvailableError) Unwrap() error { return e.Err }

// envLifeline names the descriptor by which the child Reexec starts learns
// that its parent has died: the read end of a pipe whose only write end the
// parent holds.
const envLifeline = "EC_COUNTER_LAB_LIFELINE_FD"

// Reexec runs this program again, with the same arguments, environment and
// standard streams, in a new network, PID and mount namespace, and as an
// unprivileged user also in a new user namespace in which it is root (files
// it creates belong to the caller). The child is the first process of its
// PID namespace, so when it exits the kernel kills every process left in
// it, a node's wrapper's children included; and it exits as soon as this
// process dies (Init watches a pipe whose write end only this process
// holds), so every process, namespace, link and rule of the run is removed
// by the kernel whatever happens, SIGKILL included; file systems mounted in
// it (the power-loss file system of crash faults) are private to it and go
// with it. SIGINT, SIGTERM and
// SIGHUP are passed on to the child. Reexec returns the child's exit code
// (255 if a signal ended it), or a *NotAvailableError if the namespaces
// could not be created.
func Reexec() (int, error) {
	outer, err := netnsID()
	if err != nil {
		return 0, &NotAvailableError{Err: err}
	}
	lifeline, hold, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer hold.Close()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{lifeline} // descriptor 3
	cmd.Env = append(withoutInsideMarker(nil), envInside+"="+outer, envLifeline+"=3")
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	err = cmd.Start()
	lifeline.Close()
	if err != nil {
		return 0, &NotAvailableError{Err: err}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return 255, nil // ended by a signal
	}
	return 255, fmt.Errorf("wait for the harness in its namespace: %w", err)
}

// watchLifeline exits this process when the process that ran Reexec dies:
// its pipe's write end closes and the read end sees end of file.
func watchLifeline() error {
	fd, err := strconv.Atoi(os.Getenv(envLifeline))
	if err != nil {
		return fmt.Errorf("lab: no lifeline to the parent (%s): %w", envLifeline, err)
	}
	syscall.CloseOnExec(fd) // nodes need not hold it
	f := os.NewFile(uintptr(fd), "lifeline")
	go func() {
		var b [1]byte
		f.Read(b[:]) // returns only when the parent is gone
		fmt.Fprintln(os.Stderr, "ec-counter: the parent process died; stopping every node")
		endNamespace(3 * time.Second)
		os.Exit(255)
	}()
	return nil
}

// endNamespace SIGKILLs every other process of this PID namespace, whose
// first process this one is, and waits, up to timeout, until none is left
// but zombies. The kernel would kill them anyway when this process exits,
// but a node killed in the middle of a request to a FUSE file system this
// process serves (the power-loss file system of crash faults) dies only
// once the request is answered: were this process gone, the node would
// hang for good, and the namespace with it.
func endNamespace(timeout time.Duration) {
	if os.Getpid() != 1 {
		return
	}
	_ = syscall.Kill(-1, syscall.SIGKILL) // all but this process
	if !ProcMatches() {
		time.Sleep(200 * time.Millisecond)
		return
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(liveProcesses(func(pid, _ int) bool { return pid != os.Getpid() })) == 0 {
			return
		}
	}
}

// Init prepares the namespace Reexec made: it makes this process exit when
// the one that ran Reexec dies, brings up loopback (so the loopback network
// works in it too) and turns IP forwarding on, so that this namespace
// routes between the lab's hosts. Call it once; it refuses to run outside.
func Init() error {
	if !Inside() {
		return errors.New("lab: Init outside the namespace Reexec makes")
	}
	if err := watchLifeline(); err != nil {
		return err
	}
	// Mounts made here must never propagate to the namespace Reexec ran in
	// (systemd makes / shared): they die with this namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("lab: make the mount namespace private: %w", err)
	}
	// A /proc of this PID namespace, so that process IDs read there are the
	// ones this process uses. Where the kernel refuses (a /proc partly
	// masked, as in some containers), the outer one stays: ProcMatches
	// says which.
	_ = unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lab: find loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lab: bring up loopback: %w", err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("lab: turn on IP forwarding: %w", err)
	}
	return nil
}
