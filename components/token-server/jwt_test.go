package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuildClaims(t *testing.T) {
	access := []Access{{"repository", "p/a", []string{"pull"}}}
	got := BuildClaims("iss", "alice", "integrated", access, time.Unix(1000, 0), 300*time.Second, "abc")
	want := Claims{Issuer: "iss", Subject: "alice", Audience: "integrated", Expiry: 1300, NotBefore: 1000,
		IssuedAt: 1000, ID: "abc", Access: access}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	data, _ := json.Marshal(BuildClaims("i", "s", "a", nil, time.Unix(0, 0), time.Minute, "j"))
	if !strings.Contains(string(data), `"access":[]`) {
		t.Errorf("no access must be an empty list: %s", data)
	}
}

func verify(cert *x509.Certificate, input string, signature []byte) error {
	digest := sha256.Sum256([]byte(input))
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], signature)
}

func TestSignVerifiesWithTheCertificateAndCarriesX5c(t *testing.T) {
	signer, cert := testSigner(t)
	claims := BuildClaims("iss", "alice", "svc", nil, time.Unix(1000, 0), 300*time.Second, "j")
	token, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	jwt := decodeJWT(t, token)
	if jwt.header["alg"] != "RS256" || jwt.header["typ"] != "JWT" {
		t.Errorf("header %v", jwt.header)
	}
	x5c := jwt.header["x5c"].([]any)
	der, err := base64.StdEncoding.DecodeString(x5c[0].(string)) // standard base64, not base64url
	if err != nil || len(x5c) != 1 {
		t.Fatalf("x5c %v: %v", x5c, err)
	}
	fromHeader, err := x509.ParseCertificate(der)
	if err != nil || !fromHeader.Equal(cert) {
		t.Fatalf("x5c[0] is not the signing certificate: %v", err)
	}
	if err := verify(fromHeader, jwt.input, jwt.signature); err != nil {
		t.Errorf("the signature does not verify with the x5c certificate: %v", err)
	}
	if !reflect.DeepEqual(jwt.claims, claims) {
		t.Errorf("claims %#v", jwt.claims)
	}
	for _, key := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
		if _, ok := jwt.rawClaims[key]; !ok {
			t.Errorf("claim %s missing", key)
		}
	}
	if _, isString := jwt.rawClaims["aud"].(string); !isString {
		t.Error("aud must be a single string (distribution 2.8)")
	}
	if strings.Contains(token, "=") {
		t.Error("base64url without padding")
	}
}

func TestSignRejectsTampering(t *testing.T) {
	// The genuine token verifies; changed claims or a signature one bit off do not.
	signer, cert := testSigner(t)
	token, err := signer.Sign(Claims{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	jwt := decodeJWT(t, token)
	if len(jwt.signature) != 256 {
		t.Errorf("signature of %d bytes for a 2048-bit key", len(jwt.signature))
	}
	if err := verify(cert, jwt.input, jwt.signature); err != nil {
		t.Fatal(err)
	}
	header := strings.Split(token, ".")[0]
	forged := header + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root"}`))
	if verify(cert, forged, jwt.signature) == nil {
		t.Error("forged claims verified")
	}
	flipped := append([]byte{jwt.signature[0] ^ 1}, jwt.signature[1:]...)
	if verify(cert, jwt.input, flipped) == nil {
		t.Error("a flipped signature verified")
	}
}

func TestATokenChainsToTheRegistrysRootCertBundle(t *testing.T) {
	// The registry verifies x5c[0] with x5c[1:] as intermediates against its rootcertbundle.
	caKey, signingKey := rsaKey(t, 1), rsaKey(t, 0)
	ca := newCert(t, caKey, certOptions{cn: "lab CA", isCA: true})
	leaf := newCert(t, signingKey, certOptions{cn: "token signer", parent: ca, parentKey: caKey})
	dir := t.TempDir()
	signer, err := LoadSigner(writeFile(t, dir, "s.crt", certPEM(leaf, ca)),
		writeFile(t, dir, "s.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signingKey)})),
		time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token, err := signer.Sign(Claims{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	jwt := decodeJWT(t, token)
	var chain []*x509.Certificate
	for _, entry := range jwt.header["x5c"].([]any) {
		der, _ := base64.StdEncoding.DecodeString(entry.(string))
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	if len(chain) != 2 || !chain[0].Equal(leaf) || !chain[1].Equal(ca) {
		t.Fatal("x5c must be the file's certificates, leaf first")
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	intermediates.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the leaf does not chain to the bundle: %v", err)
	}
	if err := verify(chain[0], jwt.input, jwt.signature); err != nil {
		t.Error(err)
	}
}

func TestRFC3339(t *testing.T) {
	if got := RFC3339(time.Unix(0, 0)); got != "1970-01-01T00:00:00Z" {
		t.Errorf("got %s", got)
	}
}

func TestNewJTIIsRandomHex(t *testing.T) {
	a, errA := NewJTI()
	b, errB := NewJTI()
	if errA != nil || errB != nil || a == b || len(a) != 32 {
		t.Errorf("%q %q", a, b)
	}
}

func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	key := rsaKey(t, 0)
	cert := newCert(t, key, certOptions{cn: "token-signer"})
	certPath := writeFile(t, dir, "s.crt", certPEM(cert))
	keyPath := writeFile(t, dir, "s.key", pkcs8PEM(t, key))
	signer, err := LoadSigner(certPath, keyPath, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{base64.StdEncoding.EncodeToString(cert.Raw)}; !reflect.DeepEqual(signer.x5c, want) {
		t.Error("x5c is not the certificate")
	}

	expired := newCert(t, key, certOptions{cn: "old", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallCert := newCert(t, small, certOptions{cn: "small"})
	for name, c := range map[string]struct {
		cert, key []byte
		want      string
	}{
		"other key":      {certPEM(cert), pkcs8PEM(t, rsaKey(t, 2)), "signing_key: "},
		"ec key":         {certPEM(newCert(t, ecKey(t), certOptions{cn: "ec"})), pkcs8PEM(t, ecKey(t)), "needs an RSA key"},
		"small key":      {certPEM(smallCert), pkcs8PEM(t, small), "at least 2048"},
		"expired":        {certPEM(expired), pkcs8PEM(t, key), "issue a new signing certificate"},
		"no certificate": {[]byte("nothing\n"), pkcs8PEM(t, key), "signing_cert: "},
		"key in cert":    {append(certPEM(cert), pkcs8PEM(t, key)...), pkcs8PEM(t, key), "certificates only"},
		"no key":         {certPEM(cert), []byte("nothing"), "signing_key: "},
		"encrypted key":  {certPEM(cert), pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "unencrypted RSA"},
	} {
		_, err := LoadSigner(writeFile(t, dir, "c.crt", c.cert), writeFile(t, dir, "c.key", c.key), time.Now())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing.crt"), keyPath, time.Now()); err == nil || !strings.HasPrefix(err.Error(), "signing_cert: cannot read") {
		t.Errorf("missing file: %v", err)
	}
}
