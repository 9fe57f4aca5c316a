package crashfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ec-counter/ec-counter/internal/atomicfile"
	"github.com/ec-counter/ec-counter/internal/labtest"
)

// TestMain runs the tests in the private namespaces the lab makes: the
// mounts are private to them and go with them, and a user without root
// may mount there.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// mount mounts a crash file system over backing at a new temporary
// directory, and unmounts it when the test ends. It skips the test where
// FUSE cannot be mounted, and outside the lab's namespaces (where a
// crashed test would leave its mount behind).
func mount(tb testing.TB, backing string, opts Options) (*FS, string) {
	tb.Helper()
	labtest.Need(tb)
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		tb.Skipf("FUSE unavailable: %v", err)
	}
	dev.Close()
	mnt := tb.TempDir()
	f, err := Mount(backing, mnt, opts)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, exec.ErrNotFound) {
		tb.Skipf("cannot mount FUSE here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			tb.Error(err)
		}
	})
	return f, mnt
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func crash(t *testing.T, f *FS) Lost {
	t.Helper()
	return f.Crash()
}

// writeState writes the state file the way the node does (through
// atomicfile: temporary file, fsync, rename over, directory fsync), or
// with one of the two fsyncs left out, as the node bugs no-fsync and
// no-dir-fsync would.
func writeState(t testing.TB, dir, content string, fsyncFile, fsyncDir bool) {
	t.Helper()
	if fsyncFile && fsyncDir {
		if err := atomicfile.WriteBytes(filepath.Join(dir, "counter"), 0o644, []byte(content)); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := filepath.Join(dir, ".counter-1.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if fsyncFile {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "counter")); err != nil {
		t.Fatal(err)
	}
	if fsyncDir {
		syncDir(t, dir)
	}
}

func syncDir(t testing.TB, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync directory %s: %v", dir, err)
	}
}

// names lists a directory.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestMountNodeProtocol runs the node's state file writes through a mount:
// the full protocol survives a crash; without the file fsync the state file
// is empty after it; without the directory fsync the old state is back.
func TestMountNodeProtocol(t *testing.T) {
	backing := t.TempDir()
	f, mnt := mount(t, backing, Options{})
	state := filepath.Join(mnt, "counter")

	writeState(t, mnt, "1\n", true, true)
	writeState(t, mnt, "2\n", true, true)
	if lost := crash(t, f); lost != (Lost{}) {
		t.Errorf("durable protocol lost %v", lost)
	}
	if got := readFile(t, state); got != "2\n" {
		t.Fatalf("durable protocol: %q after crash, want 2", got)
	}
	if got := names(t, mnt); !slices.Equal(got, []string{"counter"}) {
		t.Fatalf("after crash: %v, want just counter", got)
	}

	// no-fsync: the renamed file's name is durable, its content is not.
	writeState(t, mnt, "3\n", false, true)
	if got := readFile(t, state); got != "3\n" {
		t.Fatalf("before crash: %q, want the unsynced 3", got)
	}
	if got := readFile(t, filepath.Join(backing, "counter")); got != "" {
		t.Fatalf("backing directory after a directory fsync naming a file never fsynced: %q, want empty", got)
	}
	lost := crash(t, f)
	if got := readFile(t, state); got != "" {
		t.Fatalf("no file fsync: %q after crash, want empty", got)
	}
	if lost.Writes != 1 || lost.Bytes != 2 {
		t.Errorf("no file fsync: lost %v, want 1 write of 2 bytes", lost)
	}

	// no-dir-fsync: the rename is lost, and the old file is back.
	writeState(t, mnt, "4\n", true, true)
	writeState(t, mnt, "5\n", true, false)
	if got := readFile(t, state); got != "5\n" {
		t.Fatalf("before crash: %q, want 5", got)
	}
	if got := readFile(t, filepath.Join(backing, "counter")); got != "4\n" {
		t.Fatalf("backing directory before the directory fsync: %q, want 4", got)
	}
	lost = crash(t, f)
	if got := readFile(t, state); got != "4\n" {
		t.Fatalf("no directory fsync: %q after crash, want the old 4", got)
	}
	if lost.Entries == 0 {
		t.Errorf("no directory fsync: lost %v, want a directory entry", lost)
	}
	if got := names(t, mnt); !slices.Equal(got, []string{"counter"}) {
		t.Fatalf("after crash: %v, want just counter", got)
	}
	if got := readFile(t, filepath.Join(backing, "counter")); got != "4\n" {
		t.Fatalf("backing directory: %q, want 4", got)
	}
}

// TestMountPageCache checks that reads see unsynced writes before a crash
// and the durable content after it, for one inode (which the kernel may
// have cached), and that handles opened before a crash fail after it.
func TestMountPageCache(t *testing.T) {
	f, mnt := mount(t, t.TempDir(), Options{})
	path := filepath.Join(mnt, "f")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString("old content"); err != nil {
		t.Fatal(err)
	}
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	if _, err := file.WriteAt([]byte("NEW"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(" and more"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "NEW content and more" {
		t.Fatalf("before crash: %q, want the unsynced writes", got)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 20 {
		t.Fatalf("before crash: stat %v, %v; want 20 bytes", st, err)
	}

	lost := crash(t, f)
	if lost != (Lost{Writes: 2, Bytes: 12}) {
		t.Errorf("lost %v, want 2 writes (12 bytes)", lost)
	}
	if got := readFile(t, path); got != "old content" {
		t.Fatalf("after crash: %q, want the durable content", got)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 11 {
		t.Fatalf("after crash: stat %v, %v; want 11 bytes", st, err)
	}
	if _, err := file.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Errorf("write through a handle opened before the crash: %v, want EIO", err)
	}
	file.Close()

	// A file that never reached the disk is gone, and its name with it.
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	crash(t, f)
	if _, err := os.Stat(filepath.Join(mnt, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unsynced new file after crash: %v, want not exist", err)
	}
}

// TestMountDirectories checks directories through the mount: mkdir,
// renames between directories (each durable with its directory's fsync),
// rmdir, listing, and that the backing directory mirrors the durable tree
// and mounts again as it was.
func TestMountDirectories(t *testing.T) {
	backing := t.TempDir()
	f, mnt := mount(t, backing, Options{})
	a, b := filepath.Join(mnt, "a"), filepath.Join(mnt, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(t, mnt)
	writeState(t, a, "x", true, true)
	if got, _ := diskView(backing); !equalViews(got, map[string]string{"a": "dir", "b": "dir", "a/counter": "file:x"}) {
		t.Fatalf("backing directory: %v", got)
	}

	// Move a/counter to b/counter and fsync b only: after a crash the
	// file is in both (a's removal was never made durable).
	if err := os.Rename(filepath.Join(a, "counter"), filepath.Join(b, "counter")); err != nil {
		t.Fatal(err)
	}
	syncDir(t, b)
	if err := os.Mkdir(filepath.Join(b, "unsynced"), 0o755); err != nil {
		t.Fatal(err)
	}
	crash(t, f)
	want := map[string]string{"a": "dir", "b": "dir", "a/counter": "file:x", "b/counter": "file:x"}
	if got, _ := diskView(mnt); !equalViews(got, want) {
		t.Fatalf("after crash: %v, want %v", got, want)
	}
	if got, _ := diskView(backing); !equalViews(got, want) {
		t.Fatalf("backing directory after crash: %v, want %v", got, want)
	}

	// Errors come through.
	if err := os.Remove(b); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		t.Errorf("rmdir of a non-empty directory: %v", err)
	}
	if err := os.Rename(mnt+"/a", mnt+"/a/sub"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("rename of a directory into itself: %v, want EINVAL", err)
	}
	if err := os.Remove(filepath.Join(a, "counter")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(b, "counter"), filepath.Join(mnt, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(mnt, "link"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(b, "counter")); got != "" {
		t.Fatalf("truncate through a hard link: the other name shows %q", got)
	}
	if err := os.Chmod(filepath.Join(b, "counter"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(filepath.Join(b, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	file.Close()
	syncDir(t, mnt)
	want = map[string]string{"b": "dir", "b/counter": "file:", "link": "file:"}
	if got, _ := diskView(backing); !equalViews(got, want) {
		t.Fatalf("backing directory: %v, want %v", got, want)
	}
	if st, err := os.Stat(filepath.Join(backing, "b", "counter")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backing file mode: %v, %v; want 0600", st, err)
	}

	// Statfs answers.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil || st.Blocks == 0 {
		t.Fatalf("statfs: %+v, %v", st, err)
	}

	// Mounting the backing directory again gives the durable tree.
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	_, mnt2 := mount(t, backing, Options{})
	if got, _ := diskView(mnt2); !equalViews(got, want) {
		t.Fatalf("mounted again: %v, want %v", got, want)
	}
}

// TestMountTorn checks that a torn crash keeps a prefix of the writes.
func TestMountTorn(t *testing.T) {
	f, mnt := mount(t, t.TempDir(), Options{Torn: true, Seed: 7})
	path := filepath.Join(mnt, "log")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	var all string
	for i := range 20 {
		line := fmt.Sprintf("line %d\n", i)
		if _, err := file.WriteString(line); err != nil {
			t.Fatal(err)
		}
		all += line
	}
	file.Close()
	lost := crash(t, f)
	got := readFile(t, path)
	if !strings.HasPrefix(all, got) || !strings.HasSuffix(got, "\n") && got != "" {
		t.Fatalf("after a torn crash: %q, not a prefix of whole writes", got)
	}
	if kept := strings.Count(got, "\n"); kept+lost.Writes != 20 {
		t.Fatalf("kept %d writes and lost %v, want 20 in all", kept, lost)
	}
	t.Logf("kept %d of 20 writes", strings.Count(got, "\n"))
}

// TestMountRejectsNesting checks that the backing directory cannot be
// inside the mount or the other way round.
func TestMountRejectsNesting(t *testing.T) {
	dir := t.TempDir()
	if _, err := Mount(dir, filepath.Join(dir, "mnt"), Options{}); err == nil || !strings.Contains(err.Error(), "inside each other") {
		t.Fatalf("nested mount: %v", err)
	}
}

func equalViews(a, b map[string]string) bool {
	return diffViews(a, b) == ""
}

// BenchmarkWriteFsync measures the node's durable write (a 4-byte write to
// a temporary file, fsync, rename over the state file, directory fsync)
// through a crash file system and in a plain directory.
func BenchmarkWriteFsync(b *testing.B) {
	run := func(b *testing.B, dir string) {
		tmp, state := filepath.Join(dir, "counter.tmp"), filepath.Join(dir, "counter")
		b.ResetTimer()
		for i := range b.N {
			f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := fmt.Fprintf(f, "%03d\n", i%1000); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(tmp, state); err != nil {
				b.Fatal(err)
			}
			syncDir(b, dir)
		}
	}
	b.Run("crashfs", func(b *testing.B) {
		_, mnt := mount(b, b.TempDir(), Options{})
		run(b, mnt)
	})
	b.Run("plain", func(b *testing.B) {
		run(b, b.TempDir())
	})
}

// TestMountUnmountBusy checks that Unmount detaches a mount that a process
// still uses.
func TestMountUnmountBusy(t *testing.T) {
	f, mnt := mount(t, t.TempDir(), Options{})
	file, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if err := f.Unmount(); err != nil {
		t.Fatalf("unmount while busy: %v", err)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), " "+mnt+" ") {
		t.Fatalf("%s is still mounted", mnt)
	}
	if _, err := file.WriteString("still works"); err != nil {
		t.Errorf("write to a file of a detached mount: %v", err)
	}
}
