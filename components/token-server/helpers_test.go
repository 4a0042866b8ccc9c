package main

import (
	"bytes"
	"context"
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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test fixtures shared by the tests: keys and certificates, PEM files, a fake Reviewer, a log
// buffer, JWT decoding.

var (
	rsaKeysOnce sync.Once
	rsaKeys     []*rsa.PrivateKey
)

// rsaKey returns one of a few 2048-bit keys generated once per test binary.
func rsaKey(t *testing.T, n int) *rsa.PrivateKey {
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

type certOptions struct {
	cn        string
	isCA      bool
	parent    *x509.Certificate
	parentKey crypto.Signer
	notBefore time.Time
	notAfter  time.Time
	hosts     []string
	usage     []x509.ExtKeyUsage
}

// newCert makes a certificate for public signed by opts.parentKey (self-signed when no parent).
func newCert(t *testing.T, key crypto.Signer, opts certOptions) *x509.Certificate {
	t.Helper()
	if opts.notBefore.IsZero() {
		opts.notBefore = time.Now().Add(-time.Hour)
	}
	if opts.notAfter.IsZero() {
		opts.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.cn},
		NotBefore:             opts.notBefore,
		NotAfter:              opts.notAfter,
		IsCA:                  opts.isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           opts.usage,
	}
	for _, host := range opts.hosts {
		if ip := net.ParseIP(host); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, host)
		}
	}
	parent, parentKey := template, key
	if opts.parent != nil {
		parent, parentKey = opts.parent, opts.parentKey
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

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, cert := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return out
}

func pkcs8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testSigner is a Signer over a self-signed 2048-bit certificate.
func testSigner(t *testing.T) (*Signer, *x509.Certificate) {
	t.Helper()
	key := rsaKey(t, 0)
	cert := newCert(t, key, certOptions{cn: "token-signer"})
	signer, err := NewSigner(key, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return signer, cert
}

// logBuffer collects log lines for assertions on what is (not) logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

const secret = "sha256~very-secret-token-value"

// fakeReviewer knows one token (secret) and answers SubjectAccessReviews from allowed
// (verb, resource, namespace) triples; it records the tokens and audiences it was asked about.
type fakeReviewer struct {
	allowed   map[[3]string]bool
	fail      bool
	mu        sync.Mutex
	tokens    []string
	audiences [][]string
	calls     []ResourceAttributes
}

func newFakeReviewer(allowed ...[3]string) *fakeReviewer {
	r := &fakeReviewer{allowed: map[[3]string]bool{}}
	for _, a := range allowed {
		r.allowed[a] = true
	}
	return r
}

func (r *fakeReviewer) Authenticate(_ context.Context, token string, audiences []string) (*ReviewedUser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, token)
	r.audiences = append(r.audiences, audiences)
	if r.fail {
		return nil, &ReviewError{"TokenReview: the API server https://127.0.0.1:1 cannot be reached"}
	}
	if token != secret {
		return nil, nil
	}
	return &ReviewedUser{Username: "system:serviceaccount:myproject:builder", UID: "uid-1",
		Groups: []string{"system:serviceaccounts"}}, nil
}

func (r *fakeReviewer) Allowed(_ context.Context, user *ReviewedUser, attrs ResourceAttributes) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !strings.HasPrefix(user.Username, "system:serviceaccount:") {
		panic("unexpected user " + user.Username)
	}
	r.calls = append(r.calls, attrs)
	return r.allowed[[3]string{attrs.Verb, attrs.Resource, attrs.Namespace}], nil
}

// authorizeFrom is a DecideAccess authorizer answering from a fakeReviewer.
func authorizeFrom(r *fakeReviewer) func(ResourceAttributes) (bool, error) {
	user := &ReviewedUser{Username: "system:serviceaccount:p:builder"}
	return func(attrs ResourceAttributes) (bool, error) { return r.Allowed(context.Background(), user, attrs) }
}

type jwtParts struct {
	header    map[string]any
	claims    Claims
	rawClaims map[string]any
	signature []byte
	input     string
}

func decodeJWT(t *testing.T, token string) jwtParts {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	var out jwtParts
	for i, target := range []any{&out.header, &out.claims, &out.rawClaims} {
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
	out.signature, out.input = sig, parts[0]+"."+parts[1]
	return out
}
