package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmented-registry/copier/internal/testregistry"
)

func TestParseChallenges(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Bearer realm="https://token.example.com/token",service="env-test",scope="repository:ns/app:pull,push",error="insufficient_scope"`)
	h.Add("WWW-Authenticate", `Basic realm="segmented registry"`)
	got := parseChallenges(h)
	if len(got) != 2 {
		t.Fatalf("%d challenges: %+v", len(got), got)
	}
	want := map[string]string{"realm": "https://token.example.com/token", "service": "env-test", "scope": "repository:ns/app:pull,push", "error": "insufficient_scope"}
	if got[0].scheme != "bearer" || fmt.Sprint(got[0].params) != fmt.Sprint(want) {
		t.Fatalf("bearer: %+v", got[0])
	}
	if got[1].scheme != "basic" || got[1].params["realm"] != "segmented registry" {
		t.Fatalf("basic: %+v", got[1])
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		err  *Error
		want bool
	}{
		{&Error{Status: 503}, true},
		{&Error{Status: 500}, true},
		{&Error{Status: 429}, true},
		{&Error{Status: 404}, false},
		{&Error{Status: 403}, false},
		{&Error{Err: errors.New("read: connection reset by peer")}, true},
		{&Error{Err: fmt.Errorf("Get: %w", x509.UnknownAuthorityError{})}, false},
		{&Error{Err: errors.New("x"), kind: ErrToken}, true}, // kind alone does not decide: Err is a transport error
	}
	for _, c := range cases {
		if got := c.err.Transient(); got != c.want {
			t.Errorf("%v: transient %v, want %v", c.err, got, c.want)
		}
	}
}

// GetManifest refuses bytes whose digest is not the one asked for.
func TestGetManifestChecksTheDigest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		_, _ = w.Write([]byte(`{"schemaVersion":2}`))
	}))
	defer srv.Close()
	c, err := New(Options{Host: strings.TrimPrefix(srv.URL, "http://"), Insecure: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	asked := testregistry.Digest([]byte("something else"))
	_, _, _, err = c.GetManifest(context.Background(), "ns/app", asked)
	if err == nil || !strings.Contains(err.Error(), "the registry served bytes whose digest is "+testregistry.Digest([]byte(`{"schemaVersion":2}`))) {
		t.Fatalf("error %v", err)
	}
	data, mediaType, found, err := c.GetManifest(context.Background(), "ns/app", testregistry.Digest([]byte(`{"schemaVersion":2}`)))
	if err != nil || !found || string(data) != `{"schemaVersion":2}` || mediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("%q %q %v %v", data, mediaType, found, err)
	}
}

// Requests starting together ask the realm once for the same scopes; a destination client asks
// for pull,push.
func TestOneTokenRequestForManyRequests(t *testing.T) {
	var asked atomic.Int32
	var mu sync.Mutex
	var scopes []string
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		mu.Lock()
		scopes = append(scopes, r.URL.Query()["scope"]...)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`{"token":"t0k","expires_in":300}`))
	}))
	defer tokenSrv.Close()
	reg := testregistry.New()
	reg.Realm, reg.Service, reg.Token = "https://unreachable.invalid/token", "svc", "t0k"
	srv := httptest.NewServer(reg)
	defer srv.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Host: strings.TrimPrefix(srv.URL, "http://"), Insecure: true, Timeout: 5 * time.Second, TokenFile: tokenFile,
		Realms: map[string]string{"https://unreachable.invalid/token": tokenSrv.URL}, Push: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.HeadBlob(context.Background(), "ns/app", testregistry.Digest([]byte("x"))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1 (scopes %v)", n, scopes)
	}
	if fmt.Sprint(scopes) != "[repository:ns/app:pull,push]" {
		t.Fatalf("scopes %v", scopes)
	}
}
