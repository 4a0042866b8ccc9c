package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/segmented-registry/token-server/internal/credentials"
	"github.com/segmented-registry/token-server/internal/issuer"
)

// HTTP: GET (and HEAD) /token with the query distribution's clients send, POST /token with the
// OAuth2 password grant form docker sends, GET /healthz. Every request is logged by method, path,
// status and duration: never its query, form or Authorization header.

const (
	tokenPath    = "/token"
	healthPath   = "/healthz"
	maxFormBytes = 64 << 10
)

// NewHandler serves the token server's endpoints with issuer.
func NewHandler(tokens *issuer.Issuer, log *slog.Logger) http.Handler {
	return &handler{issuer: tokens, log: log}
}

type handler struct {
	issuer *issuer.Issuer
	log    *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	h.route(recorder, r)
	level := slog.LevelInfo
	if r.URL.Path == healthPath {
		level = slog.LevelDebug
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", recorder.status,
		"duration_ms", time.Since(started).Milliseconds(), "client", clientAddress(r)}
	if forwarded := r.Header.Get("X-Forwarded-For"); forwarded != "" {
		attrs = append(attrs, "forwarded_for", forwarded)
	}
	h.log.Log(r.Context(), level, "request", attrs...)
}

func (h *handler) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case healthPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeResponse(w, methodNotAllowed("GET, HEAD"))
			return
		}
		writeResponse(w, issuer.Response{Status: http.StatusOK, Body: map[string]string{"status": "ok"}})
	case tokenPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.tokenFromQuery(w, r)
		case http.MethodPost:
			h.tokenFromForm(w, r)
		default:
			writeResponse(w, methodNotAllowed("GET, HEAD, POST"))
		}
	default:
		writeResponse(w, issuer.ErrorResponse(http.StatusNotFound, "NOT_FOUND", "not found", nil))
	}
}

// tokenFromQuery: ?service=<svc>&scope=<scope>[&scope=...]&account=<user> with Basic (any user
// name, a token of the registry cluster as password) or Bearer credentials.
func (h *handler) tokenFromQuery(w http.ResponseWriter, r *http.Request) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeResponse(w, issuer.ErrorResponse(http.StatusBadRequest, "INVALID_REQUEST", "malformed query", nil))
		return
	}
	creds, credErr := credentials.FromHeader(r.Header.Get("Authorization"))
	writeResponse(w, h.issuer.Handle(r.Context(), issuer.TokenRequest{
		Service: params.Get("service"), Account: params.Get("account"), Scopes: params["scope"],
		Credentials: creds, CredentialError: credErr, Client: clientAddress(r),
	}))
}

// tokenFromForm: the OAuth2 password grant, form fields grant_type=password, username, password,
// service and scope (space separated).
func (h *handler) tokenFromForm(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		w.Header().Set("Connection", "close") // the unread rest must not be read as a request
		writeResponse(w, issuer.ErrorResponse(http.StatusBadRequest, "INVALID_REQUEST", "unreadable or too large form", nil))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeResponse(w, issuer.ErrorResponse(http.StatusBadRequest, "INVALID_REQUEST", "malformed form", nil))
		return
	}
	if form.Get("grant_type") != "password" {
		writeResponse(w, issuer.ErrorResponse(http.StatusBadRequest, "UNSUPPORTED", "only grant_type=password is supported", nil))
		return
	}
	var creds *credentials.Credentials
	if password := form.Get("password"); password != "" {
		creds = &credentials.Credentials{Account: form.Get("username"), Secret: password}
	}
	writeResponse(w, h.issuer.Handle(r.Context(), issuer.TokenRequest{
		Service: form.Get("service"), Account: form.Get("username"), Scopes: form["scope"],
		Credentials: creds, Client: clientAddress(r),
	}))
}

func methodNotAllowed(allow string) issuer.Response {
	return issuer.ErrorResponse(http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed",
		map[string]string{"Allow": allow})
}

func writeResponse(w http.ResponseWriter, resp issuer.Response) {
	payload, err := json.Marshal(resp.Body)
	if err != nil { // the bodies are plain structs: this is a programming error
		resp.Status, payload = http.StatusInternalServerError, []byte(`{"errors":[{"code":"UNKNOWN","message":"internal error"}]}`)
	}
	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Content-Length", strconv.Itoa(len(payload)))
	header.Set("Cache-Control", "no-store")
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(payload) // HEAD: net/http drops the body
}

func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}
