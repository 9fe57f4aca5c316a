package harness

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ec-counter/ec-counter/checker"
)

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the campaign as JUnit XML: one testcase per run. An
// invalid or unknown run is a failure carrying its anomalies and the
// command that replays it; a crashed run is an error.
func WriteJUnit(w io.Writer, name string, runs []CampaignRun) error {
	s := junitSuite{Name: name, Tests: len(runs)}
	var total time.Duration
	for _, r := range runs {
		total += r.Duration
		c := junitCase{Name: fmt.Sprintf("seed %d", r.Seed), Classname: name, Time: seconds(r.Duration)}
		switch {
		case r.Outcome == nil:
			s.Errors++
			c.Error = &junitProblem{Message: "harness failed", Type: "crashed", Body: fmt.Sprint(r.Err)}
		case r.Outcome.Result.Valid != checker.Valid:
			s.Failures++
			var b strings.Builder
			for _, a := range r.Outcome.Result.Anomalies {
				fmt.Fprintf(&b, "[%s] %s\n  expected: %s\n", a.Check, a.Message, a.Expected)
			}
			for _, f := range failedChecks(r.Outcome.Result) {
				if len(r.Outcome.Result.Anomalies) == 0 {
					fmt.Fprintf(&b, "check %s: %s\n", f, r.Outcome.Result.Valid)
				}
			}
			fmt.Fprintf(&b, "\nreplay: %s\nrun: %s\n", r.Outcome.Replay, r.Outcome.Dir)
			c.Failure = &junitProblem{
				Message: fmt.Sprintf("%s: %s", r.Outcome.Result.Valid, strings.Join(failedChecks(r.Outcome.Result), ", ")),
				Type:    r.Outcome.Result.Valid.String(),
				Body:    b.String(),
			}
		}
		if r.Outcome != nil {
			c.SystemOut = fmt.Sprintf("run: %s\nreplay: %s\n", r.Outcome.Dir, r.Outcome.Replay)
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return fmt.Errorf("encode JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// JUnitMerger writes one JUnit XML document holding the test suites of
// every document added to it, in order: the shards of a campaign run on
// several machines become one report. It streams: each document is copied
// token by token as it is read, so memory stays small whatever the sizes.
//
// Every suite is copied whole, as written: its attributes (counts such as
// tests, failures, errors and skipped included), properties, test cases and
// their failures, errors, skipped markers and output. The attributes of a
// <testsuites> root (totals of one shard) are not kept; namespace
// declarations on it are carried onto each of its suites.
type JUnitMerger struct {
	out     *writeRecorder
	enc     *xml.Encoder
	started bool
}

// writeRecorder remembers the first error of its writer, so that a failed
// write of the merged document is not blamed on the document being read.
type writeRecorder struct {
	w   io.Writer
	err error
}

func (r *writeRecorder) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.w.Write(p)
	r.err = err
	return n, err
}

// NewJUnitMerger returns a merger writing to w. Nothing is written before
// the first Add; Close ends the document.
func NewJUnitMerger(w io.Writer) *JUnitMerger {
	out := &writeRecorder{w: w}
	return &JUnitMerger{out: out, enc: xml.NewEncoder(out)}
}

// utf8BOM is the byte order mark some tools write before a UTF-8 document.
var utf8BOM = []byte("\xef\xbb\xbf")

// Add copies every test suite of the JUnit XML document r, whose root is
// <testsuites> or a bare <testsuite>, into the merged document. name names
// r in errors. r must hold exactly one document: before and after its root
// element only white space, comments and processing instructions (and a
// DOCTYPE before it) may appear, so that files concatenated into one, or
// text after the root, are an error instead of suites silently dropped.
//
// An error leaves the merged document unfinished (its root is never
// closed): discard it. An error writing the merged document says so;
// every other error names the input ("NAME: not JUnit XML: ...") and,
// where it can, its line.
func (m *JUnitMerger) Add(name string, r io.Reader) error {
	if err := m.start(); err != nil {
		return err
	}
	in := &readRecorder{r: r}
	br := bufio.NewReaderSize(in, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	// A document starts with '<' after white space: anything else (the
	// zeros of a device) is refused before the decoder buffers it.
	if b, _ := br.Peek(1 << 10); len(b) > 0 {
		if i := bytes.IndexFunc(b, func(r rune) bool { return !strings.ContainsRune(" \t\r\n", r) }); i >= 0 && b[i] != '<' {
			return fmt.Errorf("%s: not JUnit XML: line %d: text before the root element", name, 1+bytes.Count(b[:i], []byte("\n")))
		}
	}
	c := junitCopier{m: m, dec: xml.NewDecoder(br), name: name}
	err := c.copy()
	switch {
	case m.out.err != nil:
		return fmt.Errorf("write the merged JUnit XML: %w", m.out.err)
	case in.err != nil && err != nil:
		// The decoder reports a failed read as the end of its text: say why.
		return fmt.Errorf("read %s: %w", name, in.err)
	}
	return err
}

// readRecorder remembers the first error of its reader but io.EOF, and
// returns it from then on without reading again (a FIFO that went quiet
// for its idle time would make each later read wait as long).
type readRecorder struct {
	r   io.Reader
	err error
}

func (r *readRecorder) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// start writes the merged document's header and root, once.
func (m *JUnitMerger) start() error {
	if m.started {
		return nil
	}
	m.started = true
	if _, err := io.WriteString(m.out, xml.Header); err != nil {
		return fmt.Errorf("write the merged JUnit XML: %w", err)
	}
	return m.encode(xml.StartElement{Name: xml.Name{Local: "testsuites"}})
}

// encode writes one token of the merged document.
func (m *JUnitMerger) encode(t xml.Token) error {
	if err := m.enc.EncodeToken(t); err != nil {
		if m.out.err != nil {
			return fmt.Errorf("write the merged JUnit XML: %w", m.out.err)
		}
		return err
	}
	return nil
}

// Close ends the merged document and flushes it. Only a merged document
// that Close ended without an error is whole.
func (m *JUnitMerger) Close() error {
	if err := m.start(); err != nil {
		return err
	}
	err := errors.Join(
		m.encode(xml.CharData("\n")),
		m.encode(xml.EndElement{Name: xml.Name{Local: "testsuites"}}),
		m.enc.Flush(),
	)
	if err == nil {
		_, err = io.WriteString(m.out, "\n")
	}
	if err != nil && m.out.err != nil {
		return fmt.Errorf("write the merged JUnit XML: %w", m.out.err)
	}
	return err
}

// junitCopier copies one input document into a merger.
type junitCopier struct {
	m    *JUnitMerger
	dec  *xml.Decoder
	name string
	// open holds the names of the elements open in the input, the root
	// first; RawToken leaves checking that they close in order to us.
	open []string
	// suites is true when the root is <testsuites>: its children, not the
	// root itself, go into the merged document.
	suites bool
	// xmlns are the namespace declarations of a <testsuites> root, carried
	// onto each of its children.
	xmlns   []xml.Attr
	seen    bool // a token was read
	line    int  // where the current token starts
	rootEnd bool // the root element has ended
}

// errorf returns an error naming the input and the current token's line.
func (c *junitCopier) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: not JUnit XML: line %d: %s", c.name, c.line, fmt.Sprintf(format, args...))
}

// copy reads the whole document, writing what belongs to the merged one.
func (c *junitCopier) copy() error {
	for {
		// RawToken keeps namespace prefixes as written (Token would turn
		// them into URLs the encoder cannot write back faithfully).
		c.line, _ = c.dec.InputPos()
		tok, err := c.dec.RawToken()
		if err == io.EOF {
			switch {
			case len(c.open) > 0:
				return c.errorf("the file ends with <%s> still open (cut short?)", c.open[len(c.open)-1])
			case !c.rootEnd:
				return fmt.Errorf("%s: not JUnit XML: no root element (want <testsuites> or <testsuite>)", c.name)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: not JUnit XML: %w", c.name, err)
		}
		if len(c.open) == 0 {
			err = c.outside(tok)
		} else {
			err = c.inside(tok)
		}
		if err != nil {
			return err
		}
		c.seen = true
	}
}

// outside handles a token before or after the root element.
func (c *junitCopier) outside(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.StartElement:
		if c.rootEnd {
			return c.errorf("a second root element <%s> after the first ended: one JUnit document per file (files concatenated into one? give each as its own FILE)", qname(t.Name))
		}
		switch qname(t.Name) {
		case "testsuites":
			c.suites = true
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					c.xmlns = append(c.xmlns, xml.Attr{Name: flatName(a.Name), Value: a.Value})
				}
			}
		case "testsuite":
			if err := c.emit(xml.CharData("\n")); err != nil {
				return err
			}
			if err := c.emit(flatStart(t)); err != nil {
				return err
			}
		default:
			return c.errorf("the root element is <%s>, want <testsuites> or <testsuite>", qname(t.Name))
		}
		c.open = append(c.open, qname(t.Name))
	case xml.EndElement:
		return c.errorf("</%s> closes no element", qname(t.Name))
	case xml.CharData:
		if text := bytes.TrimLeft(t, " \t\r\n"); len(text) > 0 {
			c.line += bytes.Count(t[:len(t)-len(text)], []byte("\n"))
			where := "before"
			if c.rootEnd {
				where = "after"
			}
			return c.errorf("text %s the root element: one JUnit document per file", where)
		}
	case xml.ProcInst:
		if t.Target == "xml" && c.seen {
			return c.errorf("a second XML declaration <?xml ...?>: one JUnit document per file (files concatenated into one? give each as its own FILE)")
		}
	case xml.Directive:
		if c.rootEnd {
			return c.errorf("<!%.20s...> after the root element: one JUnit document per file", t)
		}
	}
	// Comments, processing instructions and a DOCTYPE outside the root
	// are not part of any suite: they are left out.
	return nil
}

// inside handles a token within the root element.
func (c *junitCopier) inside(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.StartElement:
		start := flatStart(t)
		if len(c.open) == 1 && c.suites {
			if err := c.emit(xml.CharData("\n")); err != nil {
				return err
			}
			start.Attr = withDecls(start.Attr, c.xmlns)
		}
		c.open = append(c.open, qname(t.Name))
		return c.emit(start)
	case xml.EndElement:
		top := c.open[len(c.open)-1]
		if qname(t.Name) != top {
			return c.errorf("<%s> closed by </%s>", top, qname(t.Name))
		}
		c.open = c.open[:len(c.open)-1]
		if len(c.open) == 0 {
			c.rootEnd = true
			if c.suites {
				return nil // the merged document has its own root
			}
		}
		return c.emit(xml.EndElement{Name: flatName(t.Name)})
	case xml.CharData:
		if len(c.open) == 1 && c.suites {
			if text := bytes.TrimLeft(t, " \t\r\n"); len(text) > 0 {
				c.line += bytes.Count(t[:len(t)-len(text)], []byte("\n"))
				return c.errorf("text directly inside <testsuites>")
			}
			return nil // indentation between suites: the merger writes its own
		}
		return c.emit(t)
	case xml.ProcInst:
		if t.Target == "xml" {
			return c.errorf("an XML declaration <?xml ...?> inside the root element")
		}
		return c.emit(t)
	case xml.Directive:
		return c.errorf("<!%.20s...> inside the root element", t)
	default: // xml.Comment
		return c.emit(tok)
	}
}

// emit writes a token of the input to the merged document. An error the
// encoder finds in the token itself is the input's, named as such.
func (c *junitCopier) emit(tok xml.Token) error {
	if err := c.m.encode(tok); err != nil {
		if c.m.out.err != nil {
			return err
		}
		return c.errorf("%v", err)
	}
	return nil
}

// qname is a name as written, prefix included.
func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// flatName is n as written, in a form the encoder writes back unchanged:
// the prefix stays part of the name instead of becoming a namespace.
func flatName(n xml.Name) xml.Name { return xml.Name{Local: qname(n)} }

// flatStart is t with its name and its attributes' names flattened.
func flatStart(t xml.StartElement) xml.StartElement {
	out := xml.StartElement{Name: flatName(t.Name), Attr: make([]xml.Attr, len(t.Attr))}
	for i, a := range t.Attr {
		out.Attr[i] = xml.Attr{Name: flatName(a.Name), Value: a.Value}
	}
	return out
}

// withDecls adds to attrs each namespace declaration of decls that attrs
// does not make itself.
func withDecls(attrs, decls []xml.Attr) []xml.Attr {
	for _, d := range decls {
		found := false
		for _, a := range attrs {
			found = found || a.Name.Local == d.Name.Local
		}
		if !found {
			attrs = append(attrs, d)
		}
	}
	return attrs
}
