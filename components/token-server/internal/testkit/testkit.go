// Package testkit holds the fixtures the token server's tests share: keys and certificates, PEM
// files, a log buffer, JWT decoding, a settable clock and a fake API server. It imports none of
// the server's packages, so that each package's own tests can use it; only tests import it.

package testkit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	rsaKeysOnce sync.Once
	rsaKeys     []*rsa.PrivateKey
)

// RSAKey returns one of a few 2048-bit keys generated once per test binary.
func RSAKey(t *testing.T, n int) *rsa.PrivateKey {
	t.Helper()
	rsaKeysOnce.Do(func() {
		for range 3 {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, key)
		}
	})
	return rsaKeys[n]
}

// CertOptions are what NewCert puts in a certificate; zero values have defaults.
type CertOptions struct {
	CN        string
	IsCA      bool
	Parent    *x509.Certificate
	ParentKey crypto.Signer
	NotBefore time.Time
	NotAfter  time.Time
	Hosts     []string
	Usage     []x509.ExtKeyUsage
}

// NewCert makes a certificate for public signed by opts.ParentKey (self-signed when no parent).
func NewCert(t *testing.T, key crypto.Signer, opts CertOptions) *x509.Certificate {
	t.Helper()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = time.Now().Add(24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CN},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		IsCA:                  opts.IsCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           opts.Usage,
	}
	for _, host := range opts.Hosts {
		if ip := net.ParseIP(host); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, host)
		}
	}
	parent, parentKey := template, key
	if opts.Parent != nil {
		parent, parentKey = opts.Parent, opts.ParentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// ECKey is a new P-256 key.
func ECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// CertPEM is certs in PEM.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, cert := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return out
}

// PKCS8PEM is key in PKCS#8 PEM.
func PKCS8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFile writes data into dir/name and returns its path.
func WriteFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// LogBuffer collects log lines for assertions on what is (not) logged.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// NewLogger logs every level into a LogBuffer.
func NewLogger() (*slog.Logger, *LogBuffer) {
	buf := &LogBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// JWT is a compact JWS taken apart, its claims decoded into C and as a map.
type JWT[C any] struct {
	Header    map[string]any
	Claims    C
	RawClaims map[string]any
	Signature []byte
	Input     string // what the signature signs
}

// DecodeJWT takes token apart; it checks no signature.
func DecodeJWT[C any](t *testing.T, token string) JWT[C] {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	var out JWT[C]
	for i, target := range []any{&out.Header, &out.Claims, &out.RawClaims} {
		data, err := base64.RawURLEncoding.DecodeString(parts[min(i, 1)])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, target); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	out.Signature, out.Input = sig, parts[0]+"."+parts[1]
	return out
}

// FakeAPI is an API server that answers TokenReviews (known tokens) and SubjectAccessReviews
// (allowed (user, verb, resource, namespace) tuples), and records what it was sent.
type FakeAPI struct {
	*httptest.Server
	t            *testing.T
	Users        map[string]any // a token's user: what the TokenReview answers (review.ReviewedUser)
	Allowed      map[[4]string]bool
	mu           sync.Mutex
	bearers      []string
	reviews      []string // "TokenReview" or "SubjectAccessReview <attrs>"
	SARs         []map[string]any
	TokenReviews []map[string]any // the TokenReviews' specs
	// AnswerAudiences: the status.audiences answered for a token (an authenticator that ignores
	// spec.audiences); Unauthenticated: tokens answered authenticated false though with a user
	AnswerAudiences map[string][]string
	Unauthenticated map[string]bool
	Status          int    // when set, answer every request with this status
	Message         string // ... and this Status message
}

// Secret is the token the fakes know.
const Secret = "sha256~very-secret-token-value"

// Basic is the Authorization header of Basic credentials.
func Basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// NoEnv is an empty environment (a getenv).
func NoEnv(string) string { return "" }

// Audience is the audience the registry credentials are bound to.
const Audience = "segmented.registry/token-server"

// NewFakeAPI starts a FakeAPI over TLS (configure, when not nil, sets up its server first).
func NewFakeAPI(t *testing.T, configure func(*httptest.Server)) *FakeAPI {
	api := &FakeAPI{t: t, Users: map[string]any{}, Allowed: map[[4]string]bool{},
		AnswerAudiences: map[string][]string{}, Unauthenticated: map[string]bool{}}
	api.Server = httptest.NewUnstartedServer(http.HandlerFunc(api.serve))
	if configure != nil {
		configure(api.Server)
	}
	api.StartTLS()
	t.Cleanup(api.Close)
	return api
}

func (a *FakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		a.t.Errorf("%s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	a.bearers = append(a.bearers, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	var body struct {
		APIVersion, Kind string
		Spec             map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		a.t.Errorf("body: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	if a.Status != 0 {
		w.WriteHeader(a.Status)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"code":%d}`, a.Message, a.Status)
		return
	}
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		if body.APIVersion != "authentication.k8s.io/v1" || body.Kind != "TokenReview" {
			a.t.Errorf("TokenReview body %+v", body)
		}
		a.reviews = append(a.reviews, "TokenReview")
		a.TokenReviews = append(a.TokenReviews, body.Spec)
		token := body.Spec["token"].(string)
		user := a.Users[token]
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "TokenReview",
			"status": map[string]any{"authenticated": user != nil && !a.Unauthenticated[token], "user": user,
				"audiences": a.AnswerAudiences[token]}})
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		if body.APIVersion != "authorization.k8s.io/v1" || body.Kind != "SubjectAccessReview" {
			a.t.Errorf("SubjectAccessReview body %+v", body)
		}
		attrs := body.Spec["resourceAttributes"].(map[string]any)
		a.SARs = append(a.SARs, body.Spec)
		a.reviews = append(a.reviews, fmt.Sprintf("SubjectAccessReview %v", attrs))
		key := [4]string{body.Spec["user"].(string), fmt.Sprint(attrs["verb"]), fmt.Sprint(attrs["resource"]), fmt.Sprint(attrs["namespace"])}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "SubjectAccessReview",
			"status": map[string]any{"allowed": a.Allowed[key]}})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// CAFile writes the CA of the fake API server's certificate into a file and returns its path.
func (a *FakeAPI) CAFile(t *testing.T) string {
	return WriteFile(t, t.TempDir(), "ca.crt", CertPEM(a.Certificate()))
}

// Seen is the reviews sent (in order) and the bearer tokens that authenticated them.
func (a *FakeAPI) Seen() (reviews, bearers []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reviews...), append([]string(nil), a.bearers...)
}

// NewClock is a Clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Clock is a settable clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
