package lab

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ec-counter/ec-counter/api"
)

func TestParseHosts(t *testing.T) {
	hf, err := ParseHosts([]byte(`
upload_node_cmd = true
[[host]]
address = "10.0.0.1"
user = "root"
key = "keys/id"

[[host]]
address = "db2.example"
node_addr = "10.0.0.2"
port = 2222
user = "ops"
key = "/abs/id"
known_hosts = "kh"
http_port = 9000
gossip_port = 9001
dir = "runs"
nft = "/usr/sbin/nft"
`), "/etc/ec")
	if err != nil {
		t.Fatal(err)
	}
	want := []HostSpec{
		{Address: "10.0.0.1", Port: 22, User: "root", Key: "/etc/ec/keys/id", KnownHosts: hf.Hosts[0].KnownHosts,
			NodeAddr: "10.0.0.1", HTTPPort: 8080, GossipPort: 7946, Dir: DefaultHostDir, Nft: "nft"},
		{Address: "db2.example", Port: 2222, User: "ops", Key: "/abs/id", KnownHosts: "/etc/ec/kh",
			NodeAddr: "10.0.0.2", HTTPPort: 9000, GossipPort: 9001, Dir: "runs", Nft: "/usr/sbin/nft"},
	}
	if !hf.UploadNodeCmd || len(hf.Hosts) != 2 {
		t.Fatalf("got %+v", hf)
	}
	for i := range want {
		if hf.Hosts[i] != want[i] {
			t.Errorf("host %d:\n got %+v\nwant %+v", i+1, hf.Hosts[i], want[i])
		}
	}
	if !strings.HasSuffix(hf.Hosts[0].KnownHosts, filepath.Join(".ssh", "known_hosts")) {
		t.Errorf("default known_hosts: %s", hf.Hosts[0].KnownHosts)
	}
	if hf.SharedAddrs() != "" {
		t.Errorf("shared address in %+v", hf.Hosts)
	}
}

func TestParseHostsErrors(t *testing.T) {
	const ok = "address = \"10.0.0.1\"\nuser = \"root\"\nkey = \"k\"\n"
	for _, c := range []struct{ file, want string }{
		{"", "no [[host]] entries"},
		{"[[host]]\nuser = \"root\"\nkey = \"k\"\n", "address is missing"},
		{"[[host]]\naddress = \"10.0.0.1\"\nkey = \"k\"\n", "user is missing"},
		{"[[host]]\naddress = \"10.0.0.1\"\nuser = \"root\"\n", "key (a private key file) is missing"},
		{"[[host]]\n" + ok + "colour = \"red\"\n", "unknown keys host.colour"},
		{"[[host]]\naddress = \"db1\"\nuser = \"root\"\nkey = \"k\"\n", "set node_addr when address is a name"},
		{"[[host]]\n" + ok + "node_addr = \"::1\"\n", "must be an IPv4 address"},
		{"[[host]]\n" + ok + "port = 70000\n", "port must be 1-65535"},
		{"[[host]]\n" + ok + "http_port = 7946\n", "http_port and gossip_port are both 7946"},
		{"[[host]]\n" + ok + "dir = \"/tmp/a b\"\n", "characters a remote shell would read"},
		{"[[host]]\n" + ok + "nft = \"nft; rm -rf /\"\n", "characters a remote shell would read"},
		{"[[host]]\n" + ok + "[[host]]\n" + ok, "10.0.0.1:8080 is already taken by host 1"},
		{"[[host]]\naddress = 1\n", "toml"},
	} {
		_, err := ParseHosts([]byte(c.file), "/")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.file, err, c.want)
		}
	}
	// Two nodes on one machine, on distinct ports, are fine; network
	// faults then refuse (SharedAddrs).
	hf, err := ParseHosts([]byte("[[host]]\n"+ok+"[[host]]\n"+ok+"http_port = 8081\ngossip_port = 7947\n"), "/")
	if err != nil || hf.SharedAddrs() != "10.0.0.1" {
		t.Errorf("two nodes on one address: %v, shared %q", err, hf.SharedAddrs())
	}
}

func FuzzParseHosts(f *testing.F) {
	f.Add([]byte("[[host]]\naddress = \"10.0.0.1\"\nuser = \"root\"\nkey = \"k\"\n"))
	f.Add([]byte("upload_node_cmd = true\n[[host]]\naddress = \"h\"\nnode_addr = \"10.1.2.3\"\nuser = \"u\"\nkey = \"~/k\"\nport = 22\n"))
	f.Add([]byte("[[host]]\naddress = \"10.0.0.1\\u001b\"\nuser = \"root\"\nkey = \"k\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hf, err := ParseHosts(data, "/base")
		if err != nil {
			if hasControl(err.Error()) {
				t.Fatalf("an error prints a control character raw: %q", err.Error())
			}
			return
		}
		seen := map[string]bool{}
		for _, h := range hf.Hosts {
			a, err := netip.ParseAddr(h.NodeAddr)
			if err != nil || !a.Is4() || h.Port < 1 || h.Port > 65535 || h.HTTPPort == h.GossipPort ||
				!safeWord.MatchString(h.Dir) || !safeWord.MatchString(h.Nft) || !safeWord.MatchString(h.User) || !filepath.IsAbs(h.Key) ||
				hasControl(h.Address) || hasControl(h.Key) || hasControl(h.KnownHosts) || h.Dir != path.Clean(h.Dir) {
				t.Fatalf("accepted a bad host %+v", h)
			}
			for _, p := range []int{h.HTTPPort, h.GossipPort} {
				k := h.NodeAddr + ":" + strconv.Itoa(p)
				if seen[k] {
					t.Fatalf("accepted a port twice: %+v", hf.Hosts)
				}
				seen[k] = true
			}
		}
	})
}

func TestNftScript(t *testing.T) {
	hosts := []*fleetHost{{node: "n1", addr: netip.MustParseAddr("10.0.0.1")}, {node: "n2", addr: netip.MustParseAddr("10.0.0.2")}, {node: "n3", addr: netip.MustParseAddr("10.0.0.3")}}
	f := &Fleet{tag: "ecc_0123456789ab", hosts: hosts, byIP: map[netip.Addr]*fleetHost{}}
	for _, h := range hosts {
		f.byIP[h.addr] = h
	}
	fs := api.FaultSet{Links: map[string]api.LinkFaults{
		"10.0.0.3:7946": {Out: &api.DirFaults{Drop: true}},
		"10.0.0.2:7946": {In: &api.DirFaults{Drop: true}, Out: &api.DirFaults{Loss: 0.25}},
	}}
	byIP, err := fs.Validate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.nftScript(hosts[0], byIP)
	if err != nil {
		t.Fatal(err)
	}
	want := `table inet ecc_0123456789ab_n1
delete table inet ecc_0123456789ab_n1
table inet ecc_0123456789ab_n1 {
	chain in {
		type filter hook input priority -10; policy accept;
		ip saddr 10.0.0.2 ip daddr 10.0.0.1 drop
	}
	chain out {
		type filter hook output priority -10; policy accept;
		ip saddr 10.0.0.1 ip daddr 10.0.0.2 numgen random mod 10000 < 2500 drop
		ip saddr 10.0.0.1 ip daddr 10.0.0.3 drop
	}
}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// No faults: the table goes.
	if got, _ := f.nftScript(hosts[0], nil); got != "table inet ecc_0123456789ab_n1\ndelete table inet ecc_0123456789ab_n1\n" {
		t.Errorf("heal: %q", got)
	}
	for _, bad := range []api.FaultSet{
		{Links: map[string]api.LinkFaults{"10.0.0.1:7946": {In: &api.DirFaults{Drop: true}}}}, // itself
		{Links: map[string]api.LinkFaults{"10.9.9.9:7946": {In: &api.DirFaults{Drop: true}}}}, // a stranger
		{Links: map[string]api.LinkFaults{"10.0.0.2:7946": {In: &api.DirFaults{DelayMS: 50}}}},
	} {
		byIP, err := bad.Validate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.nftScript(hosts[0], byIP); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestUntarStaysInside(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "../../etc/evil", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	dir := t.TempDir()
	err := untar(&b, func(name string) string { return filepath.Join(dir, name) })
	if err == nil || !strings.Contains(err.Error(), "leaves its directory") {
		t.Errorf("untar of ../../etc/evil: %v", err)
	}
}

func TestKnownAlgorithms(t *testing.T) {
	pub := func() ssh.PublicKey {
		k, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ssh.NewPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lines := knownhosts.Line([]string{"10.0.0.1"}, pub()) + "\n" +
		knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize("db:2222"))}, rsaPub) + "\n" +
		"garbage line\n" +
		knownhosts.Line([]string{"10.0.0.9"}, rsaPub) + "\n"
	for _, c := range []struct {
		addr string
		want []string
	}{
		{"10.0.0.1:22", []string{ssh.KeyAlgoED25519}},
		{"db:2222", []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSA}},
		{"db:22", nil},
		{"10.0.0.2:22", nil},
	} {
		if got := knownAlgorithms([]byte(lines), c.addr); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.addr, got, c.want)
		}
	}
}
