// Package testregistry is a registry for the copier's tests only: go-containerregistry's
// in-memory registry (pkg/registry) with blobs kept per repository, cross-repository mounts,
// manifests refused while a blob they name is missing (as CNCF distribution does), pushes
// denied by repository, an optional bearer token realm, injected failures and a request log.
package testregistry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Registry is one test registry.
type Registry struct {
	inner http.Handler
	blobs *blobStore

	mu sync.Mutex
	// DenyPush: repositories whose POST, PATCH and PUT are answered 403 DENIED.
	DenyPush map[string]bool
	// Realm, Service and Token: when Token is set, every /v2/ request needs "Bearer <Token>",
	// else 401 with a Bearer challenge naming Realm and Service.
	Realm, Service, Token string
	// Fail: "METHOD path-prefix" -> how many more requests to answer 503.
	Fail map[string]int
	log  []string
}

// New makes a registry handler (serve it with httptest.NewServer or NewTLSServer).
func New() *Registry {
	store := &blobStore{m: map[string]map[string][]byte{}}
	quiet := registry.Logger(nopLogger())
	return &Registry{inner: registry.New(registry.WithBlobHandler(store), quiet), blobs: store, DenyPush: map[string]bool{}, Fail: map[string]int{}}
}

// Log returns the requests served so far ("METHOD path"), in order.
func (r *Registry) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

// repoOf is the repository of a /v2/<repo>/{manifests,blobs}/... path.
func repoOf(path string) (repo, kind string) {
	p := strings.TrimPrefix(path, "/v2/")
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i >= 0 {
			return p[:i], strings.Trim(k, "/")
		}
	}
	return "", ""
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.log = append(r.log, req.Method+" "+req.URL.Path)
	for key, n := range r.Fail {
		method, prefix, _ := strings.Cut(key, " ")
		if n > 0 && req.Method == method && strings.HasPrefix(req.URL.Path, prefix) {
			r.Fail[key] = n - 1
			r.mu.Unlock()
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "injected failure")
			return
		}
	}
	token, realm, service := r.Token, r.Realm, r.Service
	repo, kind := repoOf(req.URL.Path)
	denied := r.DenyPush[repo] && req.Method != http.MethodGet && req.Method != http.MethodHead
	r.mu.Unlock()
	if token != "" && req.Header.Get("Authorization") != "Bearer "+token {
		scope := ""
		if repo != "" {
			scope = fmt.Sprintf(`,scope="repository:%s:pull"`, repo)
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q%s`, realm, service, scope))
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if denied {
		writeError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
		return
	}
	q := req.URL.Query()
	if kind == "blobs" && req.Method == http.MethodPost && q.Get("mount") != "" && q.Get("from") != "" {
		if r.blobs.mount(repo, q.Get("mount"), q.Get("from")) {
			w.Header().Set("Docker-Content-Digest", q.Get("mount"))
			w.Header().Set("Location", "/v2/"+repo+"/blobs/"+q.Get("mount"))
			w.WriteHeader(http.StatusCreated)
			return
		}
	}
	if kind == "manifests" && req.Method == http.MethodPut {
		body, _ := io.ReadAll(req.Body)
		if missing := r.blobs.missing(repo, body, req.Header.Get("Content-Type")); missing != "" {
			writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry: "+missing)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	r.inner.ServeHTTP(w, req)
}

// SeedBlob stores data in repo; returns its digest.
func (r *Registry) SeedBlob(repo string, data []byte) string {
	d := Digest(data)
	r.blobs.put(repo, d, data)
	return d
}

// SeedManifest puts a manifest as repo:ref through the registry's own API.
func (r *Registry) SeedManifest(repo, ref string, data []byte, mediaType string) error {
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(data))
	req.Header.Set("Content-Type", mediaType)
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("seed %s:%s: HTTP %d %s", repo, ref, rec.Code, rec.Body.String())
	}
	return nil
}

// Resolve returns the digest repo:ref is served as ("" when none), without authentication.
func (r *Registry) Resolve(repo, ref string) string {
	req := httptest.NewRequest(http.MethodHead, "/v2/"+repo+"/manifests/"+ref, nil)
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return ""
	}
	return rec.Header().Get("Docker-Content-Digest")
}

// HasBlob tells whether repo holds the blob.
func (r *Registry) HasBlob(repo, digest string) bool {
	_, ok := r.blobs.get(repo, digest)
	return ok
}

// Digest is the sha256 digest of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobStore keeps blobs per repository (pkg/registry's own store shares them between all).
type blobStore struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

func (b *blobStore) put(repo, digest string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[repo] == nil {
		b.m[repo] = map[string][]byte{}
	}
	b.m[repo][digest] = data
}

func (b *blobStore) get(repo, digest string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[repo][digest]
	return data, ok
}

func (b *blobStore) mount(repo, digest, from string) bool {
	data, ok := b.get(from, digest)
	if ok {
		b.put(repo, digest, data)
	}
	return ok
}

// missing: the first config or layer of an image manifest that repo lacks.
func (b *blobStore) missing(repo string, body []byte, mediaType string) string {
	if strings.Contains(mediaType, "index") || strings.Contains(mediaType, "list") {
		return "" // pkg/registry checks an index's children itself
	}
	var m struct {
		Config *struct{ Digest string }  `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var digests []string
	if m.Config != nil {
		digests = append(digests, m.Config.Digest)
	}
	for _, l := range m.Layers {
		digests = append(digests, l.Digest)
	}
	for _, d := range digests {
		if _, ok := b.get(repo, d); !ok {
			return d
		}
	}
	return ""
}

func (b *blobStore) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	data, ok := b.get(repo, h.String())
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *blobStore) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	data, ok := b.get(repo, h.String())
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(data)), nil
}

func (b *blobStore) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc) // verified against the digest by pkg/registry's reader
	if err != nil {
		return err
	}
	// pkg/registry names the repository of a PUT /v2/<repo>/blobs/uploads/<id> "<repo>/blobs"
	b.put(strings.TrimSuffix(repo, "/blobs"), h.String(), data)
	return nil
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
