package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/testkit"
)

// servingPair writes a certificate for cn (signed by a fresh CA) and its key into dir.
func servingPair(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	caKey := testkit.ECKey(t)
	ca := testkit.NewCert(t, caKey, testkit.CertOptions{CN: "service CA", IsCA: true})
	key := testkit.ECKey(t)
	cert := testkit.NewCert(t, key, testkit.CertOptions{CN: cn, Parent: ca, ParentKey: caKey, Hosts: []string{cn}})
	testkit.WriteFile(t, dir, "tls.crt", testkit.CertPEM(cert))
	testkit.WriteFile(t, dir, "tls.key", testkit.PKCS8PEM(t, key))
	return cert
}

func served(t *testing.T, r *KeyPairReloader) string {
	t.Helper()
	cert, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.Subject.CommonName
}

// bump moves both files' modification time, as a rewrite by the kubelet does.
func bump(t *testing.T, dir string, by time.Duration) {
	t.Helper()
	when := time.Now().Add(by)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Chtimes(filepath.Join(dir, name), when, when); err != nil {
			t.Fatal(err)
		}
	}
}

// firstPair writes a serving pair for first.ns.svc into a new folder and loads it.
func firstPair(t *testing.T) (string, *KeyPairReloader, *testkit.LogBuffer) {
	t.Helper()
	dir := t.TempDir()
	servingPair(t, dir, "first.ns.svc")
	log, logs := testkit.NewLogger()
	r, err := NewKeyPairReloader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), log)
	if err != nil {
		t.Fatal(err)
	}
	return dir, r, logs
}

func TestKeyPairReloaderServesTheRenewedPairWithoutARestart(t *testing.T) {
	dir, r, logs := firstPair(t)
	if got := served(t, r); got != "first.ns.svc" {
		t.Fatalf("served %q", got)
	}
	servingPair(t, dir, "second.ns.svc")
	bump(t, dir, time.Second)
	if got := served(t, r); got != "second.ns.svc" {
		t.Fatalf("after the files changed: served %q, want the new pair", got)
	}
	if !strings.Contains(logs.String(), "tls key pair reloaded") {
		t.Errorf("no reload logged: %s", logs)
	}
}

func TestKeyPairReloaderKeepsThePreviousPairWhileTheFilesAreBroken(t *testing.T) {
	dir, r, logs := firstPair(t)
	testkit.WriteFile(t, dir, "tls.key", testkit.PKCS8PEM(t, testkit.ECKey(t))) // a key of another pair: half written
	bump(t, dir, time.Second)
	if got := served(t, r); got != "first.ns.svc" {
		t.Fatalf("served %q, want the previous pair", got)
	}
	if !strings.Contains(logs.String(), "not reloaded") {
		t.Errorf("the refused pair is not logged: %s", logs)
	}
	if err := os.Remove(filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if got := served(t, r); got != "first.ns.svc" {
		t.Fatalf("served %q with the file gone, want the previous pair", got)
	}
}

func TestKeyPairReloaderRefusesAMissingPairAtStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewKeyPairReloader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), nil); !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "tls_cert and tls_key") {
		t.Fatalf("err = %v, want one naming tls_cert and tls_key", err)
	}
}
