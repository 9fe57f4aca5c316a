package node

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/ec-counter/ec-counter/api"
)

// Request body limits.
const (
	maxSetBody    = 4 << 10  // POST /v1/counter, docs/node.md "The node: command line, HTTP API and admin API"
	maxFaultsBody = 64 << 10 // PUT /v1/admin/faults
)

// handler returns the node's HTTP handler: the API of docs/node.md "The node: command line, HTTP API and admin API" and "Admin API". Each path also has a pattern without a method,
// which answers every other method 405 with its Allow header and a JSON
// error (ServeMux's own 405 is plain text), and "/" answers every other
// path 404 with a JSON error.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/counter", s.handleGet) // GET patterns serve HEAD too
	mux.HandleFunc("POST /v1/counter", s.handleSet)
	mux.Handle("/v1/counter", allowOnly("GET, HEAD, POST"))
	mux.HandleFunc("GET /v1/health", s.handleHealth)
	mux.Handle("/v1/health", allowOnly("GET, HEAD"))
	mux.Handle("GET /v1/admin/faults", s.admin(http.HandlerFunc(s.handleGetFaults)))
	mux.Handle("PUT /v1/admin/faults", s.admin(http.HandlerFunc(s.handlePutFaults)))
	mux.Handle("/v1/admin/faults", s.admin(allowOnly("GET, HEAD, PUT")))
	mux.HandleFunc("/", notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The API's paths are matched exactly as decoded: a path that is
		// not clean ("/v1//counter", "/v1/counter/.") names no endpoint,
		// where ServeMux would redirect it to its clean form, and an
		// escaped slash is a slash ("/v1%2Fcounter"), where ServeMux would
		// keep it inside one segment.
		if p := r.URL.Path; p != "/" && (!strings.HasPrefix(p, "/") || path.Clean(p) != p) {
			notFound(w, r)
			return
		}
		if r.URL.RawPath != "" {
			r2, u := *r, *r.URL
			u.RawPath = ""
			r2.URL = &u
			r = &r2
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.CounterResponse{Value: s.cfg.bug.served(s.counter.get())}) // stale-read, thin-air
}

func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) {
	v, err := readSetBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v = s.cfg.bug.decoded(v) // float-json
	value, applied, err := s.counter.set(r.Context(), v)
	switch {
	case err == nil:
	case errors.Is(err, errClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case r.Context().Err() != nil:
		return // the client is gone
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.SetResponse{Value: value, Applied: applied})
}

// readSetBody reads the api.SetRequest {"value": N}, where N must be an
// integer literal in int64 range, given once; other fields are ignored. It
// decodes by hand, not into the struct, so that it can refuse what
// encoding/json would accept: floats, duplicate keys, data after the object.
func readSetBody(w http.ResponseWriter, r *http.Request) (int64, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSetBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return 0, fmt.Errorf("request body exceeds %d bytes", maxSetBody)
		}
		return 0, fmt.Errorf("reading request body: %w", err)
	}
	if err := checkDuplicateKeys(body); err != nil {
		return 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var req any
	if err := dec.Decode(&req); err != nil {
		return 0, fmt.Errorf("request body is not JSON: %v", err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return 0, errors.New("request body has data after the JSON object")
	}
	obj, ok := req.(map[string]any)
	if !ok {
		return 0, errors.New(`request body must be a JSON object like {"value": 42}`)
	}
	raw, ok := obj["value"]
	if !ok {
		return 0, errors.New(`missing "value"`)
	}
	num, ok := raw.(json.Number)
	if !ok {
		return 0, fmt.Errorf(`"value" must be an integer, not %s`, jsonKind(raw))
	}
	v, err := strconv.ParseInt(num.String(), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf(`"value" %s is out of int64 range`, num)
	}
	if err != nil {
		return 0, fmt.Errorf(`"value" must be an integer, not %s`, num)
	}
	return v, nil
}

// jsonKind names the JSON type of a value decoded into an any.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.HealthResponse{Name: s.cfg.Name, Value: s.counter.get(), Members: s.members.names()})
}

// admin guards the admin API's handlers: 404 without a token file, 401
// without the right bearer token, whatever the method.
func (s *Server) admin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.token == nil {
			writeError(w, http.StatusNotFound, "admin API is off (no --admin-token-file)")
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ec-counter admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handleGetFaults serves GET /v1/admin/faults: the fault set in force.
func (s *Server) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.transport.getFaults().spec)
}

// handlePutFaults serves PUT /v1/admin/faults: it replaces the fault set,
// and answers with the one in force.
func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFaultsBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
		return
	}
	ft, err := parseFaultSet(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.transport.setFaults(ft)
	spec, _ := json.Marshal(ft.spec)
	s.cfg.Logger.Info("link faults changed", "faults", string(spec), "from", r.RemoteAddr)
	s.handleGetFaults(w, r)
}

// authorized checks the request's bearer token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.cfg.token) == 1
}

// allowOnly answers 405: the path exists, but only for the methods in
// allow.
func allowOnly(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; allowed: %s", r.Method, allow))
	})
}

// notFound answers 404: no such path.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
