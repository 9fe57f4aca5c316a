package crashfs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// load reads the backing directory dir into a new tree, all of it durable:
// directories and regular files; anything else is refused.
func load(dir string, keepChanges bool) (*tree, error) {
	t := newTree(keepChanges)
	dirs := map[string]*inode{".": t.inodes[rootIno]}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		parent := dirs[filepath.Dir(rel)]
		name := filepath.Base(rel)
		var n *inode
		switch {
		case d.IsDir():
			n = t.newInode(true, uint32(info.Mode().Perm()), 0, 0)
			dirs[rel] = n
		case info.Mode().IsRegular():
			content, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n = t.newInode(false, uint32(info.Mode().Perm()), 0, 0)
			n.data, n.durable, n.synced = content, content, true
			t.nextVersion++
			n.version = t.nextVersion
		default:
			return fmt.Errorf("%s: unsupported file type %v (only directories and regular files)", p, info.Mode().Type())
		}
		n.mtime = info.ModTime()
		n.atime, n.ctime = n.mtime, n.mtime
		parent.entries[name] = n.ino
		parent.durEntries[name] = n.ino
		n.links++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load backing directory %s: %w", dir, err)
	}
	return t, nil
}

// mirrored is what the mirror last wrote at a path.
type mirrored struct {
	dir     bool
	ino     uint64
	version uint64 // the file's durable version; 0 forces a rewrite
	perm    uint32
}

// mirror keeps a plain directory equal to the durable tree, so that what
// survives a crash can be looked at (and loaded by the next Mount).
type mirror struct {
	dir  string
	have map[string]mirrored // by slash-separated relative path; nil: unknown, scan the disk
}

// newMirror returns the mirror of t in dir, which already holds it (t was
// loaded from dir).
func newMirror(dir string, t *tree) *mirror {
	m := &mirror{dir: dir, have: map[string]mirrored{}}
	nodes, _ := t.durableTree()
	for _, dn := range nodes[1:] {
		m.have[dn.path] = want(dn.n)
	}
	return m
}

// want is what the mirror should hold for n.
func want(n *inode) mirrored {
	if n.dir {
		return mirrored{dir: true, ino: n.ino, perm: n.perm}
	}
	return mirrored{ino: n.ino, version: n.version, perm: n.durPerm}
}

// sync brings the backing directory up to date with t's durable tree,
// rewriting only what changed since the last sync. After a failure the
// next sync compares with what is on disk.
func (m *mirror) sync(t *tree) error {
	if err := m.update(t); err != nil {
		m.have = nil
		return fmt.Errorf("update backing directory %s: %w", m.dir, err)
	}
	return nil
}

func (m *mirror) update(t *tree) error {
	if m.have == nil {
		have, err := scan(m.dir)
		if err != nil {
			return err
		}
		m.have = have
	}
	nodes, _ := t.durableTree()
	wanted := make(map[string]mirrored, len(nodes))
	for _, dn := range nodes[1:] {
		wanted[dn.path] = want(dn.n)
	}
	// Remove what should not be there, parents before their children
	// (removing a parent removes them).
	var gone []string
	for p, h := range m.have {
		if w, ok := wanted[p]; !ok || w.dir != h.dir {
			gone = append(gone, p)
		}
	}
	for _, p := range sortedPaths(gone) {
		if err := os.RemoveAll(m.local(p)); err != nil {
			return err
		}
		delete(m.have, p)
	}
	// Add or rewrite the rest, parents before their children.
	for _, dn := range nodes[1:] {
		w := wanted[dn.path]
		h, ok := m.have[dn.path]
		if ok && h == w {
			continue
		}
		if err := m.write(dn.path, dn.n, ok && h.dir == w.dir); err != nil {
			return err
		}
		m.have[dn.path] = w
	}
	return nil
}

// write puts n at p: a directory (exists tells whether it is there already)
// or a file with n's durable content.
func (m *mirror) write(p string, n *inode, exists bool) error {
	local := m.local(p)
	if n.dir {
		// The mirror must stay writable by us, whatever n's permissions.
		perm := fs.FileMode(n.perm&0o777 | 0o700)
		if !exists {
			if err := os.Mkdir(local, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return os.Chmod(local, perm)
	}
	if err := os.Remove(local); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	perm := fs.FileMode(n.durPerm & 0o777)
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(n.durableData())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(local, perm)
	}
	return err
}

// local is the path in the backing directory of slash-separated path p.
func (m *mirror) local(p string) string {
	return filepath.Join(m.dir, filepath.FromSlash(p))
}

// scan lists what the backing directory holds, with versions that force
// every file to be rewritten.
func scan(dir string) (map[string]mirrored, error) {
	have := map[string]mirrored{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		have[filepath.ToSlash(rel)] = mirrored{dir: d.IsDir()}
		return nil
	})
	return have, err
}

// sortedPaths sorts slash-separated paths so that each directory comes
// before what is in it.
func sortedPaths(paths []string) []string {
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "/"), strings.Count(b, "/")), strings.Compare(a, b))
	})
	return paths
}
