package node

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Request body limits.
const (
	maxSetBody    = 4 << 10  // POST /v1/counter, README "ec-counter node"
	maxFaultsBody = 64 << 10 // PUT /v1/admin/faults
)

// serveHTTP serves the API of README "ec-counter node" and "Admin API".
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/counter":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, struct {
				Value int64 `json:"value"`
			}{s.cfg.bug.served(s.store.get())}) // stale-read, thin-air
		case http.MethodPost:
			s.handleSet(w, r)
		default:
			methodNotAllowed(w, r, "GET, HEAD, POST")
		}
	case "/v1/health":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleHealth(w)
		default:
			methodNotAllowed(w, r, "GET, HEAD")
		}
	case "/v1/admin/faults":
		s.handleFaults(w, r)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	}
}

func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) {
	v, err := readSetBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v = s.cfg.bug.decoded(v) // float-json
	value, applied, err := s.store.set(r.Context(), v)
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
	writeJSON(w, http.StatusOK, struct {
		Value   int64 `json:"value"`
		Applied bool  `json:"applied"`
	}{value, applied})
}

// readSetBody reads {"value": N} where N is an integer literal in int64
// range; other fields are ignored.
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

func (s *Server) handleHealth(w http.ResponseWriter) {
	members := s.members.names()
	writeJSON(w, http.StatusOK, struct {
		Name    string   `json:"name"`
		Value   int64    `json:"value"`
		Members []string `json:"members"`
	}{s.cfg.Name, s.store.get(), members})
}

// handleFaults serves GET and PUT /v1/admin/faults.
func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	if s.cfg.token == nil {
		writeError(w, http.StatusNotFound, "admin API is off (no --admin-token-file)")
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ec-counter admin"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPut:
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
	default:
		methodNotAllowed(w, r, "GET, HEAD, PUT")
		return
	}
	writeJSON(w, http.StatusOK, s.transport.getFaults().spec)
}

// authorized checks the request's bearer token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.cfg.token) == 1
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; allowed: %s", r.Method, allow))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
