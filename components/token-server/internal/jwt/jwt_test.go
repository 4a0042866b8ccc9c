package jwt_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/testkit"
	"github.com/segmented-registry/token-server/internal/testkit/fakes"
)

func TestBuildClaims(t *testing.T) {
	granted := []access.Access{{Type: "repository", Name: "p/a", Actions: []string{"pull"}}}
	got := jwt.BuildClaims("iss", "alice", "integrated", granted, time.Unix(1000, 0), 300*time.Second, "abc")
	want := jwt.Claims{Issuer: "iss", Subject: "alice", Audience: "integrated", Expiry: 1300, NotBefore: 1000,
		IssuedAt: 1000, ID: "abc", Access: granted}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	data, _ := json.Marshal(jwt.BuildClaims("i", "s", "a", nil, time.Unix(0, 0), time.Minute, "j"))
	if !strings.Contains(string(data), `"access":[]`) {
		t.Errorf("no access must be an empty list: %s", data)
	}
}

func verify(cert *x509.Certificate, input string, signature []byte) error {
	digest := sha256.Sum256([]byte(input))
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], signature)
}

func TestSignVerifiesWithTheCertificateAndCarriesX5c(t *testing.T) {
	signer, cert := fakes.Signer(t)
	claims := jwt.BuildClaims("iss", "alice", "svc", nil, time.Unix(1000, 0), 300*time.Second, "j")
	token, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := testkit.DecodeJWT[jwt.Claims](t, token)
	if parts.Header["alg"] != "RS256" || parts.Header["typ"] != "JWT" {
		t.Errorf("header %v", parts.Header)
	}
	x5c := parts.Header["x5c"].([]any)
	der, err := base64.StdEncoding.DecodeString(x5c[0].(string)) // standard base64, not base64url
	if err != nil || len(x5c) != 1 {
		t.Fatalf("x5c %v: %v", x5c, err)
	}
	fromHeader, err := x509.ParseCertificate(der)
	if err != nil || !fromHeader.Equal(cert) {
		t.Fatalf("x5c[0] is not the signing certificate: %v", err)
	}
	if err := verify(fromHeader, parts.Input, parts.Signature); err != nil {
		t.Errorf("the signature does not verify with the x5c certificate: %v", err)
	}
	if !reflect.DeepEqual(parts.Claims, claims) {
		t.Errorf("claims %#v", parts.Claims)
	}
	for _, key := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
		if _, ok := parts.RawClaims[key]; !ok {
			t.Errorf("claim %s missing", key)
		}
	}
	if _, isString := parts.RawClaims["aud"].(string); !isString {
		t.Error("aud must be a single string (distribution 2.8)")
	}
	if strings.Contains(token, "=") {
		t.Error("base64url without padding")
	}
}

func TestSignRejectsTampering(t *testing.T) {
	// The genuine token verifies; changed claims or a signature one bit off do not.
	signer, cert := fakes.Signer(t)
	token, err := signer.Sign(jwt.Claims{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	parts := testkit.DecodeJWT[jwt.Claims](t, token)
	if len(parts.Signature) != 256 {
		t.Errorf("signature of %d bytes for a 2048-bit key", len(parts.Signature))
	}
	if err := verify(cert, parts.Input, parts.Signature); err != nil {
		t.Fatal(err)
	}
	header := strings.Split(token, ".")[0]
	forged := header + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root"}`))
	if verify(cert, forged, parts.Signature) == nil {
		t.Error("forged claims verified")
	}
	flipped := append([]byte{parts.Signature[0] ^ 1}, parts.Signature[1:]...)
	if verify(cert, parts.Input, flipped) == nil {
		t.Error("a flipped signature verified")
	}
}

func TestATokenChainsToTheRegistrysRootCertBundle(t *testing.T) {
	// The registry verifies x5c[0] with x5c[1:] as intermediates against its rootcertbundle.
	caKey, signingKey := testkit.RSAKey(t, 1), testkit.RSAKey(t, 0)
	ca := testkit.NewCert(t, caKey, testkit.CertOptions{CN: "lab CA", IsCA: true})
	leaf := testkit.NewCert(t, signingKey, testkit.CertOptions{CN: "token signer", Parent: ca, ParentKey: caKey})
	dir := t.TempDir()
	signer, err := jwt.LoadSigner(testkit.WriteFile(t, dir, "s.crt", testkit.CertPEM(leaf, ca)),
		testkit.WriteFile(t, dir, "s.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signingKey)})),
		time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token, err := signer.Sign(jwt.Claims{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	parts := testkit.DecodeJWT[jwt.Claims](t, token)
	var chain []*x509.Certificate
	for _, entry := range parts.Header["x5c"].([]any) {
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
	if err := verify(chain[0], parts.Input, parts.Signature); err != nil {
		t.Error(err)
	}
}

func TestRFC3339(t *testing.T) {
	if got := jwt.RFC3339(time.Unix(0, 0)); got != "1970-01-01T00:00:00Z" {
		t.Errorf("got %s", got)
	}
}

func TestNewJTIIsRandomHex(t *testing.T) {
	a, errA := jwt.NewJTI()
	b, errB := jwt.NewJTI()
	if errA != nil || errB != nil || a == b || len(a) != 32 {
		t.Errorf("%q %q", a, b)
	}
}

func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	key := testkit.RSAKey(t, 0)
	cert := testkit.NewCert(t, key, testkit.CertOptions{CN: "token-signer"})
	certPath := testkit.WriteFile(t, dir, "s.crt", testkit.CertPEM(cert))
	keyPath := testkit.WriteFile(t, dir, "s.key", testkit.PKCS8PEM(t, key))
	signer, err := jwt.LoadSigner(certPath, keyPath, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Leaf().Equal(cert) {
		t.Error("the leaf is not the certificate")
	}

	expired := testkit.NewCert(t, key, testkit.CertOptions{CN: "old", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallCert := testkit.NewCert(t, small, testkit.CertOptions{CN: "small"})
	for name, c := range map[string]struct {
		cert, key []byte
		field     string // the configuration key the error names
		kind      error
	}{
		"other key":      {testkit.CertPEM(cert), testkit.PKCS8PEM(t, testkit.RSAKey(t, 2)), "signing_key: ", jwt.ErrKeyMismatch},
		"ec key":         {testkit.CertPEM(testkit.NewCert(t, testkit.ECKey(t), testkit.CertOptions{CN: "ec"})), testkit.PKCS8PEM(t, testkit.ECKey(t)), "signing_key: ", jwt.ErrNotRSA},
		"small key":      {testkit.CertPEM(smallCert), testkit.PKCS8PEM(t, small), "signing_key: ", jwt.ErrKeyTooSmall},
		"expired":        {testkit.CertPEM(expired), testkit.PKCS8PEM(t, key), "signing_cert: ", jwt.ErrNotValidNow},
		"no certificate": {[]byte("nothing\n"), testkit.PKCS8PEM(t, key), "signing_cert: ", jwt.ErrNoCertificate},
		"key in cert":    {append(testkit.CertPEM(cert), testkit.PKCS8PEM(t, key)...), testkit.PKCS8PEM(t, key), "signing_cert: ", jwt.ErrCertificatesOnly},
		"no key":         {testkit.CertPEM(cert), []byte("nothing"), "signing_key: ", jwt.ErrNoPEM},
		"encrypted key":  {testkit.CertPEM(cert), pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "signing_key: ", jwt.ErrKeyFormat},
	} {
		_, err := jwt.LoadSigner(testkit.WriteFile(t, dir, "c.crt", c.cert), testkit.WriteFile(t, dir, "c.key", c.key), time.Now())
		if !errors.Is(err, c.kind) || !strings.HasPrefix(err.Error(), c.field) {
			t.Errorf("%s: got %v, want %q naming %s", name, err, c.kind, c.field)
		}
	}
	if _, err := jwt.LoadSigner(filepath.Join(dir, "missing.crt"), keyPath, time.Now()); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "signing_cert: cannot read") {
		t.Errorf("missing file: %v", err)
	}
}
