// Package boundedfile reads files a user names without trusting what they
// are: a regular file, a symlink to a device, a FIFO with no writer or a
// huge file each yields its bytes up to a limit, or a clear error within a
// bounded time, never an unbounded read or a hang.
package boundedfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// DefaultIdle is how long Open's reader waits for the next bytes of a
// FIFO, socket or terminal before it gives up.
const DefaultIdle = 5 * time.Second

// TooLargeError is returned when a file holds more than its limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %s: refused", e.Path, size(e.Limit))
}

// size writes n bytes the way a person reads them.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// IdleError is returned when a FIFO, socket or terminal gave no bytes for
// the idle time.
type IdleError struct {
	Path string
	Idle time.Duration
}

func (e *IdleError) Error() string {
	return fmt.Sprintf("%s: nothing to read for %s (a FIFO or terminal nobody writes to?)", e.Path, e.Idle)
}

// Reader reads at most its limit of bytes from an open file; one more is
// a *TooLargeError. Reads of a FIFO, socket or terminal that wait longer
// than the idle time fail with an error that says so.
type Reader struct {
	f     *os.File
	path  string
	left  int64 // bytes still allowed
	limit int64
	idle  time.Duration
	ctx   context.Context
	stop  func() bool // stops the context's wake-up
}

// Open opens path for reading at most limit bytes. It never blocks on a
// FIFO without a writer (that reads as empty), refuses a directory, and
// follows symlinks as the file system does.
func Open(path string, limit int64) (*Reader, error) {
	return OpenContext(context.Background(), path, limit)
}

// OpenContext is Open with a context: once ctx is done, reads fail with
// its error, a read waiting on a FIFO or terminal included.
func OpenContext(ctx context.Context, path string, limit int64) (*Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	r := &Reader{f: f, path: path, left: limit, limit: limit, idle: DefaultIdle, ctx: ctx}
	r.stop = context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	return r, nil
}

// Read reads from the file, failing once more than the limit was read.
func (r *Reader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return 0, &TooLargeError{Path: r.path, Limit: r.limit}
	}
	if int64(len(p)) > r.left+1 {
		p = p[:r.left+1]
	}
	// Regular files and devices refuse deadlines (os.ErrNoDeadline): their
	// reads do not wait on a writer.
	_ = r.f.SetReadDeadline(time.Now().Add(r.idle))
	if err := r.ctx.Err(); err != nil {
		return 0, err // checked after the deadline is set: the wake-up may have come before
	}
	n, err := r.f.Read(p)
	if cerr := r.ctx.Err(); cerr != nil && err != nil {
		return n, cerr
	}
	r.left -= int64(n)
	if r.left < 0 {
		return n, &TooLargeError{Path: r.path, Limit: r.limit}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, &IdleError{Path: r.path, Idle: r.idle}
	}
	return n, err
}

// Close closes the file.
func (r *Reader) Close() error {
	r.stop()
	return r.f.Close()
}

// ReadFile reads the whole file at path if it holds at most limit bytes;
// see Open. Errors name the path.
func ReadFile(path string, limit int64) ([]byte, error) {
	r, err := Open(path, limit)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var b []byte
	if st, err := r.f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() <= limit {
		b = make([]byte, 0, st.Size()+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err // every error of Read names the path
		}
	}
}
