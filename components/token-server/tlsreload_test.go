package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// servingPair writes a certificate for cn (signed by a fresh CA) and its key into dir.
func servingPair(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	caKey := ecKey(t)
	ca := newCert(t, caKey, certOptions{cn: "service CA", isCA: true})
	key := ecKey(t)
	cert := newCert(t, key, certOptions{cn: cn, parent: ca, parentKey: caKey, hosts: []string{cn}})
	writeFile(t, dir, "tls.crt", certPEM(cert))
	writeFile(t, dir, "tls.key", pkcs8PEM(t, key))
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
func firstPair(t *testing.T) (string, *KeyPairReloader, *logBuffer) {
	t.Helper()
	dir := t.TempDir()
	servingPair(t, dir, "first.ns.svc")
	log, logs := newLogger()
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
	writeFile(t, dir, "tls.key", pkcs8PEM(t, ecKey(t))) // a key of another pair: half written
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
	if _, err := NewKeyPairReloader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), nil); err == nil ||
		!strings.Contains(err.Error(), "tls_cert and tls_key") {
		t.Fatalf("err = %v, want one naming tls_cert and tls_key", err)
	}
}
