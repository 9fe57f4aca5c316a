package lab

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ec-counter/ec-counter/internal/boundedfile"
)

// remote is one SSH connection to a host of a hosts file.
type remote struct {
	spec   HostSpec
	client *ssh.Client
	sudo   string // "" as root, else "sudo -n "
}

// Bounds of what is read and waited for over SSH.
const (
	// dialTimeout bounds an SSH handshake.
	dialTimeout = 5 * time.Second
	// cmdTimeout bounds a remote command whose context has no deadline:
	// a host that hangs (a stuck disk, a stopped sshd) fails the command
	// instead of hanging the harness.
	cmdTimeout = 30 * time.Second
	// transferTimeout bounds an upload or a fetch of a node's files.
	transferTimeout = 5 * time.Minute
	// abortTimeout bounds the kill of a command that was given up on.
	abortTimeout = 3 * time.Second
	// MaxKeyFile and MaxKnownHostsFile bound what is read of a host's key
	// and known_hosts files.
	MaxKeyFile        = 1 << 20
	MaxKnownHostsFile = 16 << 20
)

// dial connects and authenticates to h, checking its host key against the
// known_hosts file unless h says to ignore it.
func dial(ctx context.Context, h HostSpec) (*remote, error) {
	where := fmt.Sprintf("%s@%s:%d", h.User, h.Address, h.Port)
	keyPEM, err := boundedfile.ReadFile(h.Key, MaxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: read key: %w", where, err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: key %s: %w (a key with a passphrase is not supported: use an agent-free key for test hosts)", where, h.Key, err)
	}
	hostKey := ssh.InsecureIgnoreHostKey()
	var known []byte
	if !h.InsecureIgnoreHostKey {
		known, err = readKnownHosts(h.KnownHosts)
		if err == nil {
			hostKey, err = knownhosts.New(h.KnownHosts)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: known_hosts: %w (or set insecure_ignore_host_key = true for throwaway hosts)", where, err)
		}
	}
	addr := net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
	cfg := &ssh.ClientConfig{
		User: h.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKey, Timeout: dialTimeout,
	}
	if !h.InsecureIgnoreHostKey {
		cfg.HostKeyAlgorithms = knownAlgorithms(known, addr)
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach it: %w", where, err)
	}
	// The handshake ends by its deadline, or at once when ctx does.
	conn.SetDeadline(time.Now().Add(dialTimeout))
	stop := context.AfterFunc(dctx, func() { conn.SetDeadline(time.Now()) })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: SSH: %w", where, ctx.Err())
		}
		return nil, fmt.Errorf("%s: SSH: %w", where, err)
	}
	conn.SetDeadline(time.Time{})
	r := &remote{spec: h, client: ssh.NewClient(c, chans, reqs)}
	if h.User != "root" {
		r.sudo = "sudo -n "
	}
	return r, nil
}

// readKnownHosts reads a known_hosts file within MaxKnownHostsFile. It
// must be a regular file: knownhosts.New reads it again, without bounds.
func readKnownHosts(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	return boundedfile.ReadFile(file, MaxKnownHostsFile)
}

// knownAlgorithms returns the host key algorithms of the keys a
// known_hosts file (its content, data) holds for addr (plain or hashed
// entries), so that the host is asked for a key that can be checked: the
// client's default order may pick a type the file lacks, which knownhosts
// reports as a mismatch. Nil (the default order) when it holds none.
func knownAlgorithms(data []byte, addr string) []string {
	want := knownhosts.Normalize(addr)
	var algos []string
	for line := range strings.Lines(string(data)) {
		_, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil || !slices.ContainsFunc(hosts, func(h string) bool { return h == want || hashedMatch(h, want) }) {
			continue
		}
		switch t := key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	slices.Sort(algos)
	return slices.Compact(algos)
}

// hashedMatch reports whether a hashed known_hosts name, |1|salt|hash,
// is host's.
func hashedMatch(entry, host string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	sum, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), sum)
}

func (r *remote) String() string { return r.spec.Address }

// close ends the connection, and with it every session still open.
func (r *remote) close() error { return r.client.Close() }

// run runs cmd through the host's shell as root (sudo -n when the SSH user
// is not root), with stdin (may be nil), and returns its standard output.
// A command that fails returns an error with the end of its standard
// error. It ends with ctx, or after cmdTimeout when ctx has no deadline,
// and then kills what it started on the host (its process group).
func (r *remote) run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var out bytes.Buffer
	err := r.stream(ctx, cmd, stdin, &out)
	return out.Bytes(), err
}

// stream is run with the standard output written to stdout as it comes.
func (r *remote) stream(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	return r.exec(ctx, cmd, stdin, stdout, true)
}

// runUntil is run without cmdTimeout: for a command that lasts as long as
// what it watches, ended by ctx or by the host.
func (r *remote) runUntil(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := r.exec(context.WithValue(ctx, noTimeout{}, true), cmd, nil, &out, true)
	return out.Bytes(), err
}

// noTimeout marks a context whose commands get no cmdTimeout.
type noTimeout struct{}

// exec runs cmd as run does; abort says whether a command given up on is
// killed on the host by a second command (not for that one itself).
func (r *remote) exec(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, abort bool) error {
	if _, ok := ctx.Deadline(); !ok && ctx.Value(noTimeout{}) == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmdTimeout)
		defer cancel()
	}
	var limit time.Duration
	if d, ok := ctx.Deadline(); ok {
		limit = time.Until(d)
	}
	s, err := r.newSession(ctx)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", r, firstWords(cmd), err)
	}
	defer s.Close()
	var stderr bytes.Buffer
	pw := &pidWriter{w: stdout}
	s.Stdin, s.Stdout, s.Stderr = stdin, pw, &stderr
	if err := s.Start(r.wrap(cmd)); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		r.abort(s, pw.pid.Load(), abort)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: %s: no answer within %s (killed): %w", r, firstWords(cmd), limit.Round(time.Second), ctx.Err())
		}
		return fmt.Errorf("%s: %s: %w", r, firstWords(cmd), ctx.Err())
	}
	if err != nil {
		msg := printable(strings.TrimSpace(stderr.String()))
		if len(msg) > 500 {
			msg = "..." + msg[len(msg)-500:]
		}
		if msg == "" {
			return fmt.Errorf("%s: %s: %w", r, firstWords(cmd), err)
		}
		return fmt.Errorf("%s: %s: %w: %s", r, firstWords(cmd), err, msg)
	}
	return nil
}

// newSession opens a session, or fails when ctx ends first. A host that
// lets a deadline pass without opening one does not answer at all: the
// connection is closed, as no later command could use it either.
func (r *remote) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := r.client.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fmt.Errorf("open an SSH session: %w", o.err)
		}
		return o.s, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.client.Close()
		}
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, fmt.Errorf("open an SSH session: %w", ctx.Err())
	}
}

// wrap is the command line sent for cmd: it prints the pid of the
// session's process (the leader of the process group that sshd makes for
// it, which everything cmd starts joins unless it leaves it, as a node
// does with setsid) on the first line, then runs cmd as root.
func (r *remote) wrap(cmd string) string {
	return "echo $$ && exec " + r.sudo + "sh -c " + q(cmd)
}

// abort gives up on a session: it signals its process, closes it, and,
// when kill is set and its pid is known, kills its process group on the
// host over a session of its own (a command blocked on the host would
// outlive its channel, and SIGKILL to a shell or sudo spares its
// children).
func (r *remote) abort(s *ssh.Session, pid int64, kill bool) {
	_ = s.Signal(ssh.SIGKILL)
	s.Close()
	if !kill || pid <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	_ = r.exec(ctx, fmt.Sprintf("kill -s KILL -- -%d 2>/dev/null; true", pid), nil, io.Discard, false)
}

// pidWriter passes a command's standard output on, less its first line:
// the pid wrap prints.
type pidWriter struct {
	w    io.Writer
	pid  atomic.Int64
	line []byte // the first line, until its end
	seen bool   // the first line has ended
}

func (p *pidWriter) Write(b []byte) (int, error) {
	n := len(b)
	if !p.seen {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.line) < 32 {
				p.line = append(p.line, b...)
			}
			return n, nil
		}
		p.line = append(p.line, b[:i]...)
		p.seen = true
		if pid, err := strconv.ParseInt(strings.TrimSpace(string(p.line)), 10, 64); err == nil {
			p.pid.Store(pid)
		}
		b = b[i+1:]
	}
	if len(b) == 0 {
		return n, nil
	}
	if _, err := p.w.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// session is a long-lived command on the host: lines in, lines out. Its
// standard input ends with the session (Close, or the connection's end),
// which a command such as cat or the delayer takes as its cue to end.
type session struct {
	s      *ssh.Session
	in     io.WriteCloser
	out    *bufio.Reader
	broken error // set by a failed exchange: a reader may still be waiting, and answers would be out of step
}

// start starts cmd (as root) in a session of its own; its standard error
// is discarded. ctx bounds the opening of the session only.
func (r *remote) start(ctx context.Context, cmd string) (*session, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmdTimeout)
		defer cancel()
	}
	s, err := r.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	in, err := s.StdinPipe()
	if err == nil {
		var out io.Reader
		if out, err = s.StdoutPipe(); err == nil {
			if err = s.Start("exec " + r.sudo + "sh -c " + q(cmd)); err == nil {
				return &session{s: s, in: in, out: bufio.NewReader(out)}, nil
			}
		}
	}
	s.Close()
	return nil, fmt.Errorf("%s: %s: %w", r, firstWords(cmd), err)
}

// exchange writes line (unless empty) and returns the next line the
// command prints, trimmed; it gives up after timeout.
// After a failed exchange, every later one fails too: the session is of
// no more use.
func (s *session) exchange(ctx context.Context, line []byte, timeout time.Duration) (got string, err error) {
	if s.broken != nil {
		return "", s.broken
	}
	defer func() {
		if err != nil {
			s.broken = fmt.Errorf("a previous exchange failed: %w", err)
			s.s.Close()
		}
	}()
	answer := make(chan error, 1)
	var reply string
	go func() {
		if len(line) > 0 {
			if _, err := s.in.Write(append(line, '\n')); err != nil {
				answer <- err
				return
			}
		}
		l, err := s.out.ReadString('\n')
		reply = strings.TrimSpace(l)
		answer <- err
	}()
	select {
	case err := <-answer:
		if err != nil {
			return "", fmt.Errorf("the command ended (%w)", err)
		}
		return reply, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer in %s", timeout)
	}
}

// close ends the command's standard input, waits up to timeout for it to
// exit, and closes the session.
func (s *session) close(timeout time.Duration) error {
	defer s.s.Close()
	s.in.Close()
	done := make(chan error, 1)
	go func() { done <- s.s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("it did not end %s after its input did", timeout)
	}
}

// firstWords shortens a command for an error message.
func firstWords(cmd string) string {
	if i := strings.IndexAny(cmd, "\n;|&"); i >= 0 {
		cmd = cmd[:i] + " ..."
	}
	if len(cmd) > 80 {
		cmd = cmd[:80] + "..."
	}
	return cmd
}

// q quotes s as one word for a POSIX shell: always in single quotes, so
// that nothing in it (#, $, backquotes, quotes, spaces, newlines, globs)
// means anything to the shell.
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// qJoin quotes each word (q) and joins them with spaces.
func qJoin(words ...string) string {
	qs := make([]string, len(words))
	for i, w := range words {
		qs[i] = q(w)
	}
	return strings.Join(qs, " ")
}

// upload copies the local file to path on the host, executable, through a
// temporary name: a reader never sees a partial file.
func (r *remote) upload(ctx context.Context, local, path string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp := q(path) + ".part.$$" // two uploads at once never share one
	cmd := fmt.Sprintf("mkdir -p %s && cat > %s && chmod 755 %s && mv -f %s %s",
		q(filepath.Dir(path)), tmp, tmp, tmp, q(path))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, transferTimeout)
		defer cancel()
	}
	if _, err := r.run(ctx, cmd, f); err != nil {
		return fmt.Errorf("upload %s: %w", local, err)
	}
	return nil
}

// fetch copies the host's directory dir into local with tar, mapping each
// entry's path through place (which returns "" to skip it). Only regular
// files and directories are copied; a path that would leave its
// destination is an error.
func (r *remote) fetch(ctx context.Context, dir string, place func(name string) string) error {
	// A failure here stops the remote tar too, which would otherwise block
	// on a full window forever.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, transferTimeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := r.stream(ctx, "tar -C "+q(dir)+" -cf - .", nil, pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	err := untar(pr, place)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // tar's padding
	}
	pr.CloseWithError(errors.New("stopped reading"))
	if err != nil {
		cancel()
	}
	if rerr := <-errc; rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// untar writes a tar stream's files where place says.
func untar(rd io.Reader, place func(name string) string) error {
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("tar entry %q leaves its directory", h.Name)
		}
		dst := place(name)
		if dst == "" {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
