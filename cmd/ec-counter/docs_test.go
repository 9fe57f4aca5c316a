package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/urfave/cli/v2"
)

// The README is the front door and docs/ holds the reference (README.md,
// "Documentation"). These tests keep them whole: every relative link and
// anchor resolves, every flag of every command is in the CLI reference,
// and the README stays one screenful that starts with its two commands.

// repoRoot is the repository's root, seen from this package's directory.
const repoRoot = "../.."

// maxREADMELines is how long the README may grow.
const maxREADMELines = 150

// userCommands are the commands of run() a user sees, by constructor
// name; TestDocsCommandsListed keeps the list in step with run().
var userCommands = map[string]func() *cli.Command{
	"testCommand":       testCommand,
	"checkCommand":      checkCommand,
	"nodeCommand":       nodeCommand,
	"clientCommand":     clientCommand,
	"selftestCommand":   selftestCommand,
	"runsCommand":       runsCommand,
	"showCommand":       showCommand,
	"serveCommand":      serveCommand,
	"doctorCommand":     doctorCommand,
	"junitMergeCommand": junitMergeCommand,
	"shrinkCommand":     shrinkCommand,
	"cleanupCommand":    cleanupCommand,
}

// hiddenCommands are run()'s commands that are not for users and have no
// reference entry.
var hiddenCommands = map[string]func() *cli.Command{
	"hostDelayerCommand": hostDelayerCommand,
}

// mdDoc is one markdown file: its prose (fenced code blocks and inline
// code removed) and the anchors of its headings.
type mdDoc struct {
	path     string // relative to repoRoot
	prose    string
	anchors  map[string]bool
	headings []mdHeading
	lines    int
}

// mdHeading is a heading and where its section starts and ends in lines.
type mdHeading struct {
	level      int
	text       string
	start, end int // lines [start, end) of the section, heading included
}

var (
	fenceRE      = regexp.MustCompile("^\\s*(```|~~~)")
	headingRE    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	inlineCodeRE = regexp.MustCompile("`+[^`]*`+")
	linkRE       = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	mdLinkTextRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// readDoc reads and parses the markdown file at rel (relative to repoRoot).
func readDoc(t *testing.T, rel string) *mdDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	d := &mdDoc{path: rel, anchors: map[string]bool{}}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	d.lines = len(lines)
	var prose []string
	inFence := ""
	seen := map[string]int{}
	for i, line := range lines {
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case m[1] == inFence:
				inFence = ""
			}
			prose = append(prose, "")
			continue
		}
		if inFence != "" {
			prose = append(prose, "")
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			slug := githubSlug(m[2])
			if n := seen[slug]; n > 0 {
				d.anchors[fmt.Sprintf("%s-%d", slug, n)] = true
			} else {
				d.anchors[slug] = true
			}
			seen[slug]++
			if len(d.headings) > 0 {
				d.headings[len(d.headings)-1].end = i
			}
			d.headings = append(d.headings, mdHeading{level: len(m[1]), text: m[2], start: i, end: len(lines)})
		}
		prose = append(prose, inlineCodeRE.ReplaceAllString(line, "``"))
	}
	d.prose = strings.Join(prose, "\n")
	return d
}

// githubSlug is the anchor GitHub gives a heading: its text as rendered
// (no backticks, a link's text only), lower-cased, punctuation dropped
// except '-' and '_', each space a '-'.
func githubSlug(heading string) string {
	heading = mdLinkTextRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestDocsGitHubSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Networks: the lab and loopback":                "networks-the-lab-and-loopback",
		"`ec-counter test`":                             "ec-counter-test",
		"Testing your own implementation: `--node-cmd`": "testing-your-own-implementation---node-cmd",
		"Does it catch bugs? `ec-counter selftest`":     "does-it-catch-bugs-ec-counter-selftest",
		"Admin API (fault injection)":                   "admin-api-fault-injection",
		"What a seed fixes, and what it does not":       "what-a-seed-fixes-and-what-it-does-not",
		"report.html": "reporthtml",
		"Re-checking a history: `ec-counter check`":     "re-checking-a-history-ec-counter-check",
		"See [the node](node.md) and `serve`":           "see-the-node-and-serve",
		"Start-up and large_clusters, 100 nodes ≥ 2^31": "start-up-and-large_clusters-100-nodes--231",
	} {
		if got := githubSlug(heading); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// docFiles lists README.md and every page under docs/, relative to repoRoot.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no pages under docs/")
	}
	files := []string{"README.md"}
	for _, p := range pages {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

// TestDocsLinks checks that every relative link of README.md and docs/
// names a file that exists, and every #anchor a heading of its page.
func TestDocsLinks(t *testing.T) {
	docs := map[string]*mdDoc{}
	get := func(rel string) *mdDoc {
		if docs[rel] == nil {
			docs[rel] = readDoc(t, rel)
		}
		return docs[rel]
	}
	links := 0
	for _, rel := range docFiles(t) {
		d := get(rel)
		for _, m := range linkRE.FindAllStringSubmatch(d.prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			file, anchor, _ := strings.Cut(target, "#")
			dest := rel
			if file != "" {
				dest = filepath.Clean(filepath.Join(filepath.Dir(rel), file))
				if strings.HasPrefix(dest, "..") {
					t.Errorf("%s: link %q leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, dest)); err != nil {
					t.Errorf("%s: link %q: no such file %s", rel, target, dest)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q: an anchor into a file that is not markdown", rel, target)
				continue
			}
			if !get(dest).anchors[anchor] {
				t.Errorf("%s: link %q: %s has no heading with anchor #%s", rel, target, dest, anchor)
			}
		}
	}
	if links < 50 {
		t.Errorf("found only %d relative links: is the link pattern broken?", links)
	}
}

// flagMention is a mention of the flag (or short alias) name in prose.
func flagMention(name string) *regexp.Regexp {
	dashes := "--"
	if len(name) == 1 {
		dashes = "-"
	}
	return regexp.MustCompile(`(^|[^-\w])` + dashes + regexp.QuoteMeta(name) + `($|[^-\w])`)
}

// TestDocsFlags checks that the CLI reference, docs/cli.md, has a section
// for every command a user sees, and names every flag of that command in
// it, aliases included.
func TestDocsFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	ref := readDoc(t, filepath.Join("docs", "cli.md"))
	flags := 0
	for _, ctor := range userCommands {
		cmd := ctor()
		if cmd.Hidden {
			t.Errorf("command %s is hidden: move it to hiddenCommands", cmd.Name)
			continue
		}
		i := slices.IndexFunc(ref.headings, func(h mdHeading) bool {
			return h.level == 2 && (h.text == "`ec-counter "+cmd.Name+"`" || strings.HasPrefix(h.text, "`ec-counter "+cmd.Name+" "))
		})
		if i < 0 {
			t.Errorf("docs/cli.md has no section \"## `ec-counter %s`\"", cmd.Name)
			continue
		}
		h := ref.headings[i]
		end := h.end
		for _, sub := range ref.headings[i+1:] { // subsections belong to it
			if sub.level <= 2 {
				break
			}
			end = sub.end
		}
		section := strings.Join(lines[h.start:end], "\n")
		for _, f := range cmd.Flags {
			for _, name := range f.Names() {
				flags++
				if !flagMention(name).MatchString(section) {
					t.Errorf("docs/cli.md, section %s: flag %s of `ec-counter %s` is not documented", h.text, dashed(name), cmd.Name)
				}
			}
		}
	}
	for _, ctor := range hiddenCommands {
		if cmd := ctor(); !cmd.Hidden {
			t.Errorf("command %s is not hidden: move it to userCommands and document it", cmd.Name)
		}
	}
	if flags < 60 {
		t.Errorf("checked only %d flag names", flags)
	}
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// TestDocsCommandsListed keeps userCommands and hiddenCommands in step with
// the commands run() builds.
func TestDocsCommandsListed(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	if i := strings.Index(body, "Commands: []*cli.Command{"); i >= 0 {
		body = body[i:]
		if j := strings.Index(body, "},"); j >= 0 {
			body = body[:j]
		}
	} else {
		t.Fatal("main.go: no Commands list in run()")
	}
	var inRun []string
	for _, m := range regexp.MustCompile(`(\w+Command)\(\)`).FindAllStringSubmatch(body, -1) {
		inRun = append(inRun, m[1])
	}
	var listed []string
	for name := range userCommands {
		listed = append(listed, name)
	}
	for name := range hiddenCommands {
		listed = append(listed, name)
	}
	slices.Sort(inRun)
	slices.Sort(listed)
	if !slices.Equal(inRun, listed) {
		t.Errorf("run() builds commands %v, docs_test.go lists %v", inRun, listed)
	}
}

// TestDocsREADME checks the README is a front door: at most maxREADMELines
// lines, starting with its two commands (CI runs "the README's first
// command" and "the README's test command").
func TestDocsREADME(t *testing.T) {
	d := readDoc(t, "README.md")
	if d.lines > maxREADMELines {
		t.Errorf("README.md has %d lines, at most %d: move reference material to docs/", d.lines, maxREADMELines)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var first []string // the README's first fenced block
	inFence := false
	for _, line := range strings.Split(string(b), "\n") {
		if fenceRE.MatchString(line) {
			if inFence {
				break
			}
			inFence = true
			continue
		}
		if inFence {
			first = append(first, line)
		} else if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "# ") {
			t.Fatalf("README.md: %q comes before its first commands", line)
		}
	}
	want := []string{"go run ./cmd/ec-counter test", "go test ./..."}
	if len(first) < len(want) {
		t.Fatalf("README.md's first block has %d lines, want the commands %q", len(first), want)
	}
	for i, w := range want {
		cmd, _, _ := strings.Cut(first[i], "#")
		if strings.TrimSpace(cmd) != w {
			t.Errorf("README.md's command %d is %q, want %q", i+1, strings.TrimSpace(cmd), w)
		}
	}
}

// TestDocsPagesStandAlone checks that every page under docs/ can be read
// alone: it opens with a title, and the README links to it.
func TestDocsPagesStandAlone(t *testing.T) {
	readme := readDoc(t, "README.md")
	for _, rel := range docFiles(t)[1:] {
		b, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "# ") {
			t.Errorf("%s does not open with a title (# ...)", rel)
		}
		if !strings.Contains(readme.prose, "]("+filepath.ToSlash(rel)) {
			t.Errorf("README.md does not link to %s", rel)
		}
	}
}
