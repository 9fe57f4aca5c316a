// Command minimalnode is a second, independent implementation of the node
// contract of docs/node.md "The node: command line, HTTP API and admin API", used to test --node-cmd. Instead of
// memberlist it synchronises by reading its peers' HTTP API ({peer_http})
// every 50 ms and keeping the max.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type node struct {
	name  string
	path  string
	peers []string
	mu    sync.Mutex
	value int64
	seen  map[string]bool
}

// raise stores v durably if it is larger, and reports whether it was.
func (n *node) raise(v int64) (int64, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v <= n.value {
		return n.value, false, nil
	}
	tmp := n.path + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.WriteString(strconv.FormatInt(v, 10))
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, n.path)
	}
	if err != nil {
		return n.value, false, err
	}
	n.value = v
	return v, true, nil
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func main() {
	id := flag.String("id", "", "node name")
	listen := flag.String("listen", "", "HTTP address")
	peers := flag.String("peer-http", "", "peers' HTTP addresses")
	dir := flag.String("dir", "", "data directory")
	flag.Parse()
	n := &node{name: *id, path: filepath.Join(*dir, "value"), seen: map[string]bool{}}
	if *peers != "" {
		n.peers = strings.Split(*peers, ",")
	}
	if b, err := os.ReadFile(n.path); err == nil {
		n.value, _ = strconv.ParseInt(string(b), 10, 64)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/counter", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		reply(w, 200, map[string]int64{"value": n.value})
	})
	mux.HandleFunc("POST /v1/counter", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Value *json.Number }
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil || body.Value == nil {
			reply(w, 400, map[string]string{"error": "body must be {\"value\": <int64>}"})
			return
		}
		v, err := strconv.ParseInt(body.Value.String(), 10, 64)
		if err != nil {
			reply(w, 400, map[string]string{"error": "value must be an int64"})
			return
		}
		cur, applied, err := n.raise(v)
		if err != nil {
			reply(w, 500, map[string]string{"error": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"value": cur, "applied": applied})
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		members := []string{n.name}
		for p, ok := range n.seen {
			if ok {
				members = append(members, p)
			}
		}
		reply(w, 200, map[string]any{"name": n.name, "value": n.value, "members": members})
	})
	srv := &http.Server{Addr: *listen, Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		c := &http.Client{Timeout: 200 * time.Millisecond}
		for ctx.Err() == nil {
			for _, p := range n.peers {
				var body struct{ Value int64 }
				resp, err := c.Get("http://" + p + "/v1/counter")
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
				}
				n.mu.Lock()
				n.seen[p] = err == nil
				n.mu.Unlock()
				if err == nil {
					if _, _, err := n.raise(body.Value); err != nil {
						log.Printf("sync from %s: %v", p, err)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	fmt.Fprintf(os.Stderr, "minimalnode %s listening on %s\n", n.name, *listen)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
