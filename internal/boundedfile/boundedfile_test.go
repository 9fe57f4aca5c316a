package boundedfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFileRegular(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(p, 5)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile at its limit = %q, %v", b, err)
	}
	_, err = ReadFile(p, 4)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Path != p || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Fatalf("ReadFile over its limit: %v", err)
	}
}

// A device that never ends, reached through a symlink, stops at the limit.
func TestReadFileDevice(t *testing.T) {
	link := filepath.Join(t.TempDir(), "run.json")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(link, 1<<20)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("ReadFile(/dev/zero) = %v, want too large", err)
	}
}

func TestReadFileDirectory(t *testing.T) {
	_, err := ReadFile(t.TempDir(), 10)
	if !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("ReadFile(dir) = %v, want EISDIR", err)
	}
}

// A FIFO nobody opened for writing reads as empty at once.
func TestReadFileFIFOWithoutWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(p, 10)
	if err != nil || len(b) != 0 {
		t.Fatalf("ReadFile(FIFO without writer) = %q, %v", b, err)
	}
}

// A FIFO whose writer stays silent fails after the idle time instead of
// hanging; what a writer does send is read.
func TestReaderFIFOIdle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("abc"); err != nil {
		t.Fatal(err)
	}
	r.idle = 50 * time.Millisecond
	buf := make([]byte, 10)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}
	_, err = r.Read(buf)
	var idle *IdleError
	if !errors.As(err, &idle) {
		t.Fatalf("read of a silent FIFO = %v, want *IdleError", err)
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "none"), 10)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v", err)
	}
}

// A read waiting on a silent FIFO ends when the context does.
func TestReaderFIFOCancel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := OpenContext(ctx, p, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err = r.Read(make([]byte, 10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > DefaultIdle/2 {
		t.Fatalf("the read ended %s after it began, not at the cancel", d)
	}
}
