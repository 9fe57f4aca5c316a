package crashfs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is the FUSE side of an inode of the model: every operation goes to
// the tree by inode number, under the FS's lock, so that go-fuse's own tree
// of nodes, which a crash makes stale, is never relied on.
type node struct {
	fs.Inode
	fsys *FS
	ino  uint64
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeFlusher        = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeReleaser       = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)

	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

// fileHandle is an open regular file.
type fileHandle struct {
	epoch  uint64 // the FS's epoch when opened
	append bool   // O_APPEND: every write goes at the end
}

// handleOK tells whether handle fh (nil or a *fileHandle) was opened since
// the last crash. f.mu must be held.
func (f *FS) handleOK(fh fs.FileHandle) bool {
	h, ok := fh.(*fileHandle)
	return !ok || h.epoch == f.epoch
}

// fillAttr fills out with the attributes of n, an inode of t.
func fillAttr(t *tree, n *inode, out *fuse.Attr) {
	out.Ino = n.ino
	if n.dir {
		out.Mode = syscall.S_IFDIR | n.perm
		out.Nlink = 2
		for _, c := range n.entries {
			if cn := t.inodes[c]; cn != nil && cn.dir {
				out.Nlink++
			}
		}
		out.Size = 4096
	} else {
		out.Mode = syscall.S_IFREG | n.perm
		out.Nlink = uint32(n.links)
		out.Size = uint64(len(n.data))
	}
	out.Owner = fuse.Owner{Uid: n.uid, Gid: n.gid}
	out.SetTimes(&n.atime, &n.mtime, &n.ctime)
}

// newChild returns the go-fuse node for inode ino; go-fuse reuses the one it
// has if the kernel already knows ino.
func (n *node) newChild(ctx context.Context, ino uint64, dir bool) *fs.Inode {
	mode := uint32(syscall.S_IFREG)
	if dir {
		mode = syscall.S_IFDIR
	}
	return n.NewInode(ctx, &node{fsys: n.fsys, ino: ino}, fs.StableAttr{Mode: mode, Ino: ino})
}

// caller returns the user and group of the process making a request.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := ctx.(*fuse.Context); ok {
		return c.Caller.Uid, c.Caller.Gid
	}
	return 0, 0
}

// Lookup finds a directory entry.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	c, errno := f.tree.lookup(n.ino, name)
	if errno != 0 {
		f.mu.Unlock()
		return nil, errno
	}
	fillAttr(f.tree, c, &out.Attr)
	ino, dir := c.ino, c.dir
	f.mu.Unlock()
	return n.newChild(ctx, ino, dir), 0
}

// Getattr answers stat. The handle is ignored: go-fuse passes some open
// handle of the node even for stat by path.
func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	c, errno := f.tree.node(n.ino)
	if errno != 0 {
		return errno
	}
	fillAttr(f.tree, c, &out.Attr)
	return 0
}

// Setattr answers truncate, chmod, chown and utimens.
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.handleOK(fh) {
		return syscall.EIO
	}
	t := f.tree
	if size, ok := in.GetSize(); ok {
		if errno := t.truncate(n.ino, int64(min(size, maxFileSize+1))); errno != 0 {
			return errno
		}
	}
	if perm, ok := in.GetMode(); ok {
		if errno := t.chmod(n.ino, perm); errno != 0 {
			return errno
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		if errno := t.chown(n.ino, uid, gid); errno != 0 {
			return errno
		}
	}
	var atime, mtime *time.Time
	if a, ok := in.GetATime(); ok {
		atime = &a
	}
	if m, ok := in.GetMTime(); ok {
		mtime = &m
	}
	if atime != nil || mtime != nil {
		if errno := t.setTimes(n.ino, atime, mtime); errno != 0 {
			return errno
		}
	}
	c, errno := t.node(n.ino)
	if errno != 0 {
		return errno
	}
	fillAttr(t, c, &out.Attr)
	return 0
}

// Create creates and opens a file (or opens the existing one, without
// O_EXCL).
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	uid, gid := caller(ctx)
	f := n.fsys
	f.mu.Lock()
	t := f.tree
	c, created, errno := t.create(n.ino, name, mode, uid, gid, flags&syscall.O_EXCL != 0)
	if errno == 0 && !created && flags&syscall.O_TRUNC != 0 {
		errno = t.truncate(c.ino, 0)
	}
	if errno == 0 {
		errno = t.open(c.ino)
	}
	if errno != 0 {
		f.mu.Unlock()
		return nil, nil, 0, errno
	}
	fillAttr(t, c, &out.Attr)
	h := &fileHandle{epoch: f.epoch, append: flags&syscall.O_APPEND != 0}
	ino := c.ino
	f.mu.Unlock()
	return n.newChild(ctx, ino, false), h, 0, 0
}

// Open opens a regular file. The kernel drops its cached pages of the file
// (no FOPEN_KEEP_CACHE), so reads after a crash see the model.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tree
	if _, errno := t.fileNode(n.ino); errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_TRUNC != 0 { // only without FUSE_ATOMIC_O_TRUNC, which go-fuse does not ask for
		if errno := t.truncate(n.ino, 0); errno != 0 {
			return nil, 0, errno
		}
	}
	if errno := t.open(n.ino); errno != 0 {
		return nil, 0, errno
	}
	return &fileHandle{epoch: f.epoch, append: flags&syscall.O_APPEND != 0}, 0, 0
}

// Read reads current content, unsynced writes included.
func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.handleOK(fh) {
		return nil, syscall.EIO
	}
	data, errno := f.tree.read(n.ino, off, len(dest))
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(data), 0
}

// Write writes to the current content only.
func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.handleOK(fh) {
		return 0, syscall.EIO
	}
	h, _ := fh.(*fileHandle)
	if _, errno := f.tree.write(n.ino, off, data, h != nil && h.append); errno != 0 {
		return 0, errno
	}
	return uint32(len(data)), 0
}

// Flush answers close; it makes nothing durable.
func (n *node) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.handleOK(fh) {
		return syscall.EIO
	}
	return 0
}

// Fsync makes the file's content durable (fsync and fdatasync alike), or a
// directory's entries when go-fuse sends a directory's fsync here.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.handleOK(fh) {
		return syscall.EIO
	}
	return f.sync(n.ino)
}

// sync makes ino durable and updates the backing directory. f.mu must be
// held.
func (f *FS) sync(ino uint64) syscall.Errno {
	changed, errno := f.tree.sync(ino)
	if errno != 0 {
		return errno
	}
	if changed {
		if err := f.mirror.sync(f.tree); err != nil {
			return syscall.EIO
		}
	}
	return 0
}

// Release forgets a handle.
func (n *node) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := fh.(*fileHandle); ok && h.epoch == f.epoch {
		f.tree.release(n.ino)
	}
	return 0
}

// Mkdir makes a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	f := n.fsys
	f.mu.Lock()
	c, errno := f.tree.mkdir(n.ino, name, mode, uid, gid)
	if errno != 0 {
		f.mu.Unlock()
		return nil, errno
	}
	fillAttr(f.tree, c, &out.Attr)
	ino := c.ino
	f.mu.Unlock()
	return n.newChild(ctx, ino, true), 0
}

// Unlink removes a file's name.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tree.unlink(n.ino, name)
}

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tree.rmdir(n.ino, name)
}

// Rename renames, with RENAME_NOREPLACE; RENAME_EXCHANGE and
// RENAME_WHITEOUT answer EINVAL.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tree.rename(n.ino, name, np.ino, newName, flags)
}

// Link makes a hard link to a file.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	tn, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	f := n.fsys
	f.mu.Lock()
	c, errno := f.tree.link(tn.ino, n.ino, name)
	if errno != 0 {
		f.mu.Unlock()
		return nil, errno
	}
	fillAttr(f.tree, c, &out.Attr)
	ino := c.ino
	f.mu.Unlock()
	return n.newChild(ctx, ino, false), 0
}

// Statfs reports a roomy, mostly empty file system.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blocks, files = 1 << 24, 1 << 20 // 64 GiB of 4 KiB blocks
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	var used uint64
	for _, c := range f.tree.inodes {
		used += (uint64(len(c.data)) + 4095) / 4096
	}
	out.Bsize, out.Frsize, out.NameLen = 4096, 4096, 255
	out.Blocks = blocks
	out.Bfree = blocks - min(used, blocks)
	out.Bavail = out.Bfree
	out.Files = files
	out.Ffree = files - min(uint64(len(f.tree.inodes)), files)
	return 0
}

// OpendirHandle opens a directory, for listing and for fsync.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	parent := n.StableAttr().Ino
	if _, p := n.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, errno := f.tree.dirNode(n.ino); errno != 0 {
		return nil, 0, errno
	}
	if errno := f.tree.open(n.ino); errno != 0 {
		return nil, 0, errno
	}
	d := &dirHandle{fsys: f, ino: n.ino, parent: parent, epoch: f.epoch}
	d.load()
	return d, 0, 0
}

// dirHandle is an open directory: a listing taken when it was opened (or
// rewound), and the way to fsync the directory.
type dirHandle struct {
	fsys   *FS
	ino    uint64
	parent uint64 // inode number for ".."
	epoch  uint64

	mu      sync.Mutex
	entries []fuse.DirEntry
	next    int
}

// load lists the directory. d.fsys.mu must be held.
func (d *dirHandle) load() syscall.Errno {
	ents, errno := d.fsys.tree.list(d.ino)
	if errno != 0 {
		return errno
	}
	list := make([]fuse.DirEntry, 0, len(ents)+2)
	list = append(list,
		fuse.DirEntry{Name: ".", Ino: d.ino, Mode: syscall.S_IFDIR},
		fuse.DirEntry{Name: "..", Ino: d.parent, Mode: syscall.S_IFDIR})
	for _, e := range ents {
		mode := uint32(syscall.S_IFREG)
		if e.n.dir {
			mode = syscall.S_IFDIR
		}
		list = append(list, fuse.DirEntry{Name: e.name, Ino: e.n.ino, Mode: mode})
	}
	for i := range list {
		list[i].Off = uint64(i + 1)
	}
	d.mu.Lock()
	d.entries, d.next = list, 0
	d.mu.Unlock()
	return 0
}

// Readdirent returns the next entry, or nil at the end.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	f := d.fsys
	f.mu.Lock()
	stale := d.epoch != f.epoch
	f.mu.Unlock()
	if stale {
		return nil, syscall.EIO
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next >= len(d.entries) {
		return nil, 0
	}
	e := d.entries[d.next]
	d.next++
	return &e, 0
}

// Seekdir moves to an offset Readdirent gave; 0 lists the directory again.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	f := d.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.epoch != f.epoch {
		return syscall.EIO
	}
	if off == 0 {
		return d.load()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if off > uint64(len(d.entries)) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// Fsyncdir makes the directory's current entries durable.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	f := d.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.epoch != f.epoch {
		return syscall.EIO
	}
	return f.sync(d.ino)
}

// Releasedir forgets the handle.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	f := d.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.epoch == f.epoch {
		f.tree.release(d.ino)
	}
}
