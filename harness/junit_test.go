package harness

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ec-counter/ec-counter/checker"
)

// junitRead is the part of JUnit XML these tests read back.
type junitRead struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Props    []struct {
			Name string `xml:"name,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string    `xml:"name,attr"`
			Failure   *struct{} `xml:"failure"`
			Skipped   *struct{} `xml:"skipped"`
			SystemOut string    `xml:"system-out"`
			SystemErr string    `xml:"system-err"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// merge merges docs, named a, b, c, ... in errors.
func merge(docs ...string) ([]byte, error) {
	var out bytes.Buffer
	m := NewJUnitMerger(&out)
	for i, d := range docs {
		if err := m.Add(fmt.Sprintf("%c.xml", 'a'+i), strings.NewReader(d)); err != nil {
			return out.Bytes(), err
		}
	}
	err := m.Close()
	return out.Bytes(), err
}

// TestMergeJUnit keeps every suite of every document in order, with all
// they hold (skipped cases stay skipped), and accepts a bare <testsuite>.
func TestMergeJUnit(t *testing.T) {
	var a, b bytes.Buffer
	run := func(seed uint64, v checker.Validity) CampaignRun {
		return CampaignRun{Seed: seed, Outcome: &Outcome{Result: checker.Result{Valid: v}}}
	}
	if err := WriteJUnit(&a, "x", []CampaignRun{run(1, checker.Valid)}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJUnit(&b, "x", []CampaignRun{run(2, checker.Invalid), run(3, checker.Valid)}); err != nil {
		t.Fatal(err)
	}
	bare := "\xef\xbb\xbf" + `<?xml version="1.0"?>
<!DOCTYPE testsuite>
<testsuite name="other" tests="2" skipped="1">
  <properties><property name="go" value="1.26"/></properties>
  <testcase name="t"><skipped message="later"/></testcase>
  <testcase name="u"><system-out>out</system-out><system-err>err &amp; more</system-err></testcase>
</testsuite>
<!-- the end -->
`
	out, err := merge(a.String(), b.String(), bare)
	if err != nil {
		t.Fatal(err)
	}
	var d junitRead
	if err := xml.Unmarshal(out, &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var names []string
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			names = append(names, c.Name)
		}
	}
	if want := []string{"seed 1", "seed 2", "seed 3", "t", "u"}; !slices.Equal(names, want) {
		t.Fatalf("merged %q, want %q\n%s", names, want, out)
	}
	if s := d.Suites[1]; s.Failures != 1 || s.Cases[0].Failure == nil || s.Cases[1].Failure != nil {
		t.Errorf("second suite's failures lost: %+v", s)
	}
	s := d.Suites[2]
	if s.Name != "other" || s.Skipped != 1 || len(s.Props) != 1 || s.Cases[0].Skipped == nil ||
		s.Cases[1].SystemOut != "out" || s.Cases[1].SystemErr != "err & more" {
		t.Errorf("bare suite not kept whole: %+v\n%s", s, out)
	}
}

// TestMergeJUnitOneDocumentPerFile: a file holding anything but exactly
// one JUnit document is refused, naming it and the line, never merged in
// part (concatenated shard files lost their second half's failures).
func TestMergeJUnitOneDocumentPerFile(t *testing.T) {
	suite := `<testsuite name="s"><testcase name="t"><failure/></testcase></testsuite>`
	for _, tc := range []struct{ in, want string }{
		{suite + suite, "a.xml: not JUnit XML: line 1: a second root element <testsuite>"},
		{"<testsuites>" + suite + "</testsuites>\n<testsuites>" + suite + "</testsuites>", "a.xml: not JUnit XML: line 2: a second root element <testsuites>"},
		{xml.Header + suite + "\n" + xml.Header + suite, "a.xml: not JUnit XML: line 3: a second XML declaration"},
		{suite + "\ngarbage", "a.xml: not JUnit XML: line 2: text after the root element"},
		{"junk" + suite, "a.xml: not JUnit XML: line 1: text before the root element"},
		{suite + "<!DOCTYPE x>", "a.xml: not JUnit XML: line 1: <!DOCTYPE x...> after the root element"},
		{suite + "</testsuite>", "a.xml: not JUnit XML: line 1: </testsuite> closes no element"},
		{"<testsuite><testcase></testsuite>", "a.xml: not JUnit XML: line 1: <testcase> closed by </testsuite>"},
		{"<testsuite>\n<testcase>\n", "a.xml: not JUnit XML: line 3: the file ends with <testcase> still open (cut short?)"},
		{"<testsuite>&nbsp;</testsuite>", "a.xml: not JUnit XML: XML syntax error on line 1: invalid character entity &nbsp;"},
		{"<testsuite><?xml version='1.0'?></testsuite>", "a.xml: not JUnit XML: line 1: an XML declaration"},
		{"<testsuites>\n  0</testsuites>", "a.xml: not JUnit XML: line 2: text directly inside <testsuites>"},
		{"<html/>", "a.xml: not JUnit XML: line 1: the root element is <html>"},
		{"", "a.xml: not JUnit XML: no root element"},
		{"<!-- nothing -->  ", "a.xml: not JUnit XML: no root element"},
		{`<?xml version="1.0" encoding="latin1"?><testsuite/>`, "a.xml: not JUnit XML"},
	} {
		out, err := merge(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("merge(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			continue
		}
		if xml.Unmarshal(out, new(junitRead)) == nil {
			t.Errorf("merge(%q) failed, yet left a document a CI system reads: %s", tc.in, out)
		}
	}
	// White space, comments and processing instructions may follow the root.
	if _, err := merge(suite + "\n<!-- end -->\n<?done?>\n\n"); err != nil {
		t.Errorf("epilogue refused: %v", err)
	}
}

// TestMergeJUnitNamespaces: prefixes stay as written, and declarations of
// a <testsuites> root move onto its suites.
func TestMergeJUnitNamespaces(t *testing.T) {
	in := `<testsuites xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="all" tests="1">` +
		`<testsuite xsi:noNamespaceSchemaLocation="junit.xsd" name="s"><testcase name="t"/></testsuite>` +
		`<testsuite xmlns:xsi="other" name="u"/></testsuites>`
	out, err := merge(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<testsuite xsi:noNamespaceSchemaLocation="junit.xsd" name="s" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
		`<testsuite xmlns:xsi="other" name="u">`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("merged document lacks %s:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte(`name="all"`)) {
		t.Errorf("a shard's <testsuites> attributes were kept:\n%s", out)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestMergeJUnitWriteError blames the output, not the input, when the
// merged document cannot be written.
func TestMergeJUnitWriteError(t *testing.T) {
	m := NewJUnitMerger(failWriter{})
	err := m.Add("a.xml", strings.NewReader(strings.Repeat(`<testsuite name="s"/>`, 1)))
	if err == nil {
		err = m.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "write the merged JUnit XML: disk full") || strings.Contains(err.Error(), "a.xml") {
		t.Fatalf("got %v, want the write's error", err)
	}
}

// TestMergeJUnitReadError reports why a read failed (a file over its
// bound, a FIFO gone quiet), not the decoder's view of the cut.
func TestMergeJUnitReadError(t *testing.T) {
	m := NewJUnitMerger(io.Discard)
	r := io.MultiReader(strings.NewReader("<testsuite><system-out>abc"), iotest.ErrReader(errors.New("larger than 256 MiB")))
	if err := m.Add("a.xml", r); err == nil || err.Error() != "read a.xml: larger than 256 MiB" {
		t.Fatalf("got %v, want the read's error", err)
	}
}

// slowReader fails its first read after a while, as a FIFO gone quiet
// does, and every later one at once; it counts its reads.
type slowReader struct{ reads int }

func (r *slowReader) Read([]byte) (int, error) {
	r.reads++
	if r.reads == 1 {
		time.Sleep(10 * time.Millisecond)
	}
	return 0, errors.New("nothing to read for 5s")
}

// TestMergeJUnitReadsOnceAfterAnError: a read that failed is not tried
// again (a silent FIFO cost its idle time once per read: 15 s, not 5).
func TestMergeJUnitReadsOnceAfterAnError(t *testing.T) {
	r := &slowReader{}
	err := NewJUnitMerger(io.Discard).Add("a.xml", r)
	if err == nil || err.Error() != "read a.xml: nothing to read for 5s" || r.reads != 1 {
		t.Fatalf("got %v after %d reads, want the read's error after one", err, r.reads)
	}
}

// junitSource generates one <testsuites> document of n failing test cases
// without holding it, and samples the heap as it is read.
type junitSource struct {
	n, i    int
	buf     []byte
	maxHeap uint64
	read    int
}

func (s *junitSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch {
		case s.i == 0:
			s.buf = append(s.buf, "<testsuites><testsuite name=\"big\">\n"...)
		case s.i <= s.n:
			s.buf = fmt.Appendf(s.buf, "<testcase name=\"seed %d\" classname=\"big\" time=\"1.000\"><failure message=\"invalid\">%s</failure><system-out>run: store/x/%d</system-out></testcase>\n",
				s.i, strings.Repeat("lost write ", 20), s.i)
		case s.i == s.n+1:
			s.buf = append(s.buf, "</testsuite></testsuites>\n"...)
		default:
			return 0, io.EOF
		}
		s.i++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	if s.read/(1<<20) != (s.read+n)/(1<<20) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.maxHeap = max(s.maxHeap, ms.HeapAlloc)
	}
	s.read += n
	return n, nil
}

// TestMergeJUnitStreams: merging a 32 MiB suite keeps the heap small (it
// held 5.4 times its input).
func TestMergeJUnitStreams(t *testing.T) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	src := &junitSource{n: 100_000}
	m := NewJUnitMerger(io.Discard)
	if err := m.Add("big.xml", src); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	grew := int64(src.maxHeap) - int64(before.HeapAlloc)
	t.Logf("read %d MiB, heap grew by at most %d KiB", src.read>>20, grew>>10)
	if src.read < 32<<20 || grew > 8<<20 {
		t.Fatalf("read %d bytes, heap grew by %d bytes: want 32 MiB read within 8 MiB", src.read, grew)
	}
}

// BenchmarkMergeJUnit merges four 16 MiB shards (-benchmem: what it
// allocates in all, mostly short-lived tokens).
func BenchmarkMergeJUnit(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := NewJUnitMerger(io.Discard)
		for i := range 4 {
			if err := m.Add(fmt.Sprintf("shard%d.xml", i), &junitSource{n: 50_000}); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
