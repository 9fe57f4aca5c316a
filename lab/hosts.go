package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// HostsFile is a hosts file (docs/ssh-hosts.md "Nodes on SSH hosts"): the machines
// nodes run on, one node per entry, reached over SSH.
type HostsFile struct {
	// Hosts lists one node each, in cluster order (n1 on the first).
	Hosts []HostSpec `toml:"host" json:"hosts"`
	// UploadNodeCmd uploads the file named by the node command's first
	// word and runs that copy; else a command other than this binary's
	// own must already be installed on every host.
	UploadNodeCmd bool `toml:"upload_node_cmd" json:"upload_node_cmd,omitempty"`
}

// HostSpec is one [[host]] entry of a hosts file.
type HostSpec struct {
	Address    string `toml:"address" json:"address"`         // SSH address: a name or an IP
	Port       int    `toml:"port" json:"port"`               // SSH port, default 22
	User       string `toml:"user" json:"user"`               // SSH user; not root: sudo -n runs what needs root
	Key        string `toml:"key" json:"key"`                 // private key file
	KnownHosts string `toml:"known_hosts" json:"known_hosts"` // default ~/.ssh/known_hosts
	// InsecureIgnoreHostKey accepts any host key: for throwaway hosts only.
	InsecureIgnoreHostKey bool   `toml:"insecure_ignore_host_key" json:"insecure_ignore_host_key,omitempty"`
	NodeAddr              string `toml:"node_addr" json:"node_addr"`     // the IP the node listens on; default Address
	HTTPPort              int    `toml:"http_port" json:"http_port"`     // default 8080
	GossipPort            int    `toml:"gossip_port" json:"gossip_port"` // default 7946
	Dir                   string `toml:"dir" json:"dir"`                 // where runs keep their files on the host
	Nft                   string `toml:"nft" json:"nft"`                 // the nft command on the host, default "nft"
}

// Defaults of a host entry (docs/ssh-hosts.md "Nodes on SSH hosts").
const (
	DefaultSSHPort    = 22
	DefaultHTTPPort   = 8080
	DefaultGossipPort = 7946
	DefaultHostDir    = "/var/tmp/ec-counter"
	// MaxHostsFile bounds what is read of a hosts file.
	MaxHostsFile = 4 << 20
)

// safeWord matches what may go into a remote shell command unquoted.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9_./@:+-]+$`)

// hostName matches a DNS name (an IP address is checked apart).
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

// printable returns s with every control or non-printable character
// escaped as Go does (\x1b, \n, \u200b...), so that text from a file or
// a host never reaches the terminal raw.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) || r == ' ' {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// hasControl reports whether s holds a control or non-printable character.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0
}

// ParseHosts reads a hosts file. Relative key, known_hosts paths are taken
// from dir (the file's directory), and "~/" from the user's home; a
// relative remote dir is taken from the SSH user's home on the host.
// Unknown keys, missing addresses, two nodes on one address and port, and
// control characters in any string are errors; a remote dir is cleaned
// (path.Clean).
func ParseHosts(data []byte, dir string) (*HostsFile, error) {
	var hf HostsFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&hf)
	if err != nil {
		return nil, errors.New(printable(err.Error()))
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = printable(k.String())
		}
		return nil, fmt.Errorf("unknown keys %s (known: upload_node_cmd, and per [[host]]: address port user key known_hosts insecure_ignore_host_key node_addr http_port gossip_port dir nft)", strings.Join(keys, ", "))
	}
	if len(hf.Hosts) == 0 {
		return nil, errors.New("no [[host]] entries")
	}
	home, _ := os.UserHomeDir()
	local := func(p string) string {
		switch {
		case p == "":
			return ""
		case strings.HasPrefix(p, "~/") && home != "":
			return filepath.Join(home, p[2:])
		case filepath.IsAbs(p):
			return p
		}
		return filepath.Join(dir, p)
	}
	seen := map[string]int{}
	for i := range hf.Hosts {
		h := &hf.Hosts[i]
		where := fmt.Sprintf("host %d", i+1)
		if h.Address == "" {
			return nil, fmt.Errorf("%s: address is missing", where)
		}
		if _, err := netip.ParseAddr(h.Address); err != nil && !hostName.MatchString(h.Address) {
			return nil, fmt.Errorf("%s: address %q is neither a host name nor an IP address", where, h.Address)
		}
		where = fmt.Sprintf("host %d (%s)", i+1, printable(h.Address))
		for _, f := range []struct{ name, v string }{
			{"user", h.User}, {"key", h.Key}, {"known_hosts", h.KnownHosts}, {"node_addr", h.NodeAddr}, {"dir", h.Dir}, {"nft", h.Nft},
		} {
			if hasControl(f.v) {
				return nil, fmt.Errorf("%s: %s %q holds a control character", where, f.name, f.v)
			}
		}
		if h.Port == 0 {
			h.Port = DefaultSSHPort
		}
		if h.HTTPPort == 0 {
			h.HTTPPort = DefaultHTTPPort
		}
		if h.GossipPort == 0 {
			h.GossipPort = DefaultGossipPort
		}
		for _, p := range []struct {
			name string
			v    int
		}{{"port", h.Port}, {"http_port", h.HTTPPort}, {"gossip_port", h.GossipPort}} {
			if p.v < 1 || p.v > 65535 {
				return nil, fmt.Errorf("%s: %s must be 1-65535, got %d", where, p.name, p.v)
			}
		}
		if h.HTTPPort == h.GossipPort {
			return nil, fmt.Errorf("%s: http_port and gossip_port are both %d", where, h.HTTPPort)
		}
		if h.User == "" {
			return nil, fmt.Errorf("%s: user is missing", where)
		}
		if h.Key == "" {
			return nil, fmt.Errorf("%s: key (a private key file) is missing", where)
		}
		h.Key = local(h.Key)
		if h.KnownHosts == "" && !h.InsecureIgnoreHostKey {
			h.KnownHosts = "~/.ssh/known_hosts"
		}
		h.KnownHosts = local(h.KnownHosts)
		if h.NodeAddr == "" {
			h.NodeAddr = h.Address
		}
		a, err := netip.ParseAddr(h.NodeAddr)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s: node_addr must be an IPv4 address (network faults match it), got %q; set node_addr when address is a name", where, h.NodeAddr)
		}
		if h.Dir == "" {
			h.Dir = DefaultHostDir
		}
		h.Dir = path.Clean(h.Dir)
		if h.Nft == "" {
			h.Nft = "nft"
		}
		for _, w := range []struct{ name, v string }{{"user", h.User}, {"dir", h.Dir}, {"nft", h.Nft}} {
			if !safeWord.MatchString(w.v) {
				return nil, fmt.Errorf("%s: %s %q has characters a remote shell would read (allowed: letters, digits and _ . / @ : + -)", where, w.name, w.v)
			}
		}
		for _, port := range []int{h.HTTPPort, h.GossipPort} {
			k := fmt.Sprintf("%s:%d", h.NodeAddr, port)
			if j, dup := seen[k]; dup {
				return nil, fmt.Errorf("%s: %s is already taken by host %d", where, k, j)
			}
			seen[k] = i + 1
		}
	}
	return &hf, nil
}

// ReadHosts reads and parses the hosts file at path, within MaxHostsFile
// bytes whatever the file is (a device, a FIFO, a huge file). A key or
// known_hosts file that exists but is not a regular file, or is larger
// than MaxKeyFile or MaxKnownHostsFile, is an error too (a missing one is
// the preflight's to report).
func ReadHosts(file string) (*HostsFile, error) {
	data, err := boundedfile.ReadFile(file, MaxHostsFile)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	hf, err := ParseHosts(data, filepath.Dir(abs))
	if err == nil {
		err = hf.checkLocalFiles()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return hf, nil
}

// checkLocalFiles refuses a key or known_hosts file that is not a regular
// file or is too large to be one.
func (hf *HostsFile) checkLocalFiles() error {
	for i, h := range hf.Hosts {
		for _, f := range []struct {
			name, path string
			limit      int64
		}{{"key", h.Key, MaxKeyFile}, {"known_hosts", h.KnownHosts, MaxKnownHostsFile}} {
			if f.path == "" {
				continue
			}
			st, err := os.Stat(f.path)
			switch {
			case err != nil:
				continue
			case !st.Mode().IsRegular():
				return fmt.Errorf("host %d (%s): %s %s is not a regular file", i+1, h.Address, f.name, f.path)
			case st.Size() > f.limit:
				return fmt.Errorf("host %d (%s): %s %s is larger than %d MiB: refused", i+1, h.Address, f.name, f.path, f.limit>>20)
			}
		}
	}
	return nil
}

// SharedAddrs returns a node address that two entries share, if any:
// network faults match addresses, so they cannot cut one of the two alone.
func (hf *HostsFile) SharedAddrs() string {
	seen := map[string]bool{}
	for _, h := range hf.Hosts {
		if seen[h.NodeAddr] {
			return h.NodeAddr
		}
		seen[h.NodeAddr] = true
	}
	return ""
}
