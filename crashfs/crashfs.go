// Package crashfs is a power-loss file system for a node's data directory,
// in the spirit of Jepsen's LazyFS: a FUSE file system, kept in memory,
// that models a page cache over a disk, so that a test can cut the power
// (Crash) and see what a node's writes would have left on disk.
//
// Every file has a current content, which reads see, and a durable
// content, as of its last fsync (or fdatasync). Every directory has current
// entries and durable entries, as of the last fsync of the directory itself:
// create, mkdir, unlink, rmdir, rename and link change current entries
// only, and fsync of a file does not make its name durable. A rename
// between directories becomes durable in each directory with that
// directory's fsync.
//
// Crash throws away everything not durable: directories get their durable
// entries back, files their durable content, and a file that a durable
// entry names but that was never fsynced is empty, as on ext4. With
// Options.Torn, each file keeps instead a random prefix of the writes made
// since its last fsync.
//
// The durable state is also kept in a plain backing directory, rewritten
// after every fsync that changes it, so that it can be looked at after a
// run; Mount loads it back, all of it durable.
//
// Mount a node's data directory itself: the root always exists, while a
// directory made inside the mount survives a crash only once its parent has
// been fsynced. sync(1) and syncfs(2) make nothing durable (the kernel does
// not pass them to FUSE file systems), stricter than ext4, where they and
// any fsync commit the whole journal. Times, owners and extended attributes
// are not modelled across crashes; symbolic links, device files and
// O_TMPFILE are not supported.
package crashfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configures a mount.
type Options struct {
	// Torn makes Crash keep, for each file with writes since its last
	// fsync, a random prefix of those writes (and truncations), applied in
	// order, instead of none of them.
	Torn bool
	// Seed seeds the random choices of torn crashes, so that a run can be
	// replayed.
	Seed uint64
}

// Lost is what a crash threw away. Only files and directories that were
// still reachable, through current or durable entries, are counted: writes
// to a file already deleted for good were not lost by the crash.
type Lost struct {
	Writes  int // writes and truncations made since a file's last fsync
	Bytes   int // bytes those writes carried
	Entries int // names whose directory entry the crash changed back
}

// String describes l, as "3 writes (120 bytes), 2 directory entries".
func (l Lost) String() string {
	return fmt.Sprintf("%s (%s), %s",
		plural(l.Writes, "write", "writes"),
		plural(l.Bytes, "byte", "bytes"),
		plural(l.Entries, "directory entry", "directory entries"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// FS is a mounted crash file system. Its methods are safe for concurrent
// use with each other and with the file system's users.
type FS struct {
	mountpoint string
	server     *fuse.Server

	mu     sync.Mutex
	tree   *tree
	mirror *mirror
	rng    *rand.Rand // for torn crashes; nil otherwise
	epoch  uint64     // crashes so far; handles opened before the last one are stale
	// mirrorErr is the first failure to bring the backing directory up to
	// date after a crash, reported by Unmount.
	mirrorErr error
	done      bool // unmounted
}

// Mount loads the backing directory (created if missing), all of it
// durable, and mounts a crash file system holding it at mountpoint (also
// created if missing). The two must not be inside each other. Mounting
// needs root, or CAP_SYS_ADMIN in the user namespace that owns the mount
// namespace, or a fusermount binary to fall back on.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, fmt.Errorf("crashfs: backing directory: %w", err)
	}
	mountpoint, err = filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("crashfs: mountpoint: %w", err)
	}
	if within(backing, mountpoint) || within(mountpoint, backing) {
		return nil, fmt.Errorf("crashfs: backing directory %s and mountpoint %s must not be inside each other", backing, mountpoint)
	}
	if err := os.MkdirAll(backing, 0o755); err != nil {
		return nil, fmt.Errorf("crashfs: backing directory: %w", err)
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return nil, fmt.Errorf("crashfs: mountpoint: %w", err)
	}
	t, err := load(backing, opts.Torn)
	if err != nil {
		return nil, fmt.Errorf("crashfs: %w", err)
	}
	f := &FS{
		mountpoint: mountpoint,
		tree:       t,
		mirror:     newMirror(backing, t),
	}
	if opts.Torn {
		f.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	}
	// No kernel caching of names or attributes: after a crash the kernel
	// must ask again. Data pages are dropped on every open (no
	// FOPEN_KEEP_CACHE) and when a crash changes a file's mtime.
	zero := time.Duration(0)
	f.server, err = fs.Mount(mountpoint, &node{fsys: f, ino: rootIno}, &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMount:   true,
			FsName:        "crashfs",
			Name:          "crashfs",
			AllowOther:    false,
			DisableXAttrs: true, // or the kernel asks for security.capability before every write
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
	})
	if err != nil {
		return nil, fmt.Errorf("crashfs: mount %s: %w", mountpoint, err)
	}
	return f, nil
}

// within tells whether path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// Mountpoint returns where f is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Crash cuts the power: everything not durable is thrown away (see the
// package comment), and the backing directory is brought up to date (a
// torn crash can make some writes durable). The processes using the file
// system should be dead (SIGKILLed) first: handles opened before the crash
// answer EIO afterwards, and inodes that did not survive ESTALE.
//
// The crash itself cannot fail. If the backing directory cannot be brought
// up to date (a full disk, say), the file system goes on from the crashed
// state in memory, and Unmount reports that the backing directory is
// behind.
func (f *FS) Crash() Lost {
	f.mu.Lock()
	defer f.mu.Unlock()
	lost := f.tree.crash(f.rng)
	f.epoch++
	if err := f.mirror.sync(f.tree); err != nil && f.mirrorErr == nil {
		f.mirrorErr = fmt.Errorf("crashfs: the backing directory is behind the crashed state: %w", err)
	}
	return lost
}

// Unmount unmounts the file system. Nothing is made durable: the backing
// directory keeps the durable state only, so the next Mount of it sees what
// a crash would have left. If the mount is busy
// (a process still has a file open or its working directory there), it is
// detached lazily (MNT_DETACH): it disappears from the mountpoint at once,
// and the kernel ends the FUSE connection when the last user lets go.
func (f *FS) Unmount() error {
	f.mu.Lock()
	done := f.done
	f.done = true
	f.mu.Unlock()
	if done {
		return nil
	}
	f.mu.Lock()
	mirrorErr := f.mirrorErr
	f.mu.Unlock()
	err := f.server.Unmount()
	if err == nil {
		return mirrorErr
	}
	if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
		return errors.Join(mirrorErr, fmt.Errorf("crashfs: unmount %s: %w", f.mountpoint, errors.Join(err, fmt.Errorf("lazy unmount: %w", derr))))
	}
	// Give the serving goroutines a moment to see the connection end, if
	// nobody holds it any more.
	exited := make(chan struct{})
	go func() {
		f.server.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(250 * time.Millisecond):
	}
	return mirrorErr
}
