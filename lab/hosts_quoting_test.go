package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// hostileWords are words a node command template may hold, each of which
// a shell reads unless it is quoted.
var hostileWords = []string{
	"#not a comment", "a b", "it's", `"double"`, "$HOME", "${x:-y}", "`id`", "$(id)", "line\nbreak",
	"*", "~", "a;b", "a&b", "a|b", "(x)", "<in", ">out", `back\slash`, "", "tab\there", "'", "''",
}

// TestQuoteForRemoteShell: every word reaches the command as it is, also
// through a second shell, as the node wrapper and sudo nest them.
func TestQuoteForRemoteShell(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip(err)
	}
	printArgs := "printf '%s\\0' " + qJoin(hostileWords...)
	for _, script := range []string{printArgs, "sh -c " + q(printArgs), "sh -c " + q("sh -c "+q(printArgs))} {
		out, err := exec.Command("sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(hostileWords) {
			t.Fatalf("%d words came through, want %d: %q", len(got), len(hostileWords), got)
		}
		for i := range got {
			if got[i] != hostileWords[i] {
				t.Errorf("word %d: got %q, want %q", i, got[i], hostileWords[i])
			}
		}
	}
}

func TestPIDWriterTakesTheFirstLine(t *testing.T) {
	var b strings.Builder
	w := &pidWriter{w: &b}
	for _, chunk := range []string{"12", "34\nhel", "lo\n", "world"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("write %q: %d, %v", chunk, n, err)
		}
	}
	if w.pid.Load() != 1234 || b.String() != "hello\nworld" {
		t.Errorf("pid %d, output %q", w.pid.Load(), b.String())
	}
}

func TestParseHostsRefusesControlCharacters(t *testing.T) {
	const rest = "user = \"root\"\nkey = \"k\"\n"
	for _, c := range []struct{ file, want string }{
		{"[[host]]\naddress = \"10.0.0.1\\u001b[31m\"\n" + rest, `address "10.0.0.1\x1b[31m" is neither a host name nor an IP address`},
		{"[[host]]\naddress = \"db\\u0007\"\nnode_addr = \"10.0.0.1\"\n" + rest, `is neither a host name nor an IP address`},
		{"[[host]]\naddress = \"db\\nevil\"\nnode_addr = \"10.0.0.1\"\n" + rest, `is neither a host name nor an IP address`},
		{"[[host]]\naddress = \"10.0.0.1\"\nuser = \"root\"\nkey = \"k\\u001b]0;x\\u0007\"\n", `key "k\x1b]0;x\a" holds a control character`},
		{"[[host]]\naddress = \"10.0.0.1\"\nknown_hosts = \"kh\\r\"\n" + rest, `known_hosts "kh\r" holds a control character`},
		{"[[host]]\naddress = \"10.0.0.1\"\n\"col\\u001bour\" = 1\n" + rest, `unknown keys`},
	} {
		_, err := ParseHosts([]byte(c.file), "/")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.file, err, c.want)
			continue
		}
		if hasControl(err.Error()) {
			t.Errorf("%q: the error prints a control character raw: %q", c.file, err.Error())
		}
	}
	hf, err := ParseHosts([]byte("[[host]]\naddress = \"db-1.example\"\nnode_addr = \"10.0.0.1\"\ndir = \"/var/tmp//ecc/\"\n"+rest), "/")
	if err != nil || hf.Hosts[0].Dir != "/var/tmp/ecc" {
		t.Errorf("a host name and a dir to clean: %v, %+v", err, hf)
	}
}

func TestReadHostsIsBounded(t *testing.T) {
	start := time.Now()
	_, err := ReadHosts("/dev/zero")
	var tooLarge *boundedfile.TooLargeError
	if !errors.As(err, &tooLarge) || time.Since(start) > 5*time.Second {
		t.Errorf("/dev/zero as a hosts file: %v after %s", err, time.Since(start))
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxKeyFile+1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ entry, want string }{
		{`key = "/dev/zero"`, "key /dev/zero is not a regular file"},
		{`key = "big"`, "key " + big + " is larger than 1 MiB"},
		{"key = \"k\"\nknown_hosts = \"/dev/zero\"", "known_hosts /dev/zero is not a regular file"},
	} {
		file := filepath.Join(dir, "hosts.toml")
		if err := os.WriteFile(file, []byte("[[host]]\naddress = \"10.0.0.1\"\nuser = \"root\"\n"+c.entry+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHosts(file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.entry, err, c.want)
		}
	}
	// dial reads the key within its bound too, whatever ReadHosts saw.
	_, err = dial(context.Background(), HostSpec{Address: "127.0.0.1", Port: 1, User: "root", Key: "/dev/zero", InsecureIgnoreHostKey: true})
	if !errors.As(err, &tooLarge) {
		t.Errorf("dial with /dev/zero as its key: %v", err)
	}
}

// TestHostReportListsOnlyChecksThatRan: a host without root says so, and
// which checks it could not run, not their zero values as failures.
func TestHostReportListsOnlyChecksThatRan(t *testing.T) {
	r := HostReport{Address: "10.0.0.1", NeedNft: true, NeedQ: true, NeedArc: true}
	p := r.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "neither root nor passwordless sudo") || !strings.Contains(p[0], "not checked without it: nftables, NFQUEUE, clock, free disk") {
		t.Errorf("no root: %q", p)
	}
	for _, bad := range []string{"MiB free", "no NFQUEUE", `runs ""`, "nftables: "} {
		if strings.Contains(strings.Join(p, "; "), bad) {
			t.Errorf("no root: %q lists a check that never ran (%q)", p, bad)
		}
	}
	ok := HostReport{Root: "root", Nft: "ok", NeedNft: true, Free: MinFreeDisk, Arch: wantArch(), NeedArc: true}
	for _, c := range []struct {
		skew, rtt time.Duration
		fails     bool
	}{
		{6 * time.Second, 4 * time.Second, false}, // within the limit somewhere in the round trip
		{-6 * time.Second, 4 * time.Second, false},
		{8 * time.Second, time.Second, true},
		{0, 117 * time.Second, false}, // a slow answer does not blame the clock
	} {
		r := ok
		r.Skew, r.RTT = c.skew, c.rtt
		if got := len(r.Problems()) > 0; got != c.fails {
			t.Errorf("skew %s in a round trip of %s: problems %q", c.skew, c.rtt, r.Problems())
		}
	}
}
