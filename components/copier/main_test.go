package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmented-registry/copier/internal/testregistry"
)

// fixture: a TLS source and destination (test), one image ns/app:v1 in the source.
type fixture struct {
	t            *testing.T
	dir          string
	source, dest *testregistry.Registry
	srcHost      string
	destHost     string
	caFile       string
	tokenFile    string
	digest       string
	blobs        [][]byte
}

func newFixture(t *testing.T) *fixture {
	backoff = 10 * time.Millisecond
	f := &fixture{t: t, dir: t.TempDir(), source: testregistry.New(), dest: testregistry.New()}
	src := httptest.NewTLSServer(f.source)
	t.Cleanup(src.Close)
	dst := httptest.NewTLSServer(f.dest)
	t.Cleanup(dst.Close)
	f.srcHost, f.destHost = strings.TrimPrefix(src.URL, "https://"), strings.TrimPrefix(dst.URL, "https://")
	f.caFile = filepath.Join(f.dir, "ca.crt")
	f.write(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: src.Certificate().Raw}))
	f.tokenFile = filepath.Join(f.dir, "token")
	f.write(f.tokenFile, []byte("sa-token-0123456789\n"))
	f.blobs = [][]byte{[]byte("fixture config"), []byte("fixture layer")}
	var layers []map[string]any
	for _, b := range f.blobs[1:] {
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": testregistry.Digest(b), "size": len(b)})
	}
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": testregistry.Digest(f.blobs[0]), "size": len(f.blobs[0])},
		"layers": layers})
	for _, b := range f.blobs {
		f.source.SeedBlob("ns/app", b)
	}
	if err := f.source.SeedManifest("ns/app", "v1", manifest, "application/vnd.oci.image.manifest.v1+json"); err != nil {
		t.Fatal(err)
	}
	f.digest = testregistry.Digest(manifest)
	return f
}

func (f *fixture) write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// plan writes a plan of one item (ns/app:v1 into test) with extra top-level fields.
func (f *fixture) plan(extra map[string]any) string {
	p := map[string]any{
		"source":       map[string]any{"registry": f.srcHost, "ca_file": f.caFile},
		"destinations": map[string]any{"test": map[string]any{"registry": f.destHost, "ca_file": f.caFile}},
		"token_file":   f.tokenFile, "retries": 2, "timeout_seconds": 10,
		"items": []any{map[string]any{"id": 0, "environment": "test", "repository": "ns/app", "tag": "v1", "digest": f.digest}},
	}
	for k, v := range extra {
		p[k] = v
	}
	data, _ := json.Marshal(p)
	path := filepath.Join(f.dir, "plan.json")
	f.write(path, data)
	return path
}

func (f *fixture) run(path string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--plan", path}, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUnknownFieldIsExit2NamingIt(t *testing.T) {
	f := newFixture(t)
	code, stdout, stderr := f.run(f.plan(map[string]any{"paralel_images": 4}))
	if code != exitPlan || !strings.Contains(stderr, `unknown field "paralel_images"`) || stdout != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
	// in an item too
	path := f.plan(map[string]any{"items": []any{map[string]any{"id": 0, "environment": "test", "repository": "ns/app", "tag": "v1", "digest": f.digest, "requirez": nil}}})
	if code, _, stderr := f.run(path); code != exitPlan || !strings.Contains(stderr, `unknown field "requirez"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestBadValuesAreExit2NamingTheField(t *testing.T) {
	f := newFixture(t)
	path := f.plan(map[string]any{"retries": -1, "items": []any{
		map[string]any{"id": 0, "environment": "prod", "repository": "ns/app", "tag": "v1", "digest": "sha256:abc"}}})
	code, _, stderr := f.run(path)
	for _, want := range []string{"retries -1", "items[0].environment \"prod\": not in destinations", "items[0].digest \"sha256:abc\""} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if code != exitPlan {
		t.Fatalf("exit %d", code)
	}
	if code, _, stderr := f.run(filepath.Join(f.dir, "absent.json")); code != exitPlan || !strings.Contains(stderr, "absent.json") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// The manifest is put last: after every blob of the image is in the destination repository.
func TestManifestIsPutLast(t *testing.T) {
	f := newFixture(t)
	code, stdout, stderr := f.run(f.plan(nil))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	log := f.dest.Log()
	last := -1
	for i, line := range log {
		if strings.HasPrefix(line, "PUT /v2/ns/app/blobs/uploads/") || strings.HasPrefix(line, "PATCH ") {
			last = i
		}
	}
	put := -1
	for i, line := range log {
		if strings.HasPrefix(line, "PUT /v2/ns/app/manifests/") && put < 0 {
			put = i // the first manifest PUT
		}
	}
	if last < 0 || put < last {
		t.Fatalf("manifest PUT at %d, last blob write at %d: %v", put, last, log)
	}
	if got := f.dest.Resolve("ns/app", "v1"); got != f.digest {
		t.Fatalf("destination serves %q, want %q", got, f.digest)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	f := newFixture(t)
	f.dest.Fail["PUT /v2/ns/app/manifests/"] = 2
	if code, stdout, stderr := f.run(f.plan(map[string]any{"retries": 2})); code != 0 || !strings.Contains(stdout, `"result":"copied"`) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	f.dest.Fail["PUT /v2/ns/app/manifests/"] = 2
	code, stdout, _ := f.run(f.plan(map[string]any{"retries": 1}))
	if code != exitFailed || !strings.Contains(stdout, "HTTP 503 (UNAVAILABLE: injected failure) after 2 attempts") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
}

func TestRefusalsAreNotRetried(t *testing.T) {
	f := newFixture(t)
	f.dest.DenyPush["ns/app"] = true
	code, stdout, _ := f.run(f.plan(map[string]any{"retries": 3}))
	if code != exitFailed || !strings.Contains(stdout, "HTTP 403 (DENIED: requested access to the resource is denied)") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	writes := 0
	for _, line := range f.dest.Log() {
		if strings.HasPrefix(line, "POST ") || strings.HasPrefix(line, "PUT ") || strings.HasPrefix(line, "PATCH ") {
			writes++
		}
	}
	if writes != len(f.blobs) { // one refused upload start per blob, none again
		t.Fatalf("%d write requests: %v", writes, f.dest.Log())
	}
}

// A token realm the pod cannot reach is rewritten by realms; the password sent is the token
// file's content; neither it nor the bearer token appears in the output.
func TestTokenRealmMapping(t *testing.T) {
	f := newFixture(t)
	const bearer = "bearer-secret-4711"
	var asked atomic.Int32
	tokenServer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		user, password, ok := r.BasicAuth()
		if !ok || user != "segmented-registry" || password != "sa-token-0123456789" || r.URL.Query().Get("service") != "env-test" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token": bearer, "expires_in": 300})
	}))
	defer tokenServer.Close()
	const realm = "https://registry-token.apps.example.invalid/token"
	for _, reg := range []*testregistry.Registry{f.source, f.dest} {
		reg.Realm, reg.Service, reg.Token = realm, "env-test", bearer
	}
	realms := map[string]any{realm: tokenServer.URL + "/token"}
	code, stdout, stderr := f.run(f.plan(map[string]any{"realms": realms}))
	if code != 0 || !strings.Contains(stdout, `"result":"copied"`) || asked.Load() == 0 {
		t.Fatalf("exit %d, %d token requests\n%s\n%s", code, asked.Load(), stdout, stderr)
	}
	for _, secret := range []string{bearer, "sa-token-0123456789"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Fatalf("output holds a secret: %s %s", stdout, stderr)
		}
	}
	// a refused credential: the item fails with the token endpoint's answer, no secret shown
	f.write(f.tokenFile, []byte("sa-token-wrong\n"))
	code, stdout, stderr = f.run(f.plan(map[string]any{"realms": realms}))
	if code != exitFailed || !strings.Contains(stdout, "token request to token realm "+tokenServer.URL+"/token (for realm "+realm+")") ||
		!strings.Contains(stdout, "HTTP 401 (UNAUTHORIZED: authentication required)") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "sa-token-wrong") || strings.Contains(stdout+stderr, bearer) {
		t.Fatalf("output holds a secret: %s %s", stdout, stderr)
	}
	// without the mapping, a realm on another host than the registry's gets no credential (as the
	// Python engine's check_realm): the item fails saying so, and no token endpoint is asked
	f.write(f.tokenFile, []byte("sa-token-0123456789\n"))
	before := asked.Load()
	code, stdout, _ = f.run(f.plan(map[string]any{"retries": 0}))
	if code != exitFailed || !strings.Contains(stdout, "names the token realm "+realm+", neither on its own host nor in the plan's realms") ||
		asked.Load() != before {
		t.Fatalf("exit %d, %d token requests\n%s", code, asked.Load()-before, stdout)
	}
}

// TLS is verified: without the CA the copy fails and is not retried.
func TestUntrustedCertificateFails(t *testing.T) {
	f := newFixture(t)
	other := filepath.Join(f.dir, "other.crt")
	f.write(other, []byte("not a certificate"))
	path := f.plan(map[string]any{"source": map[string]any{"registry": f.srcHost, "ca_file": other}})
	if code, _, stderr := f.run(path); code != exitPlan || !strings.Contains(stderr, "no PEM certificate") {
		t.Fatalf("exit %d %s", code, stderr)
	}
	path = f.plan(map[string]any{"source": map[string]any{"registry": f.srcHost}})
	code, stdout, _ := f.run(path)
	if code != exitFailed || !strings.Contains(stdout, "certificate") || strings.Contains(stdout, "attempts") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
}

// A blob stream that stops moving is abandoned after timeout_seconds (and retried: here not).
func TestStalledBlobStreamTimesOut(t *testing.T) {
	f := newFixture(t)
	stall := make(chan struct{})
	defer close(stall)
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("a few bytes"))
			w.(http.Flusher).Flush()
			select {
			case <-stall:
			case <-r.Context().Done():
			}
			return
		}
		f.source.ServeHTTP(w, r)
	}))
	defer slow.Close()
	path := f.plan(map[string]any{"retries": 0, "timeout_seconds": 1,
		"source": map[string]any{"registry": strings.TrimPrefix(slow.URL, "https://"), "ca_file": f.caFile}})
	started := time.Now()
	code, stdout, _ := f.run(path)
	if code != exitFailed || !strings.Contains(stdout, "no byte moved for 1s (timeout_seconds)") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	if elapsed := time.Since(started); elapsed > 5*time.Second {
		t.Fatalf("took %s", elapsed)
	}
}

// A registry's own token_file is its password; the plan's token_file is the others'.
func TestTokenFilePerRegistry(t *testing.T) {
	f := newFixture(t)
	passwords := map[string]string{"integrated": "api-audience-token", "env-test": "token-server-audience-token"}
	tokenServer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service := r.URL.Query().Get("service")
		if _, password, ok := r.BasicAuth(); !ok || password != passwords[service] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token": "bearer-" + service})
	}))
	defer tokenServer.Close()
	f.source.Realm, f.source.Service, f.source.Token = tokenServer.URL, "integrated", "bearer-integrated"
	f.dest.Realm, f.dest.Service, f.dest.Token = tokenServer.URL, "env-test", "bearer-env-test"
	sourceToken := filepath.Join(f.dir, "source-token")
	f.write(sourceToken, []byte(passwords["integrated"]))
	f.write(f.tokenFile, []byte(passwords["env-test"]))
	path := f.plan(map[string]any{"source": map[string]any{"registry": f.srcHost, "ca_file": f.caFile, "token_file": sourceToken}})
	if code, stdout, stderr := f.run(path); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// the plan's token_file alone: the source refuses it
	code, stdout, _ := f.run(f.plan(map[string]any{"retries": 0}))
	if code != exitFailed || !strings.Contains(stdout, "HTTP 401 (UNAUTHORIZED: authentication required)") {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	// a registry's token_file that does not exist: exit 2 naming it
	path = f.plan(map[string]any{"source": map[string]any{"registry": f.srcHost, "ca_file": f.caFile, "token_file": filepath.Join(f.dir, "none")}})
	if code, _, stderr := f.run(path); code != exitPlan || !strings.Contains(stderr, "source.token_file: ") {
		t.Fatalf("exit %d %s", code, stderr)
	}
}
