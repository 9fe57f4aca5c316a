package lab

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// threadNetns names the network namespace of the calling thread. Unlike
// /proc/self/task/TID, it resolves correctly in a PID namespace of our own
// (Reexec makes one) while /proc still belongs to the parent's.
const threadNetns = "/proc/thread-self/ns/net"

// onThread runs f on a thread of its own, which f may move into another
// network namespace. Afterwards the thread returns to this process's
// namespace, or, if it cannot, dies with its goroutine rather than serve
// other goroutines from the wrong namespace.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(threadNetns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		ferr := f()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("return to the router's network namespace: %w", err) // the thread stays locked
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newNetns creates a network namespace and returns it open, leaving every
// thread of this process where it was.
func newNetns() (*os.File, error) {
	var ns *os.File
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		var err error
		ns, err = os.Open(threadNetns)
		return err
	})
	if err != nil && ns != nil {
		ns.Close()
		ns = nil
	}
	return ns, err
}

// inNetns runs f on a thread in the network namespace ns: sockets f
// creates belong to it, wherever they are used later.
func inNetns(ns *os.File, f func() error) error {
	return onThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return err
		}
		return f()
	})
}
