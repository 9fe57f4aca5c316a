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

// Read decodes a JSON Lines history. A malformed line is an error naming its
// line number, and so is a line over MaxLine bytes, except a last line
// without a trailing newline that is the start of an op cut short (a run
// that crashed mid-write): Read then returns the ops before it and an error
// wrapping ErrTruncated, which callers may treat as a warning.
func Read(r io.Reader) ([]Op, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var ops []Op
	var long []byte
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			if len(long)+len(line) > MaxLine {
				return ops, fmt.Errorf("history line %d is longer than %d bytes: not a history (one op a line)", lineNo, MaxLine)
			}
			long = append(long, line...)
			line, err = br.ReadSlice('\n')
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(line) > MaxLine {
			return ops, fmt.Errorf("history line %d is longer than %d bytes: not a history (one op a line)", lineNo, MaxLine)
		}
		if len(line) == 0 && err == io.EOF {
			return ops, nil
		}
		if err != nil && err != io.EOF {
			return ops, fmt.Errorf("read history line %d: %w", lineNo, err)
		}
		complete := err == nil
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var op Op
		if derr := decodeOp(line, &op); derr != nil {
			if !complete && cutShort(line, derr) {
				return ops, fmt.Errorf("line %d: %w (%v)", lineNo, ErrTruncated, derr)
			}
			return ops, fmt.Errorf("history line %d: %w", lineNo, derr)
		}
		ops = append(ops, op)
		if !complete {
			return ops, nil
		}
	}
}

// cutShort reports whether line, which failed to decode with err, is the
// beginning of a JSON object cut off by a crash, rather than something else
// entirely (a file that is not a history).
func cutShort(line []byte, err error) bool {
	var se *json.SyntaxError
	return line[0] == '{' && errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input")
}

func decodeOp(line []byte, op *Op) error {
	if err := json.Unmarshal(line, op); err != nil {
		return err
	}
	if !op.Type.Valid() {
		return fmt.Errorf("unknown op type %q", op.Type)
	}
	if op.F == "" {
		return errors.New("op has no f")
	}
	return nil
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
