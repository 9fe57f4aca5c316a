package workload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/histories"
	"github.com/ec-counter/ec-counter/internal/boundedfile"
	"github.com/ec-counter/ec-counter/internal/jsonscan"
)

// MaxFileSize bounds the bytes of a workload file ParseFile reads:
// MaxRequests lines of about two hundred bytes.
const MaxFileSize = 2 << 30

// ParseFile reads and parses the workload file at path (see Parse). It
// reads at most MaxFileSize bytes whatever the file is (a device, a FIFO,
// a symlink, a huge file), and stops soon after ctx ends, with ctx's
// error. A regular file is counted first, so that one of more than
// MaxRequests requests is refused at once, and the workload is allocated
// to its size. Every error names the file; Parse's name their line too.
func ParseFile(ctx context.Context, path string) (Workload, error) {
	w, err := parseFile(ctx, path)
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	var (
		re *readError
		pe *fs.PathError
		tl *boundedfile.TooLargeError
	)
	if err != nil && !errors.As(err, &re) && !errors.As(err, &pe) && !errors.As(err, &tl) {
		err = fmt.Errorf("%s: %w", path, err) // the others name it already
	}
	return w, err
}

func parseFile(ctx context.Context, path string) (Workload, error) {
	size := 0
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		if st.Size() > MaxFileSize {
			return nil, &boundedfile.TooLargeError{Path: path, Limit: MaxFileSize}
		}
		n, err := countFile(ctx, path)
		if err != nil {
			return nil, err
		}
		size = n
	}
	f, err := boundedfile.OpenContext(ctx, path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(ctx, f, size)
}

// readError is a failure to read a line of the file; the reader's error
// names the file.
type readError struct {
	line int
	err  error
}

func (e *readError) Error() string { return fmt.Sprintf("read workload line %d: %v", e.line, e.err) }
func (e *readError) Unwrap() error { return e.err }

// countFile counts the requests of the file at path (its lines that are
// not blank) without parsing them, and refuses more than MaxRequests.
// It returns 0 when it cannot tell (a line too long to be a request: the
// parse says so).
func countFile(ctx context.Context, path string) (int, error) {
	f, err := boundedfile.OpenContext(ctx, path, MaxFileSize)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	n := 0
	for line := 1; ; line++ {
		text, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return 0, nil
		}
		if err != nil && err != io.EOF {
			return 0, &readError{line, err}
		}
		if len(bytes.TrimSpace(text)) > 0 {
			if n == MaxRequests {
				return 0, fmt.Errorf("workload line %d: more than %d requests", line, MaxRequests)
			}
			n++
		}
		if err == io.EOF {
			return n, nil
		}
		if line%(64<<10) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// Parse reads a workload file: one request a line, blank lines skipped.
// Every error names its line: a line that is not one JSON object, a key
// other than client, f, value and at (keys are case-sensitive) or a key
// given twice, a client that is not an integer in [0, MaxClients), an f
// other than get or set, a set without an integer value or a get with one,
// a value outside int64, an "at" that is not a Go duration in [0, 24h] or
// that goes back in time within its client, a set value used twice (the
// checkers need unique values), more than MaxRequests requests, or none at
// all. A file's other errors are found before its set values are compared.
func Parse(r io.Reader) (Workload, error) {
	return parse(context.Background(), r, 0)
}

// parse is Parse, stopping when ctx ends; size, if known, is how many
// requests r holds.
func parse(ctx context.Context, r io.Reader, size int) (Workload, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	w := make(Workload, 0, size)
	p := lineParser{lastAt: make([]time.Duration, MaxClients)}
	for n := 1; ; n++ {
		text, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(text) > maxLine {
			return nil, fmt.Errorf("workload line %d is longer than %d bytes: not a workload (one request a line)", n, maxLine)
		}
		if err != nil && err != io.EOF {
			return nil, &readError{n, err}
		}
		if t := bytes.TrimSpace(text); len(t) > 0 {
			req, perr := p.parse(t)
			if perr != nil {
				return nil, fmt.Errorf("workload line %d: %w", n, perr)
			}
			if len(w) == MaxRequests {
				return nil, fmt.Errorf("workload line %d: more than %d requests", n, MaxRequests)
			}
			p.lines.add(len(w), n)
			w = append(w, req)
		}
		if err == io.EOF {
			break
		}
		if n%(64<<10) == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(w) == 0 {
		return nil, errors.New("the workload holds no request")
	}
	if err := uniqueSets(w, p.lines); err != nil {
		return nil, err
	}
	return w, nil
}

// lineParser parses the lines of one file, in order.
type lineParser struct {
	lastAt []time.Duration // each client's last "at" plus one (0: none yet)
	lines  lineIndex
}

// parse parses one line, not blank, and checks it against the earlier ones.
func (p *lineParser) parse(text []byte) (Request, error) {
	var l fields
	if !l.decodeFast(text) {
		var err error
		if l, err = decode(text); err != nil {
			return Request{}, err
		}
	}
	req, err := l.request()
	if err != nil {
		return Request{}, err
	}
	if req.HasAt {
		if prev := p.lastAt[req.Client]; prev > 0 && req.At < prev-1 {
			return Request{}, fmt.Errorf("client %d's \"at\" %s is before its previous request's %s: a client sends its requests in order", req.Client, req.At, prev-1)
		}
		p.lastAt[req.Client] = req.At + 1
	}
	return req, nil
}

// lineIndex maps a request's index to its line in the file. Files without
// blank lines (every file Encode writes) cost it nothing: it holds the
// line of each request only once a blank line was skipped.
type lineIndex struct {
	lines []uint32 // lines[i] is request first+i's line
	first int
	on    bool
}

func (x *lineIndex) add(i, line int) {
	switch {
	case x.on:
		x.lines = append(x.lines, uint32(line))
	case line != i+1: // a blank line before it
		x.on, x.first = true, i
		x.lines = append(x.lines, uint32(line))
	}
}

func (x *lineIndex) line(i int) int {
	if !x.on || i < x.first {
		return i + 1
	}
	return int(x.lines[i-x.first])
}

// uniqueSets refuses a set value used twice, naming the line where it is
// used again first and the line it was used on before. It sorts the set
// values instead of keeping a map of them: a tenth of the memory on the
// largest files.
func uniqueSets(w Workload, lines lineIndex) error {
	sets := 0
	for _, r := range w {
		if r.F == histories.FSet {
			sets++
		}
	}
	values := make([]int64, 0, sets)
	for _, r := range w {
		if r.F == histories.FSet {
			values = append(values, r.Value)
		}
	}
	slices.Sort(values)
	var dups map[int64]int // value -> index of its first set, -1 until seen
	for i := 1; i < len(values); i++ {
		if values[i] == values[i-1] {
			if dups == nil {
				dups = make(map[int64]int)
			}
			dups[values[i]] = -1
		}
	}
	if dups == nil {
		return nil
	}
	for i, r := range w {
		if first, dup := dups[r.Value]; dup && r.F == histories.FSet {
			if first >= 0 {
				return fmt.Errorf("workload line %d: set value %d was already used on line %d: set values must be unique within a run", lines.line(i), r.Value, lines.line(first))
			}
			dups[r.Value] = i
		}
	}
	return nil // not reached: a value sorted twice is set twice
}

// line is a request as a line of the file, for encoding/json.
type line struct {
	Client *int            `json:"client"`
	F      string          `json:"f"`
	Value  json.RawMessage `json:"value,omitempty"`
	At     string          `json:"at,omitempty"`
}

// fields are the fields of a line as decoded, before they are checked.
type fields struct {
	client    int
	hasClient bool
	f         string
	value     []byte // a JSON value; none, or null, when absent
	at        string // "" when absent
}

// The keys of a line, as bits, to catch a key given twice.
const (
	keyClient = 1 << iota
	keyF
	keyValue
	keyAt
)

// keyBit returns the bit of a key written exactly as it must be, or 0.
func keyBit(key string) int {
	switch key {
	case "client":
		return keyClient
	case "f":
		return keyF
	case "value":
		return keyValue
	case "at":
		return keyAt
	}
	return 0
}

// decode decodes a line through encoding/json, strictly: one JSON object
// and nothing after it, no unknown key, no key given twice and no key
// written in other case (encoding/json matches keys whatever their case,
// and keeps the last of two).
func decode(text []byte) (fields, error) {
	var l line
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return fields{}, fmt.Errorf("not a request (%v)", err)
	}
	if rest := bytes.TrimLeft(text[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return fields{}, errors.New("more than one JSON value on the line")
	}
	if err := checkKeys(text); err != nil {
		return fields{}, err
	}
	out := fields{f: l.F, value: l.Value, at: l.At}
	if l.Client != nil {
		out.client, out.hasClient = *l.Client, true
	}
	return out, nil
}

// checkKeys refuses a key of the JSON object text given twice, or written
// in other case than its name.
func checkKeys(text []byte) error {
	dec := json.NewDecoder(bytes.NewReader(text))
	if _, err := dec.Token(); err != nil { // the '{': decode checked it
		return err
	}
	seen := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		bit := keyBit(key)
		switch {
		case bit == 0:
			for _, k := range []string{"client", "f", "value", "at"} {
				if strings.EqualFold(key, k) {
					return fmt.Errorf("key %q: keys are case-sensitive, write %q", key, k)
				}
			}
			return fmt.Errorf("unknown key %q", key) // encoding/json's own folding matched it
		case seen&bit != 0:
			return fmt.Errorf("key %q given twice", key)
		}
		seen |= bit
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// decodeFast decodes the common line (keys as they must be written, once
// each; integers, strings of printable ASCII without escapes, null) into
// l, and reports whether it did. Any other line it leaves to decode, so
// that both decode every line alike (FuzzParseLine compares them).
func (l *fields) decodeFast(text []byte) bool {
	s := jsonscan.New(text)
	if !s.Skip('{') {
		return false
	}
	seen := 0
	for first := true; ; first = false {
		if s.Skip('}') {
			break
		}
		if !first && !s.Skip(',') {
			return false
		}
		key, ok := s.Str()
		if !ok || !s.Skip(':') {
			return false
		}
		bit := keyBit(string(key))
		null := s.Literal("null")
		switch bit {
		case keyClient:
			if !null {
				var n int64
				n, ok = s.Int()
				l.client, l.hasClient = int(n), true
			}
		case keyF:
			if !null {
				var f []byte
				f, ok = s.Str()
				switch string(f) {
				case histories.FGet:
					l.f = histories.FGet
				case histories.FSet:
					l.f = histories.FSet
				default:
					ok = false // an error: decode words it
				}
			}
		case keyValue:
			if !null {
				s.Space()
				start := s.Pos()
				_, ok = s.Int()
				l.value = text[start:s.Pos()]
			}
		case keyAt:
			if !null {
				var at []byte
				at, ok = s.Str()
				l.at = string(at)
			}
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return s.AtEnd()
}

// request checks a decoded line and returns its request.
func (l *fields) request() (Request, error) {
	if !l.hasClient {
		return Request{}, errors.New(`no "client"`)
	}
	if l.client < 0 || l.client >= MaxClients {
		return Request{}, fmt.Errorf("client %d is outside 0 to %d", l.client, MaxClients-1)
	}
	req := Request{Client: l.client, F: l.f}
	switch l.f {
	case histories.FSet:
		if len(l.value) == 0 || string(l.value) == "null" {
			return Request{}, errors.New(`a set needs an integer "value"`)
		}
		v, err := strconv.ParseInt(string(l.value), 10, 64)
		if err != nil {
			return Request{}, fmt.Errorf("set value %s is not an integer in int64's range", l.value)
		}
		req.Value = v
	case histories.FGet:
		if len(l.value) > 0 && string(l.value) != "null" {
			return Request{}, errors.New(`a get takes no "value"`)
		}
	default:
		return Request{}, fmt.Errorf(`"f" must be get or set, got %q`, l.f)
	}
	if l.at != "" {
		d, err := time.ParseDuration(l.at)
		if err != nil || d < 0 || d > MaxAt {
			return Request{}, fmt.Errorf(`"at" must be a duration from 0s to %s (e.g. "1.5s"), got %q`, MaxAt, l.at)
		}
		req.At, req.HasAt = d, true
	}
	return req, nil
}
