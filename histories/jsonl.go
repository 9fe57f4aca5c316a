package histories

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Writer appends ops to a JSON Lines history. It assigns each op its dense
// index and its time from one monotonic clock, and writes every op through to
// the underlying file at once, so a crash of the harness loses no line that
// Append returned for. It is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	next  int64
	buf   []byte
	err   error
}

// NewWriter returns a writer that encodes ops to w; times are measured from
// start.
func NewWriter(w io.Writer, start time.Time) *Writer {
	return &Writer{w: w, start: start}
}

// Append stamps op with the next index and the current time, writes it, and
// returns the stamped op.
func (w *Writer) Append(op Op) (Op, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return op, w.err
	}
	op.Index = w.next
	op.Time = time.Since(w.start).Nanoseconds()
	line, err := json.Marshal(&op)
	if err != nil {
		return op, fmt.Errorf("encode op %d: %w", op.Index, err)
	}
	w.buf = append(append(w.buf[:0], line...), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("write history: %w", err)
		return op, w.err
	}
	w.next++
	return op, nil
}

// Len returns the number of ops written so far.
func (w *Writer) Len() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Encode writes ops as JSON Lines exactly as given (indices and times are
// kept), for tools that rewrite or generate histories.
func Encode(w io.Writer, ops []Op) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range ops {
		if err := enc.Encode(&ops[i]); err != nil {
			return fmt.Errorf("encode op %d: %w", ops[i].Index, err)
		}
	}
	return bw.Flush()
}

// ErrTruncated is wrapped by the error of Read when the last line of the
// input was cut short (a run that crashed mid-write); the ops before it are
// returned.
var ErrTruncated = errors.New("history ends in a truncated line")

// MaxLine bounds one line of a history: an op is a few hundred bytes, a
// nemesis op naming the grudge of 200 nodes some tens of kilobytes.
const MaxLine = 1 << 20

// Reader decodes a JSON Lines history one op at a time, so that a history
// of any length can be checked in bounded memory. Lines are decoded exactly
// as encoding/json decodes them into an Op.
type Reader struct {
	br     *bufio.Reader
	long   []byte
	lineNo int
	done   bool
	dec    decoder
}

// NewReader returns a reader of the history in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next op, or io.EOF after the last. A malformed line is an
// error naming its line number, and so is a line over MaxLine bytes, except
// a last line without a trailing newline that is the start of an op cut
// short (a run that crashed mid-write): Next then returns an error wrapping
// ErrTruncated, which callers may treat as the end of the history with a
// warning. After an error, Next returns io.EOF.
func (r *Reader) Next() (Op, error) {
	for !r.done {
		r.lineNo++
		line, err := r.br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			if len(r.long)+len(line) > MaxLine {
				return r.fail(fmt.Errorf("history line %d is longer than %d bytes: not a history (one op a line)", r.lineNo, MaxLine))
			}
			r.long = append(r.long, line...)
			line, err = r.br.ReadSlice('\n')
		}
		if r.long != nil {
			line = append(r.long, line...)
			r.long = nil
		}
		if len(line) > MaxLine {
			return r.fail(fmt.Errorf("history line %d is longer than %d bytes: not a history (one op a line)", r.lineNo, MaxLine))
		}
		if err != nil && err != io.EOF {
			return r.fail(fmt.Errorf("read history line %d: %w", r.lineNo, err))
		}
		complete := err == nil
		r.done = !complete
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var op Op
		if derr := r.dec.decode(line, &op); derr != nil {
			if !complete && cutShort(line, derr) {
				return r.fail(fmt.Errorf("line %d: %w (%v)", r.lineNo, ErrTruncated, derr))
			}
			return r.fail(fmt.Errorf("history line %d: %w", r.lineNo, derr))
		}
		return op, nil
	}
	return Op{}, io.EOF
}

func (r *Reader) fail(err error) (Op, error) {
	r.done = true
	return Op{}, err
}

// Read decodes a whole JSON Lines history into memory; see Reader.Next for
// its errors. On an error it returns the ops before the bad line.
func Read(r io.Reader) ([]Op, error) {
	rd := NewReader(r)
	var ops []Op
	for {
		op, err := rd.Next()
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return ops, err
		}
		ops = append(ops, op)
	}
}

// cutShort reports whether line, which failed to decode with err, is the
// beginning of a JSON object cut off by a crash, rather than something else
// entirely (a file that is not a history).
func cutShort(line []byte, err error) bool {
	var se *json.SyntaxError
	return line[0] == '{' && errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input")
}

// ReadFile reads the history at path; see Read.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ops, err := Read(f)
	if err != nil {
		return ops, fmt.Errorf("%s: %w", path, err)
	}
	return ops, nil
}
