// Package credentials reads the Authorization header of a token request.
package credentials

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"
)

// Why an Authorization header cannot be read; a client reads the text (UNAUTHORIZED), which never
// holds the secret.
var (
	ErrMalformedBasic = errors.New("malformed basic credentials")
	ErrEmptyPassword  = errors.New("empty password")
	ErrScheme         = errors.New("unsupported authorization scheme")
)

// Credentials are what a client presented: the basic-auth user name (kept for logs only; OpenShift
// ignores it too) and the secret, an API token of the registry cluster.
type Credentials struct {
	Account string
	Secret  string
}

// FromHeader reads an Authorization header: Basic (user name and token as password)
// or Bearer (the token). It returns nil and no error when there is no header (anonymous).
func FromHeader(value string) (*Credentials, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	scheme, rest, _ := strings.Cut(value, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "basic"):
		decoded, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || !utf8.Valid(decoded) {
			return nil, ErrMalformedBasic
		}
		account, password, found := strings.Cut(string(decoded), ":")
		if !found {
			return nil, ErrMalformedBasic
		}
		if password == "" {
			return nil, ErrEmptyPassword
		}
		return &Credentials{Account: account, Secret: password}, nil
	case strings.EqualFold(scheme, "bearer") && rest != "":
		return &Credentials{Secret: rest}, nil
	}
	return nil, ErrScheme
}

// Fingerprint is the hex sha256 of a secret: the TokenReview cache key, and the most of a token
// that may appear in a log (shortened there).
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
