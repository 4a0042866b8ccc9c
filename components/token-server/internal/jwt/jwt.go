// Package jwt signs the registry tokens (RS256, x5c chain).
package jwt

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
	"fmt"
	"os"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
)

// The registry token: an RS256 JWS whose x5c header carries the signing certificate chain, which
// distribution verifies against its auth.token.rootcertbundle.

const minRSABits = 2048

// Why a signing certificate and key cannot sign; each text is a part of the message that names
// the configuration field and the fix.
var (
	ErrNoCertificate    = errors.New("no PEM certificate")
	ErrCertificatesOnly = errors.New("it must hold certificates only")
	ErrNotValidNow      = errors.New("not now")
	ErrNoPEM            = errors.New("no PEM block")
	ErrKeyFormat        = errors.New("RS256 signing needs an unencrypted RSA private key")
	ErrNotRSA           = errors.New("RS256 signing needs an RSA key")
	ErrKeyTooSmall      = errors.New("RS256 signing here needs at least")
	ErrKeyMismatch      = errors.New("the first certificate does not match the key")
)

// Claims is the claim set distribution expects (aud is a single string, as distribution 2.8
// reads it).
type Claims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  string          `json:"aud"`
	Expiry    int64           `json:"exp"`
	NotBefore int64           `json:"nbf"`
	IssuedAt  int64           `json:"iat"`
	ID        string          `json:"jti"`
	Access    []access.Access `json:"access"`
}

// BuildClaims returns the claims of a token issued at now, valid for ttl.
func BuildClaims(issuer, subject, audience string, granted []access.Access, now time.Time, ttl time.Duration, jti string) Claims {
	if granted == nil {
		granted = []access.Access{}
	}
	issued := now.Unix()
	return Claims{Issuer: issuer, Subject: subject, Audience: audience, Expiry: issued + int64(ttl/time.Second),
		NotBefore: issued, IssuedAt: issued, ID: jti, Access: granted}
}

// Signer signs tokens with an RSA key; x5c is the standard base64 DER of each certificate of the
// signing certificate file, leaf first.
type Signer struct {
	key  *rsa.PrivateKey
	x5c  []string
	leaf *x509.Certificate
}

// NewSigner checks that key is an RSA key of at least 2048 bits matching chain[0].
func NewSigner(key *rsa.PrivateKey, chain []*x509.Certificate) (*Signer, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	if key.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("the RSA key has %d bits; %w %d", key.N.BitLen(), ErrKeyTooSmall, minRSABits)
	}
	public, ok := chain[0].PublicKey.(*rsa.PublicKey)
	if !ok || !public.Equal(&key.PublicKey) {
		return nil, ErrKeyMismatch
	}
	x5c := make([]string, len(chain))
	for i, cert := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(cert.Raw)
	}
	return &Signer{key: key, x5c: x5c, leaf: chain[0]}, nil
}

// Sign returns the compact JWS of claims: base64url(header).base64url(claims).base64url(sig).
func (s *Signer) Sign(claims Claims) (string, error) {
	header, err := json.Marshal(struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		X5c []string `json:"x5c"`
	}{"RS256", "JWT", s.x5c})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64url(header) + "." + b64url(payload)
	digest := sha256.Sum256([]byte(input))
	signature, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64url(signature), nil
}

// Leaf is the signing certificate (the first of the chain).
func (s *Signer) Leaf() *x509.Certificate { return s.leaf }

func b64url(data []byte) string { return base64.RawURLEncoding.EncodeToString(data) }

// RFC3339 is how issued_at is written: UTC, whole seconds.
func RFC3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// NewJTI returns a random token id (32 hex characters).
func NewJTI() (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", buf), nil
}

// LoadSigner reads the signing certificate file (PEM, leaf first, further certificates of the
// chain may follow) and the RSA key (PEM, PKCS#1 or PKCS#8, unencrypted) that matches its first
// certificate. Errors name the configuration field and the fix. now decides whether the leaf is
// valid.
func LoadSigner(certPath, keyPath string, now time.Time) (*Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("signing_cert: cannot read %s: %w", certPath, err)
	}
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("signing_cert: %s holds a PEM %q block; %w (the key goes in signing_key)", certPath, block.Type, ErrCertificatesOnly)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing_cert: certificate %d of %s cannot be parsed: %w", len(chain)+1, certPath, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("signing_cert: %s holds %w; give the signing certificate in PEM, leaf first", certPath, ErrNoCertificate)
	}
	leaf := chain[0]
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("signing_cert: the first certificate of %s is valid from %s to %s, %w (%s): registries would refuse every token; issue a new signing certificate",
			certPath, RFC3339(leaf.NotBefore), RFC3339(leaf.NotAfter), ErrNotValidNow, RFC3339(now))
	}
	key, err := loadRSAKey(keyPath)
	if err != nil {
		return nil, err
	}
	signer, err := NewSigner(key, chain)
	if err != nil {
		return nil, fmt.Errorf("signing_key: %s with signing_cert %s: %w; give the key of the first certificate", keyPath, certPath, err)
	}
	return signer, nil
}

func loadRSAKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing_key: cannot read %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing_key: %s holds %w; give the unencrypted RSA private key in PEM", path, ErrNoPEM)
	}
	var parsed any
	switch block.Type {
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing_key: %s holds a PEM %q block; %w (\"RSA PRIVATE KEY\" or \"PRIVATE KEY\")", path, block.Type, ErrKeyFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("signing_key: %s cannot be parsed: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing_key: %s holds a %T key; %w", path, parsed, ErrNotRSA)
	}
	return key, nil
}
