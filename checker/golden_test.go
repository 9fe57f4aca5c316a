package checker_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/histories"
)

var update = flag.Bool("update", false, "rewrite the summary sections of testdata/verdicts/*.txtar with what the checker writes")

// TestGoldenVerdicts checks every history in testdata/verdicts/*.txtar and
// compares Result.WriteSummary's text with the file's summary section;
// "go test ./checker -run Golden -update" rewrites the summaries instead.
//
// A case file is a txtar archive: its comment says what the history shows,
// then two sections follow:
//
//	-- history.jsonl --  the history, JSON Lines (docs/histories-and-checks.md "Histories")
//	-- summary --        what WriteSummary writes for it: the verdict,
//	                     each check's verdict and its first anomalies
func TestGoldenVerdicts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "verdicts", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/verdicts/*.txtar")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(ar.Comment)) == "" {
				t.Errorf("%s: no comment at the top saying what the case shows", file)
			}
			if len(ar.Files) != 2 || ar.Files[0].Name != "history.jsonl" || ar.Files[1].Name != "summary" {
				t.Fatalf("%s: want exactly a history.jsonl section and a summary section, in that order", file)
			}
			ops, err := histories.Read(bytes.NewReader(ar.Files[0].Data))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			r := checker.Check(ops)
			var got strings.Builder
			if err := r.WriteSummary(&got); err != nil {
				t.Fatal(err)
			}
			want := ar.Files[1].Data
			if got.String() == string(want) {
				return
			}
			if *update {
				ar.Files[1].Data = []byte(got.String())
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s: the checker's summary differs (-want +got; go test ./checker -run Golden -update rewrites it):\n%s",
				file, diff.Diff("want", want, "got", []byte(got.String())))
		})
	}
}
