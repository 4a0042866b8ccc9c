// Package fakes holds the test doubles of the token server's own types: a Reviewer, a Signer and
// the services and the Issuer of the tests. Only tests import it (those of packages it imports from outside the
// package).
package fakes

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/issuer"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/ratelimit"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/testkit"
)

// The services of the tests: the integrated registry and an environment registry.
var (
	Integrated = access.Service{Name: "integrated", Issuer: "segmented-registry-lab", NamespaceFromRepository: true}
	EnvTest    = access.Service{Name: "env-test", Issuer: "segmented-registry-lab", Namespace: "test",
		Audiences: []string{testkit.Audience}}
)

// Signer is a Signer over a self-signed 2048-bit certificate.
func Signer(t *testing.T) (*jwt.Signer, *x509.Certificate) {
	t.Helper()
	key := testkit.RSAKey(t, 0)
	cert := testkit.NewCert(t, key, testkit.CertOptions{CN: "token-signer"})
	signer, err := jwt.NewSigner(key, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return signer, cert
}

// Issuer is an Issuer of the test services over reviewer, its clock stopped at 1,000,000 s, at
// most 64 scopes a request and the configuration's default bucket of reviews for each user; it
// logs into the LogBuffer.
func Issuer(t *testing.T, reviewer review.Reviewer) (*issuer.Issuer, *testkit.LogBuffer) {
	t.Helper()
	signer, _ := Signer(t)
	log, buf := testkit.NewLogger()
	clock := func() time.Time { return time.Unix(1_000_000, 0) }
	return &issuer.Issuer{
		Services: map[string]access.Service{"integrated": Integrated, "env-test": EnvTest},
		Signer:   signer, Reviewer: reviewer, TTL: 300 * time.Second,
		MaxScopes: 64, Limiter: ratelimit.New(50, 200, clock),
		Clock: clock, Log: log,
	}, buf
}

var _ review.Reviewer = (*Reviewer)(nil)

// Reviewer knows one token (testkit.Secret) and answers SubjectAccessReviews from Grants
// (verb, resource, namespace) triples; it records the tokens and audiences it was asked about.
type Reviewer struct {
	Grants    map[[3]string]bool
	Fail      bool // answer every TokenReview with review.ErrTokenReview
	mu        sync.Mutex
	Tokens    []string
	Audiences [][]string
	Calls     []access.ResourceAttributes
}

// NewReviewer is a Reviewer granting grants.
func NewReviewer(grants ...[3]string) *Reviewer {
	r := &Reviewer{Grants: map[[3]string]bool{}}
	for _, a := range grants {
		r.Grants[a] = true
	}
	return r
}

// Authenticate is a TokenReview.
func (r *Reviewer) Authenticate(_ context.Context, token string, audiences []string) (*review.ReviewedUser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Tokens = append(r.Tokens, token)
	r.Audiences = append(r.Audiences, audiences)
	if r.Fail {
		return nil, fmt.Errorf("%w: the API server https://127.0.0.1:1 cannot be reached", review.ErrTokenReview)
	}
	if token != testkit.Secret {
		return nil, nil
	}
	return &review.ReviewedUser{Username: "system:serviceaccount:myproject:builder", UID: "uid-1",
		Groups: []string{"system:serviceaccounts"}}, nil
}

// Allowed is a SubjectAccessReview.
func (r *Reviewer) Allowed(_ context.Context, user *review.ReviewedUser, attrs access.ResourceAttributes) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !strings.HasPrefix(user.Username, "system:serviceaccount:") {
		panic("unexpected user " + user.Username)
	}
	r.Calls = append(r.Calls, attrs)
	return r.Grants[[3]string{attrs.Verb, attrs.Resource, attrs.Namespace}], nil
}

// Authorize is a DecideAccess authorizer answering from r.
func (r *Reviewer) Authorize() func(access.ResourceAttributes) (bool, error) {
	user := &review.ReviewedUser{Username: "system:serviceaccount:p:builder"}
	return func(attrs access.ResourceAttributes) (bool, error) {
		return r.Allowed(context.Background(), user, attrs)
	}
}
