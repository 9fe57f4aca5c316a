package harness

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzExpandTemplate: any --node-cmd template expands or fails with an
// error, never a panic; an expansion has at least one word,
// and a template of plain words splits at spaces, tabs and newlines (the
// shell's default IFS), keeping every other byte.
func FuzzExpandTemplate(f *testing.F) {
	for _, s := range []string{
		DefaultNodeCmd,
		`sh -c '{self} node --name {name}; echo x'`,
		`mynode --id "{name}" --dir {data_dir}\ x`,
		`a 'b c' "d\"e" f\\g`,
		`unterminated 'quote`,
		`{nope}`,
	} {
		f.Add(s)
	}
	vars := templateVars("/bin/ec", "n1", "10.1.1.2:8080", "10.1.1.2:7946", "10.1.2.2:7946", "10.1.2.2:8080", "/d", "/t")
	f.Fuzz(func(t *testing.T, tmpl string) {
		words, err := expandTemplate(tmpl, vars)
		if err != nil {
			return
		}
		if len(words) == 0 {
			t.Fatalf("%q expanded to no words", tmpl)
		}
		if !strings.ContainsAny(tmpl, `'"\{`) {
			want := strings.FieldsFunc(tmpl, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
			if strings.Join(words, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("%q split into %q, want %q", tmpl, words, want)
			}
		}
	})
}

// FuzzMergeJUnit feeds junit-merge any bytes: it must refuse them with an
// error naming the input, or merge them into one document that holds every
// element the input's root held, in order, and that merges again into
// itself; never panic.
func FuzzMergeJUnit(f *testing.F) {
	var b bytes.Buffer
	WriteJUnit(&b, "x", []CampaignRun{{Seed: 1}, {Seed: 2, Outcome: &Outcome{}}})
	f.Add(b.Bytes())
	f.Add(append(b.Bytes(), b.Bytes()...))
	f.Add([]byte(`<testsuite name="s"><testcase name="t"/></testsuite>`))
	f.Add([]byte(`<testsuites><testsuite><testcase name="a"><failure message="m">body</failure></testcase></testsuite></testsuites>`))
	f.Add([]byte(`<testsuites xmlns:x="u"><testsuite x:a="1" skipped="1"><properties><property name="p" value="v"/></properties>` +
		`<testcase name="a"><skipped/><system-out>o&lt;</system-out></testcase><!--c--></testsuite></testsuites><!--end-->`))
	f.Add([]byte("\xef\xbb\xbf<testsuite/>trailing"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := mergeJUnit(t, data)
		if err != nil {
			if !strings.Contains(err.Error(), "in.xml") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		if in, merged := junitElements(t, data), junitElements(t, out); !slices.Equal(in, merged) {
			t.Fatalf("%q merged as %q: elements %q, want %q", data, out, merged, in)
		}
		again, err := mergeJUnit(t, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("%q merged as %q, which merges as %q, %v", data, out, again, err)
		}
	})
}

// mergeJUnit merges one document named in.xml.
func mergeJUnit(t *testing.T, data []byte) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	m := NewJUnitMerger(&out)
	if err := m.Add("in.xml", bytes.NewReader(data)); err != nil {
		return nil, err
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.Bytes(), nil
}

// junitElements lists the start tags of a well-formed document, its
// <testsuites> root left out, with their attributes other than namespace
// declarations.
func junitElements(t *testing.T, doc []byte) []string {
	t.Helper()
	var out []string
	dec := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(doc, utf8BOM)))
	for depth := 0; ; {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && qname(tok.Name) == "testsuites" {
				continue
			}
			s := qname(tok.Name)
			for _, a := range tok.Attr {
				if a.Name.Space != "xmlns" && qname(a.Name) != "xmlns" {
					s += fmt.Sprintf(" %s=%q", qname(a.Name), a.Value)
				}
			}
			out = append(out, s)
		case xml.EndElement:
			depth--
		}
	}
}
