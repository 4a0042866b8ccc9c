// Package issuer turns one token request into an answer.
package issuer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/credentials"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/ratelimit"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/scope"
)

// Turning one token request into an answer: the service, the scopes, the credentials, the reviews,
// the signed token. No I/O but through the Reviewer; secrets are never logged (a token appears
// in a log line as a short sha256 fingerprint at most).

const (
	realmName         = "segmented-registry"
	fingerprintLength = 12
)

// Response is the status, JSON body and extra headers of an answer.
type Response struct {
	Status  int
	Body    any
	Headers map[string]string
}

// ErrorBody is the body of an error answer, as the distribution API writes errors.
type ErrorBody struct {
	Errors []ErrorEntry `json:"errors"`
}

// ErrorEntry is one error of an ErrorBody.
type ErrorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// TokenBody is the body of a successful answer.
type TokenBody struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// ErrorResponse is an error answer of one error.
func ErrorResponse(status int, code, message string, headers map[string]string) Response {
	return Response{Status: status, Body: ErrorBody{[]ErrorEntry{{code, message}}}, Headers: headers}
}

// Issuer answers token requests: at most MaxScopes scopes a request, and for each user the
// reviews Limiter lets through (one for the TokenReview, one per SubjectAccessReview).
type Issuer struct {
	Services  map[string]access.Service
	Signer    *jwt.Signer
	Reviewer  review.Reviewer
	TTL       time.Duration
	MaxScopes int
	Limiter   *ratelimit.Limiter
	Clock     func() time.Time
	Log       *slog.Logger
}

var challenge = map[string]string{"WWW-Authenticate": fmt.Sprintf("Basic realm=%q", realmName)}

// TokenRequest is one token request as the HTTP layer read it.
type TokenRequest struct {
	Service string
	Account string   // the account parameter (logs only)
	Scopes  []string // the scope values, each one or more space-separated scopes
	// Credentials are nil for an anonymous request; CredentialError is an Authorization header
	// that could not be read.
	Credentials     *credentials.Credentials
	CredentialError error
	Client          string // who asks, for logs
}

// Handle answers a token request.
func (i *Issuer) Handle(ctx context.Context, req TokenRequest) Response {
	log := i.Log.With("client", req.Client, "service", req.Service)
	service, known := i.Services[req.Service]
	if !known {
		log.Info("deny", "reason", "unknown service")
		return ErrorResponse(http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("unknown service %q", req.Service), nil)
	}
	scopes, err := scope.ParseAll(req.Scopes)
	if err != nil {
		log.Info("deny", "reason", err.Error())
		return ErrorResponse(http.StatusBadRequest, "INVALID_SCOPE", err.Error(), nil)
	}
	log = log.With("scopes", scopeText(scopes))
	if len(scopes) > i.MaxScopes {
		message := fmt.Sprintf("%d scopes in one token request; at most %d: ask for fewer scopes per token", len(scopes), i.MaxScopes)
		log.Info("deny", "reason", message)
		return ErrorResponse(http.StatusBadRequest, "INVALID_SCOPE", message, nil)
	}
	if req.CredentialError != nil {
		log.Info("deny", "reason", req.CredentialError.Error())
		return ErrorResponse(http.StatusUnauthorized, "UNAUTHORIZED", req.CredentialError.Error(), challenge)
	}
	creds := req.Credentials
	if creds == nil {
		log.Info("deny", "reason", "anonymous")
		return ErrorResponse(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required", challenge)
	}
	account := req.Account
	if creds.Account != "" {
		account = creds.Account
	}
	log = log.With("account", account, "token_sha256", credentials.Fingerprint(creds.Secret)[:fingerprintLength])
	user, err := i.Reviewer.Authenticate(ctx, creds.Secret, service.Audiences)
	if throttled := (*review.Throttled)(nil); errors.As(err, &throttled) {
		return tooManyRequests(log, throttled.Wait, "too many token reviews on this server", "too many token requests on this server")
	}
	if err != nil {
		return unavailable(log, err)
	}
	if user == nil {
		log.Info("deny", "reason", "token not authenticated")
		return ErrorResponse(http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials", challenge)
	}
	log = log.With("user", user.Username)
	if wait := i.Limiter.Take(user.Username, 1+access.ReviewCount(scopes, service)); wait > 0 {
		return tooManyRequests(log, wait, "too many reviews for this user", "too many token requests for this user")
	}
	granted, refused, err := access.DecideAccess(scopes, service, func(attrs access.ResourceAttributes) (bool, error) {
		return i.Reviewer.Allowed(ctx, user, attrs)
	})
	if err != nil {
		return unavailable(log, err)
	}
	for _, r := range refused {
		log.Info("refuse", append([]any{"action", r.Scope.String()}, lackedGrant(r.Lacked)...)...)
	}
	now := i.Clock()
	token, err := i.sign(service, user, granted, now)
	if err != nil {
		log.Error("error", "reason", "cannot sign: "+err.Error())
		return ErrorResponse(http.StatusInternalServerError, "UNKNOWN", "cannot issue a token", nil)
	}
	log.Info("issue", "granted", accessText(granted))
	return Response{Status: http.StatusOK, Body: TokenBody{Token: token, AccessToken: token,
		ExpiresIn: int64(i.TTL / time.Second), IssuedAt: jwt.RFC3339(now)}}
}

func (i *Issuer) sign(service access.Service, user *review.ReviewedUser, granted []access.Access, now time.Time) (string, error) {
	jti, err := jwt.NewJTI()
	if err != nil {
		return "", err
	}
	return i.Signer.Sign(jwt.BuildClaims(service.Issuer, user.Username, service.Name, granted, now, i.TTL, jti))
}

// unavailable answers a review the registry cluster could not give (not a denial).
// tooManyRequests is a 429 whose Retry-After is wait in whole seconds, rounded up.
func tooManyRequests(log *slog.Logger, wait time.Duration, reason, message string) Response {
	retry := strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10)
	log.Info("deny", "reason", reason, "retry_after_seconds", retry)
	return ErrorResponse(http.StatusTooManyRequests, "TOOMANYREQUESTS",
		message+"; retry after "+retry+" s", map[string]string{"Retry-After": retry})
}

func unavailable(log *slog.Logger, err error) Response {
	log.Warn("error", "reason", err.Error())
	return ErrorResponse(http.StatusServiceUnavailable, "UNAVAILABLE", "authorization backend unavailable", nil)
}

func scopeText(scopes []scope.Scope) string {
	parts := make([]string, len(scopes))
	for n, s := range scopes {
		parts[n] = s.String()
	}
	return orDash(strings.Join(parts, " "))
}

func accessText(granted []access.Access) string {
	parts := make([]string, len(granted))
	for n, a := range granted {
		parts[n] = scope.Scope{Type: a.Type, Name: a.Name, Actions: a.Actions}.String()
	}
	return orDash(strings.Join(parts, " "))
}

// lackedGrant is the log attributes naming a SubjectAccessReview that refused: verb, resource
// (group/resource[/subresource]), namespace ("-": cluster-wide) and name when there is one.
func lackedGrant(attrs access.ResourceAttributes) []any {
	resource := attrs.Group + "/" + attrs.Resource
	if attrs.Subresource != "" {
		resource += "/" + attrs.Subresource
	}
	out := []any{"verb", attrs.Verb, "resource", resource, "namespace", orDash(attrs.Namespace)}
	if attrs.Name != "" {
		out = append(out, "name", attrs.Name)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
