package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Error is a failed registry operation: where, what, the HTTP status and the registry's own
// message, or the error of a request that got no answer. It holds no URL query, header or token.
type Error struct {
	Registry   string
	Repository string
	Doing      string
	Status     int    // 0: no answer
	Detail     string // the registry's "CODE: message"
	Attempts   int
	Err        error
	kind       error
}

func (e *Error) Error() string {
	text := ""
	if e.Registry != "" {
		text = "registry " + e.Registry
		if e.Repository != "" {
			text += ", repository " + e.Repository
		}
		text += ": "
	}
	text += e.Doing + " failed"
	if e.Status != 0 {
		text += fmt.Sprintf(": HTTP %d", e.Status)
		if e.Detail != "" {
			text += " (" + e.Detail + ")"
		}
	} else if e.Err != nil {
		text += ": " + e.Err.Error()
	}
	if e.Attempts > 1 {
		text += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		text += "; the registry did not accept the token: the credentials were refused or lack the permission for this repository"
	case http.StatusForbidden:
		text += "; the credentials lack the permission"
	}
	return text
}

func (e *Error) Unwrap() error { return e.Err }

// Is: a token request's error is ErrToken.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// Transient: worth another attempt (5xx, 429, no answer); a 4xx or an untrusted certificate is not.
func (e *Error) Transient() bool {
	if e.Status != 0 {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	if e.Err == nil {
		return false
	}
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	if errors.As(e.Err, &unknownAuthority) || errors.As(e.Err, &hostname) || errors.As(e.Err, &invalid) || errors.As(e.Err, &verify) || errors.As(e.Err, &record) {
		return false
	}
	return !errors.Is(e.Err, ErrToken)
}

// transportCause drops the URL of a *url.Error (an upload location's query may hold state).
func transportCause(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("%s: %w", uerr.Op, uerr.Err)
	}
	return err
}
