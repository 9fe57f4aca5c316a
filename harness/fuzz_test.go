package harness

import (
	"bytes"
	"encoding/xml"
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

// FuzzMergeJUnit feeds junit-merge any bytes: it must merge what is JUnit
// XML into a document that reads back with the same test cases, and refuse
// the rest with an error naming the input, never panic.
func FuzzMergeJUnit(f *testing.F) {
	var b bytes.Buffer
	WriteJUnit(&b, "x", []CampaignRun{{Seed: 1}, {Seed: 2, Outcome: &Outcome{}}})
	f.Add(b.Bytes())
	f.Add([]byte(`<testsuite name="s"><testcase name="t"/></testsuite>`))
	f.Add([]byte(`<testsuites><testsuite><testcase name="a"><failure message="m">body</failure></testcase></testsuite></testsuites>`))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		err := MergeJUnit(&out, []JUnitDoc{{Name: "in.xml", Data: data}})
		if err != nil {
			if !strings.Contains(err.Error(), "in.xml") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		var d junitSuites
		if err := xml.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatalf("merged output does not read back: %v\n%s", err, out.Bytes())
		}
	})
}
