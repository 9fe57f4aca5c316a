package crashfs

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// rootIno is the inode number of the root directory, the one FUSE gives it.
const rootIno uint64 = 1

// maxFileSize bounds a file's size, so that a write at a huge offset is
// refused instead of allocating it: the model keeps whole files in memory.
const maxFileSize = 1 << 30

// change is one unsynced change to a file's content: a write of data at
// off, or a truncation to size. Torn crashes replay a prefix of them.
type change struct {
	off   int64
	data  []byte
	trunc bool
	size  int64
}

// inode is a file or a directory of the model.
type inode struct {
	ino                 uint64
	dir                 bool
	perm                uint32 // permission bits, 07777
	uid, gid            uint32
	atime, mtime, ctime time.Time
	links               int // current directory entries naming this inode
	opens               int // open handles, which keep an unlinked inode alive

	// Regular files.
	data         []byte   // current content, what reads see
	durable      []byte   // content as of the last fsync
	synced       bool     // fsynced at least once (or loaded from the backing directory)
	durPerm      uint32   // permission bits as of the last fsync
	version      uint64   // changes whenever durable or durPerm changes, for the mirror
	pending      int      // writes and truncations since the last fsync
	pendingBytes int      // bytes written since the last fsync
	changes      []change // those writes and truncations, kept only for torn crashes

	// Directories.
	entries    map[string]uint64 // current entries, name to inode number
	durEntries map[string]uint64 // entries as of the last fsync of the directory
	// durSince numbers, for each durable entry, the fsync of the directory
	// that made it durable (0: loaded with the backing directory), so that
	// of two durable names of a directory the later one wins a crash.
	durSince map[string]uint64
}

// durableData returns the content a crash would leave: the content as of
// the last fsync, or nothing for a file never fsynced.
func (n *inode) durableData() []byte {
	if !n.synced {
		return nil
	}
	return n.durable
}

// tree is the in-memory model of a file system over a page cache: every
// file has a current and a durable content, every directory current and
// durable entries. Operations change the current state; sync makes one
// inode's current state durable; crash throws away everything not durable.
// Operations report failures as the errno a file system would return. A
// tree is not safe for concurrent use.
type tree struct {
	inodes      map[uint64]*inode
	nextIno     uint64
	nextVersion uint64
	keepChanges bool // record unsynced changes, for torn crashes
	gcAt        int  // collect unreachable inodes when there are this many
	now         func() time.Time
}

// newTree returns a tree holding an empty root directory, durable.
// keepChanges makes it record each unsynced change, which torn crashes need.
func newTree(keepChanges bool) *tree {
	t := &tree{
		inodes:      make(map[uint64]*inode),
		nextIno:     rootIno + 1,
		keepChanges: keepChanges,
		gcAt:        64,
		now:         time.Now,
	}
	now := t.now()
	t.inodes[rootIno] = &inode{
		ino: rootIno, dir: true, perm: 0o755,
		atime: now, mtime: now, ctime: now,
		entries: map[string]uint64{}, durEntries: map[string]uint64{},
	}
	return t
}

// newInode adds a new inode, with no entry naming it yet.
func (t *tree) newInode(dir bool, perm, uid, gid uint32) *inode {
	now := t.now()
	n := &inode{
		ino: t.nextIno, dir: dir, perm: perm & 0o7777, durPerm: perm & 0o7777,
		uid: uid, gid: gid,
		atime: now, mtime: now, ctime: now,
	}
	t.nextIno++
	if dir {
		n.entries = map[string]uint64{}
		n.durEntries = map[string]uint64{}
	}
	t.inodes[n.ino] = n
	return n
}

// node returns inode ino, or ESTALE if it no longer exists (a crash or an
// unlink dropped it).
func (t *tree) node(ino uint64) (*inode, syscall.Errno) {
	n := t.inodes[ino]
	if n == nil {
		return nil, syscall.ESTALE
	}
	return n, 0
}

// dirNode returns directory ino.
func (t *tree) dirNode(ino uint64) (*inode, syscall.Errno) {
	n, errno := t.node(ino)
	if errno != 0 {
		return nil, errno
	}
	if !n.dir {
		return nil, syscall.ENOTDIR
	}
	return n, 0
}

// fileNode returns regular file ino.
func (t *tree) fileNode(ino uint64) (*inode, syscall.Errno) {
	n, errno := t.node(ino)
	if errno != 0 {
		return nil, errno
	}
	if n.dir {
		return nil, syscall.EISDIR
	}
	return n, 0
}

// checkName refuses names that cannot be directory entries.
func checkName(name string) syscall.Errno {
	switch {
	case name == "" || name == "." || name == ".." || strings.Contains(name, "/"):
		return syscall.EINVAL
	case len(name) > 255:
		return syscall.ENAMETOOLONG
	}
	return 0
}

// touch records a change of n's content or entries.
func (t *tree) touch(n *inode) {
	now := t.now()
	n.mtime, n.ctime = now, now
}

// lookup returns the inode that name in directory dir names now.
func (t *tree) lookup(dir uint64, name string) (*inode, syscall.Errno) {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return nil, errno
	}
	ino, ok := d.entries[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	return t.node(ino)
}

// create makes a new empty file named name in dir, or with excl false
// returns the file that already has that name; created tells which.
func (t *tree) create(dir uint64, name string, perm, uid, gid uint32, excl bool) (n *inode, created bool, errno syscall.Errno) {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return nil, false, errno
	}
	if errno := checkName(name); errno != 0 {
		return nil, false, errno
	}
	if ino, ok := d.entries[name]; ok {
		if excl {
			return nil, false, syscall.EEXIST
		}
		n, errno := t.node(ino)
		if errno == 0 && n.dir {
			errno = syscall.EISDIR
		}
		return n, false, errno
	}
	n = t.newInode(false, perm, uid, gid)
	t.addEntry(d, name, n)
	return n, true, 0
}

// mkdir makes a new empty directory named name in dir.
func (t *tree) mkdir(dir uint64, name string, perm, uid, gid uint32) (*inode, syscall.Errno) {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return nil, errno
	}
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	if _, ok := d.entries[name]; ok {
		return nil, syscall.EEXIST
	}
	n := t.newInode(true, perm, uid, gid)
	t.addEntry(d, name, n)
	return n, 0
}

// link gives file ino a new name in dir.
func (t *tree) link(ino, dir uint64, name string) (*inode, syscall.Errno) {
	n, errno := t.node(ino)
	if errno != 0 {
		return nil, errno
	}
	if n.dir {
		return nil, syscall.EPERM
	}
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return nil, errno
	}
	if errno := checkName(name); errno != 0 {
		return nil, errno
	}
	if _, ok := d.entries[name]; ok {
		return nil, syscall.EEXIST
	}
	t.addEntry(d, name, n)
	n.ctime = t.now()
	return n, 0
}

func (t *tree) addEntry(d *inode, name string, n *inode) {
	d.entries[name] = n.ino
	n.links++
	t.touch(d)
}

func (t *tree) removeEntry(d *inode, name string) {
	if n := t.inodes[d.entries[name]]; n != nil {
		n.links--
		n.ctime = t.now()
	}
	delete(d.entries, name)
	t.touch(d)
}

// unlink removes the name of a file.
func (t *tree) unlink(dir uint64, name string) syscall.Errno {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return errno
	}
	n, errno := t.lookup(dir, name)
	if errno != 0 {
		return errno
	}
	if n.dir {
		return syscall.EISDIR
	}
	t.removeEntry(d, name)
	t.maybeCollect()
	return 0
}

// rmdir removes an empty directory.
func (t *tree) rmdir(dir uint64, name string) syscall.Errno {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return errno
	}
	n, errno := t.lookup(dir, name)
	if errno != 0 {
		return errno
	}
	if !n.dir {
		return syscall.ENOTDIR
	}
	if len(n.entries) > 0 {
		return syscall.ENOTEMPTY
	}
	t.removeEntry(d, name)
	t.maybeCollect()
	return 0
}

// Flags of rename(2), which FUSE passes through.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
	renameWhiteout  = 1 << 2
)

// rename moves the entry oldName of directory oldDir to newName in newDir,
// replacing what newName named unless flags has RENAME_NOREPLACE.
// RENAME_EXCHANGE and RENAME_WHITEOUT are not supported.
func (t *tree) rename(oldDir uint64, oldName string, newDir uint64, newName string, flags uint32) syscall.Errno {
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL
	}
	od, errno := t.dirNode(oldDir)
	if errno != 0 {
		return errno
	}
	nd, errno := t.dirNode(newDir)
	if errno != 0 {
		return errno
	}
	if errno := checkName(newName); errno != 0 {
		return errno
	}
	src, errno := t.lookup(oldDir, oldName)
	if errno != 0 {
		return errno
	}
	if oldDir == newDir && oldName == newName {
		return 0
	}
	if src.dir && t.contains(src, newDir) {
		return syscall.EINVAL // a directory moved below itself
	}
	if dstIno, ok := nd.entries[newName]; ok {
		if flags&renameNoReplace != 0 {
			return syscall.EEXIST
		}
		dst, errno := t.node(dstIno)
		if errno != 0 {
			return errno
		}
		if dst == src {
			return 0 // two names of one file: rename(2) does nothing
		}
		switch {
		case src.dir && !dst.dir:
			return syscall.ENOTDIR
		case !src.dir && dst.dir:
			return syscall.EISDIR
		case dst.dir && len(dst.entries) > 0:
			return syscall.ENOTEMPTY
		}
		t.removeEntry(nd, newName)
	}
	delete(od.entries, oldName)
	t.touch(od)
	nd.entries[newName] = src.ino
	t.touch(nd)
	src.ctime = t.now()
	t.maybeCollect()
	return 0
}

// contains tells whether directory ino is d or below d, now.
func (t *tree) contains(d *inode, ino uint64) bool {
	todo := []*inode{d}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if n.ino == ino {
			return true
		}
		for _, c := range n.entries {
			if cn := t.inodes[c]; cn != nil && cn.dir {
				todo = append(todo, cn)
			}
		}
	}
	return false
}

// read returns up to size bytes of file ino from off, as it is now.
func (t *tree) read(ino uint64, off int64, size int) ([]byte, syscall.Errno) {
	n, errno := t.fileNode(ino)
	if errno != 0 {
		return nil, errno
	}
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= int64(len(n.data)) {
		return nil, 0
	}
	end := min(off+int64(size), int64(len(n.data)))
	return slices.Clone(n.data[off:end]), 0
}

// write writes data at off in file ino; at end (O_APPEND) it writes at the
// end of the file instead. It returns the offset written at.
func (t *tree) write(ino uint64, off int64, data []byte, atEnd bool) (int64, syscall.Errno) {
	n, errno := t.fileNode(ino)
	if errno != 0 {
		return 0, errno
	}
	if atEnd {
		off = int64(len(n.data))
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off+int64(len(data)) > maxFileSize {
		return 0, syscall.EFBIG
	}
	c := change{off: off, data: slices.Clone(data)}
	n.data = c.apply(n.data)
	t.record(n, c)
	return off, 0
}

// truncate sets the size of file ino.
func (t *tree) truncate(ino uint64, size int64) syscall.Errno {
	n, errno := t.fileNode(ino)
	if errno != 0 {
		return errno
	}
	if size < 0 {
		return syscall.EINVAL
	}
	if size > maxFileSize {
		return syscall.EFBIG
	}
	c := change{trunc: true, size: size}
	n.data = c.apply(n.data)
	t.record(n, c)
	return 0
}

// record counts an unsynced change of n.
func (t *tree) record(n *inode, c change) {
	n.pending++
	n.pendingBytes += len(c.data)
	if t.keepChanges {
		n.changes = append(n.changes, c)
	}
	t.touch(n)
}

// apply returns content with the change applied; it may reuse content.
func (c change) apply(content []byte) []byte {
	if c.trunc {
		if c.size <= int64(len(content)) {
			return content[:c.size]
		}
		return append(content, make([]byte, c.size-int64(len(content)))...)
	}
	end := c.off + int64(len(c.data))
	if end > int64(len(content)) {
		content = append(content, make([]byte, end-int64(len(content)))...)
	}
	copy(content[c.off:], c.data)
	return content
}

// chmod sets the permission bits of ino.
func (t *tree) chmod(ino uint64, perm uint32) syscall.Errno {
	n, errno := t.node(ino)
	if errno != 0 {
		return errno
	}
	n.perm = perm & 0o7777
	n.ctime = t.now()
	return 0
}

// chown sets the owner and group of ino; ^0 leaves one as it is.
func (t *tree) chown(ino uint64, uid, gid uint32) syscall.Errno {
	n, errno := t.node(ino)
	if errno != 0 {
		return errno
	}
	if uid != ^uint32(0) {
		n.uid = uid
	}
	if gid != ^uint32(0) {
		n.gid = gid
	}
	n.ctime = t.now()
	return 0
}

// setTimes sets the access and modification times of ino; nil leaves one.
func (t *tree) setTimes(ino uint64, atime, mtime *time.Time) syscall.Errno {
	n, errno := t.node(ino)
	if errno != 0 {
		return errno
	}
	if atime != nil {
		n.atime = *atime
	}
	if mtime != nil {
		n.mtime = *mtime
	}
	n.ctime = t.now()
	return 0
}

// sync makes ino's current state durable, as fsync(2) does: a file's
// content and permissions, or a directory's entries (not what they name).
// changed tells whether the durable state changed.
func (t *tree) sync(ino uint64) (changed bool, errno syscall.Errno) {
	n, errno := t.node(ino)
	if errno != 0 {
		return false, errno
	}
	if n.dir {
		if maps.Equal(n.entries, n.durEntries) {
			return false, 0
		}
		t.nextVersion++
		since := map[string]uint64{}
		for name, c := range n.entries {
			if old, ok := n.durEntries[name]; ok && old == c {
				since[name] = n.durSince[name]
			} else {
				since[name] = t.nextVersion
			}
		}
		n.durEntries, n.durSince = maps.Clone(n.entries), since
		return true, 0
	}
	if n.synced && n.pending == 0 && n.durPerm == n.perm {
		return false, 0
	}
	n.durable = slices.Clone(n.data)
	n.synced = true
	n.durPerm = n.perm
	n.pending, n.pendingBytes, n.changes = 0, 0, nil
	t.nextVersion++
	n.version = t.nextVersion
	return true, 0
}

// open and release count the open handles of ino, which keep it alive once
// no entry names it.
func (t *tree) open(ino uint64) syscall.Errno {
	n, errno := t.node(ino)
	if errno != 0 {
		return errno
	}
	n.opens++
	return 0
}

func (t *tree) release(ino uint64) {
	if n := t.inodes[ino]; n != nil && n.opens > 0 {
		n.opens--
		if n.opens == 0 && n.links == 0 {
			t.maybeCollect()
		}
	}
}

// dirent is a directory entry as listed.
type dirent struct {
	name string
	n    *inode
}

// list returns directory dir's current entries, sorted by name.
func (t *tree) list(dir uint64) ([]dirent, syscall.Errno) {
	d, errno := t.dirNode(dir)
	if errno != 0 {
		return nil, errno
	}
	out := make([]dirent, 0, len(d.entries))
	for _, name := range slices.Sorted(maps.Keys(d.entries)) {
		if n := t.inodes[d.entries[name]]; n != nil {
			out = append(out, dirent{name, n})
		}
	}
	return out, 0
}

// durableNode is an inode of the durable tree and the path that names it.
type durableNode struct {
	path string // slash-separated, relative to the root; "" for the root
	n    *inode
}

// durableRef is a durable entry that durableTree left out.
type durableRef struct {
	dir  *inode
	name string
}

// durableTree walks the tree a crash would leave: durable entries from the
// root, breadth first, names in order. Since each directory's entries
// become durable on their own fsync, a directory moved between fsyncs can
// have durable entries in two directories, or a cycle of them; it keeps
// the one durableParents picks, and returns the others (and any entry
// whose inode is gone) as dropped. A file with several durable names is
// listed under each.
func (t *tree) durableTree() (nodes []durableNode, dropped []durableRef) {
	parents := t.durableParents()
	nodes = append(nodes, durableNode{"", t.inodes[rootIno]})
	for i := 0; i < len(nodes); i++ {
		d := nodes[i]
		if !d.n.dir {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(d.n.durEntries)) {
			c := t.inodes[d.n.durEntries[name]]
			if c == nil || c.dir && parents[c.ino] != (entryRef{d.n.ino, name}) {
				dropped = append(dropped, durableRef{d.n, name})
				continue
			}
			nodes = append(nodes, durableNode{path.Join(d.path, name), c})
		}
	}
	return nodes, dropped
}

// entryRef names a directory entry: the directory's inode and the name.
type entryRef struct {
	dir  uint64
	name string
}

// durableParents picks, for each directory reachable from the root
// through durable entries, the durable entry that names it after a crash.
// It starts from the first entry met breadth first (names in order), which
// reaches every such directory, and then moves each directory to a durable
// entry made durable later, as a journal replaying the renames in order
// would, wherever that entry's directory is not inside the moved one; so no
// directory is lost to a cycle, and the latest rename wins.
func (t *tree) durableParents() map[uint64]entryRef {
	parents := map[uint64]entryRef{}
	order := []uint64{rootIno}
	for i := 0; i < len(order); i++ {
		d := t.inodes[order[i]]
		for _, name := range slices.Sorted(maps.Keys(d.durEntries)) {
			c := t.inodes[d.durEntries[name]]
			if c == nil || !c.dir || c.ino == rootIno {
				continue
			}
			if _, ok := parents[c.ino]; !ok {
				parents[c.ino] = entryRef{d.ino, name}
				order = append(order, c.ino)
			}
		}
	}
	// Every durable entry naming a reached directory, from a reached one.
	candidates := map[uint64][]entryRef{}
	for _, ino := range order {
		d := t.inodes[ino]
		for _, name := range slices.Sorted(maps.Keys(d.durEntries)) {
			if c := d.durEntries[name]; c != rootIno && t.inodes[c] != nil && t.inodes[c].dir {
				candidates[c] = append(candidates[c], entryRef{ino, name})
			}
		}
	}
	since := func(e entryRef) uint64 { return t.inodes[e.dir].durSince[e.name] }
	inside := func(d, c uint64) bool { // d is c or below it
		for ; d != rootIno; d = parents[d].dir {
			if d == c {
				return true
			}
		}
		return false
	}
	for changed := true; changed; {
		changed = false
		for _, c := range order[1:] {
			best := parents[c]
			for _, e := range candidates[c] {
				if since(e) > since(best) && !inside(e.dir, c) {
					best = e
				}
			}
			if best != parents[c] {
				parents[c], changed = best, true
			}
		}
	}
	return parents
}

// reachable returns the inodes reachable from the root through current or
// durable entries, and from open inodes when withOpen is set.
func (t *tree) reachable(withOpen bool) map[uint64]bool {
	seen := map[uint64]bool{rootIno: true}
	todo := []uint64{rootIno}
	if withOpen {
		for ino, n := range t.inodes {
			if n.opens > 0 && !seen[ino] {
				seen[ino] = true
				todo = append(todo, ino)
			}
		}
	}
	for len(todo) > 0 {
		n := t.inodes[todo[len(todo)-1]]
		todo = todo[:len(todo)-1]
		if n == nil || !n.dir {
			continue
		}
		for _, m := range []map[string]uint64{n.entries, n.durEntries} {
			for _, c := range m {
				if !seen[c] {
					seen[c] = true
					todo = append(todo, c)
				}
			}
		}
	}
	return seen
}

// maybeCollect drops the inodes nothing can reach any more, now or after a
// crash, once there are twice as many inodes as after the last collection.
func (t *tree) maybeCollect() {
	if len(t.inodes) < t.gcAt {
		return
	}
	t.collect(t.reachable(true))
	t.gcAt = 2*len(t.inodes) + 64
}

// collect drops the inodes not in keep.
func (t *tree) collect(keep map[uint64]bool) {
	for ino := range t.inodes {
		if !keep[ino] {
			delete(t.inodes, ino)
		}
	}
}

// crash throws away everything not durable, as a power cut would: each
// directory's entries revert to its durable entries (less those
// durableTree drops), each file's content to its durable content (empty if
// it was never fsynced). With rng (torn crashes), each file keeps a random
// prefix of its unsynced changes, which then count as durable. Open handles
// are forgotten. crash returns what was lost, counted over the inodes
// reachable before the crash through current or durable entries: the
// unsynced changes not kept, and the names whose entry differs before and
// after.
func (t *tree) crash(rng *rand.Rand) Lost {
	var lost Lost
	live := t.reachable(false)
	_, dropped := t.durableTree()
	for _, r := range dropped {
		delete(r.dir.durEntries, r.name)
		delete(r.dir.durSince, r.name)
	}
	now := t.now()
	for _, ino := range slices.Sorted(maps.Keys(t.inodes)) {
		n := t.inodes[ino]
		if n.dir {
			if live[ino] {
				lost.Entries += entriesChanged(n.entries, n.durEntries)
			}
			n.entries = maps.Clone(n.durEntries)
			n.opens = 0
			continue
		}
		keep := 0
		if rng != nil && len(n.changes) > 0 {
			keep = rng.IntN(len(n.changes) + 1)
		}
		content := slices.Clone(n.durableData())
		keptBytes := 0
		for _, c := range n.changes[:keep] {
			content = c.apply(content)
			keptBytes += len(c.data)
		}
		if live[ino] {
			lost.Writes += n.pending - keep
			lost.Bytes += n.pendingBytes - keptBytes
		}
		if keep > 0 {
			n.durable = slices.Clone(content)
			n.synced = true
			t.nextVersion++
			n.version = t.nextVersion
		}
		if n.synced {
			n.perm = n.durPerm
		}
		if !bytes.Equal(content, n.data) {
			n.mtime, n.ctime = now, now // and the kernel drops its cached pages
		}
		n.data = content
		n.pending, n.pendingBytes, n.changes = 0, 0, nil
		n.opens = 0
	}

	nodes, _ := t.durableTree()
	keep := make(map[uint64]bool, len(nodes))
	for _, dn := range nodes {
		keep[dn.n.ino] = true
		dn.n.links = 0
	}
	t.collect(keep)
	for _, n := range t.inodes {
		for _, c := range n.entries {
			t.inodes[c].links++
		}
	}
	t.gcAt = 2*len(t.inodes) + 64
	return lost
}

// entriesChanged counts the names whose entries differ between a and b.
func entriesChanged(a, b map[string]uint64) int {
	n := 0
	for name, ino := range a {
		if bi, ok := b[name]; !ok || bi != ino {
			n++
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			n++
		}
	}
	return n
}
