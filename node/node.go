// Package node is the ec-counter server: an int64 max register that clients
// get and set over HTTP, kept durable on disk, and gossiped between servers
// with memberlist so that every server converges to the largest value.
//
// A set is acknowledged only once its value (or a larger one) is durable,
// and reads only ever return durable values, so a server killed and
// restarted never shows less than it has shown before. Concurrent sets share
// one fsync (group commit).
//
// Gossip runs over a memberlist transport that can inject per-peer link
// faults (drop, delay with jitter, loss), driven through the admin API.
//
// For testing a harness, Config.Bug switches on one deliberate bug (see
// Bugs), such as acknowledging sets before they are durable; each bug
// changes the server at one seam, marked with its name.
package node

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Server is a running counter server. Create it with Start and stop it
// with Close.
type Server struct {
	cfg       *settings
	counter   *durableCounter
	transport *faultTransport
	ml        atomic.Pointer[memberlist.Memberlist]
	members   *memberSet
	http      *http.Server
	ln        net.Listener

	serveErr  chan error // the HTTP server's unexpected failure
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Run starts a server and serves until ctx is done, then shuts it down
// cleanly: in-flight requests finish, the node leaves the cluster, and any
// pending value is written.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(cfg)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.serveErr:
	}
	return errors.Join(serveErr, s.Close())
}

// Start starts a server: it opens the data directory, binds the gossip
// and HTTP addresses, and starts joining peers in the background (peers
// may start later). The server is ready when Start returns.
func Start(cfg Config) (*Server, error) {
	c, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if c.AdminTokenFile != "" {
		b, err := os.ReadFile(c.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		c.token = []byte(strings.TrimSpace(string(b)))
		if len(c.token) == 0 {
			return nil, fmt.Errorf("admin token file %s is empty", c.AdminTokenFile)
		}
	}
	logger := c.Logger.With("node", c.Name)
	c.Logger = logger
	if c.Bug != "" {
		logger.Warn("DELIBERATE BUG SWITCHED ON: this node is incorrect on purpose, for testing the checkers",
			"bug", c.Bug, "effect", describeBug(c.Bug))
	}

	s := &Server{cfg: c, members: newMemberSet(), serveErr: make(chan error, 1)}
	d := &delegate{
		log:  logger,
		ml:   &s.ml,
		push: !c.NoEagerPush && !c.bug.leavesGossipOut(), // no-gossip never syncs
		queue: &memberlist.TransmitLimitedQueue{
			NumNodes: func() int {
				if ml := s.ml.Load(); ml != nil {
					return ml.NumMembers()
				}
				return 1
			},
		},
	}
	s.counter, err = openCounter(c.DataDir, logger, c.bug, d.broadcast)
	if err != nil {
		return nil, err
	}
	d.counter = s.counter
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()

	mlLog := log.New(logWriter{logger}, "", 0)
	s.transport, err = newFaultTransport(c.gossip, mlLog)
	if err != nil {
		return nil, err
	}
	mc := memberlistConfig(c, d, s.members, s.transport)
	mc.Logger = mlLog
	d.queue.RetransmitMult = mc.RetransmitMult
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	s.ml.Store(ml)

	s.ln, err = net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	s.http = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.wg.Go(func() {
		if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("http: %w", err)
		}
	})

	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Go(func() { rejoinLoop(ctx, ml, s.members, c.peers, c.RejoinInterval, c.bug, logger) })

	logger.Info("node started", "http", s.ln.Addr().String(), "gossip", c.gossip.String(),
		"peers", c.Peers, "data_dir", c.DataDir, "value", s.counter.get(), "admin", c.token != nil, "bug", c.Bug)
	ok = true
	return s, nil
}

// HTTPAddr returns the address the HTTP API listens on.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// Close shuts the server down: it stops serving HTTP once in-flight
// requests are done, leaves the cluster, and writes any pending value.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

// leaveWait is how long a stopping node waits for its leave to be gossiped:
// two gossip rounds, within 20 ms to 200 ms.
func leaveWait(gossip time.Duration) time.Duration {
	return min(max(2*gossip, 20*time.Millisecond), 200*time.Millisecond)
}

func (s *Server) close() error {
	const grace = 5 * time.Second
	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = s.http.Close()
		}
		cancel()
	} else if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	if ml := s.ml.Load(); ml != nil {
		// One gossip round hands the leave to GossipNodes peers; waiting
		// for all its retransmissions (memberlist's Leave does) would cost
		// every stop about half a second, and a peer that misses it learns
		// of the leave by failure detection anyway.
		if err := ml.Leave(leaveWait(s.cfg.GossipInterval)); err != nil {
			s.cfg.Logger.Info("leave not yet passed on to every peer; they will see this node gone", "err", err)
		}
		if err := ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
	} else if s.transport != nil {
		_ = s.transport.Shutdown()
	}
	if err := s.counter.close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		s.cfg.Logger.Error("node stopped with errors", "err", err)
		return err
	}
	s.cfg.Logger.Info("node stopped", "value", s.counter.get())
	return nil
}
