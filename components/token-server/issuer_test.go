package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testIssuer(t *testing.T, reviewer Reviewer) (*Issuer, *logBuffer) {
	t.Helper()
	signer, _ := testSigner(t)
	log, buf := newLogger()
	clock := func() time.Time { return time.Unix(1_000_000, 0) }
	return &Issuer{
		Services: map[string]Service{"integrated": integrated, "env-test": envTest},
		Signer:   signer, Reviewer: reviewer, TTL: 300 * time.Second,
		MaxScopes: defaultMaxScopes, Limiter: NewRateLimiter(defaultReviewRate, defaultReviewBurst, clock),
		Clock: clock, Log: log,
	}, buf
}

func request(t *testing.T, service, authorization string, scopes ...string) TokenRequest {
	t.Helper()
	creds, err := CredentialsFromHeader(authorization)
	return TokenRequest{Service: service, Account: "anyone", Scopes: scopes, Credentials: creds, CredentialError: err, Client: "192.0.2.1"}
}

func tokenOf(t *testing.T, resp Response) jwtParts {
	t.Helper()
	body, ok := resp.Body.(TokenBody)
	if !ok || resp.Status != http.StatusOK {
		t.Fatalf("HTTP %d %#v", resp.Status, resp.Body)
	}
	return decodeJWT(t, body.Token)
}

func errorCode(resp Response) string {
	body, ok := resp.Body.(ErrorBody)
	if !ok {
		return ""
	}
	return body.Errors[0].Code
}

func TestHandleIssuesATokenWithTheGrantedAccess(t *testing.T) {
	reviewer := newFakeReviewer([3]string{"get", "imagestreams", "myproject"}, [3]string{"update", "imagestreams", "myproject"})
	issuer, logs := testIssuer(t, reviewer)
	resp := issuer.Handle(context.Background(), request(t, "integrated", basic("ignored", secret),
		"repository:myproject/app:pull,push", "repository:x/y:pull"))
	body := resp.Body.(TokenBody)
	if body.Token != body.AccessToken || body.ExpiresIn != 300 || body.IssuedAt != "1970-01-12T13:46:40Z" {
		t.Errorf("body %#v", body)
	}
	claims := tokenOf(t, resp).claims
	if claims.Issuer != "segmented-registry-lab" || claims.Audience != "integrated" ||
		claims.Subject != "system:serviceaccount:myproject:builder" || claims.Expiry != 1_000_300 ||
		claims.NotBefore != 1_000_000 || claims.IssuedAt != 1_000_000 || len(claims.ID) != 32 {
		t.Errorf("claims %#v", claims)
	}
	if want := []Access{{"repository", "myproject/app", []string{"pull", "push"}}}; !reflect.DeepEqual(claims.Access, want) {
		t.Errorf("access %#v", claims.Access)
	}
	if !reflect.DeepEqual(reviewer.tokens, []string{secret}) {
		t.Errorf("reviewed tokens %v", reviewer.tokens)
	}
	text := logs.String()
	if strings.Contains(text, secret) || strings.Contains(text, body.Token) || strings.Contains(text, strings.Split(body.Token, ".")[2]) {
		t.Errorf("a secret was logged: %s", text)
	}
	for _, want := range []string{"system:serviceaccount:myproject:builder", "token_sha256=" + Fingerprint(secret)[:12],
		"granted=repository:myproject/app:pull,push", "account=ignored", "msg=issue"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q: %s", want, text)
		}
	}
}

func TestHandleFixedNamespaceService(t *testing.T) {
	reviewer := newFakeReviewer([3]string{"pull", "environmentregistries", "test"}, [3]string{"update", "imagestreams", "test"})
	issuer, logs := testIssuer(t, reviewer)
	claims := tokenOf(t, issuer.Handle(context.Background(), request(t, "env-test", basic("u", secret), "repository:myproject/app:pull,push"))).claims
	if claims.Audience != "env-test" || !reflect.DeepEqual(claims.Access, []Access{{"repository", "myproject/app", []string{"pull"}}}) {
		t.Errorf("claims %#v", claims)
	}
	if !reflect.DeepEqual(reviewer.audiences, [][]string{{tokenServerAudience}}) {
		t.Errorf("the TokenReview was not asked for the service's audiences: %v", reviewer.audiences)
	}
	// the refused action is logged with the user and the grant it lacks
	want := `msg=refuse client=192.0.2.1 service=env-test scopes=repository:myproject/app:pull,push account=u token_sha256=` +
		Fingerprint(secret)[:12] + ` user=system:serviceaccount:myproject:builder action=repository:myproject/app:push verb=push resource=segmented.registry/environmentregistries namespace=test`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q: %s", want, logs)
	}
}

func TestHandleCapsTheScopesOfARequest(t *testing.T) {
	reviewer := newFakeReviewer()
	issuer, _ := testIssuer(t, reviewer)
	scopes := make([]string, defaultMaxScopes+1)
	for n := range scopes {
		scopes[n] = fmt.Sprintf("repository:p/a%d:pull", n)
	}
	resp := issuer.Handle(context.Background(), request(t, "integrated", basic("u", secret), strings.Join(scopes, " ")))
	if resp.Status != 400 || errorCode(resp) != "INVALID_SCOPE" || !strings.Contains(resp.Body.(ErrorBody).Errors[0].Message, "65 scopes in one token request; at most 64") {
		t.Errorf("%d scopes: %#v", len(scopes), resp)
	}
	if len(reviewer.tokens)+len(reviewer.calls) != 0 {
		t.Errorf("a refused request cost reviews: %v %v", reviewer.tokens, reviewer.calls)
	}
	if resp := issuer.Handle(context.Background(), request(t, "integrated", basic("u", secret), scopes[1:]...)); resp.Status != 200 {
		t.Errorf("%d scopes: %#v", defaultMaxScopes, resp)
	}
}

func TestHandleLimitsTheReviewsOfAUser(t *testing.T) {
	reviewer := newFakeReviewer()
	issuer, logs := testIssuer(t, reviewer)
	issuer.Limiter = NewRateLimiter(0.5, 7, issuer.Clock) // one review every 2 s, 7 at once
	ctx := context.Background()
	// the TokenReview and pull, push and delete on the environment registry: 4 reviews
	if resp := issuer.Handle(ctx, request(t, "env-test", basic("u", secret), "repository:a/b:pull,push,delete")); resp.Status != 200 {
		t.Fatalf("first request: %#v", resp)
	}
	calls := len(reviewer.calls)
	resp := issuer.Handle(ctx, request(t, "env-test", basic("u", secret), "repository:a/b:pull,push,delete"))
	// 3 left, 4 needed: the one missing comes in 2 s
	if resp.Status != 429 || errorCode(resp) != "TOOMANYREQUESTS" || resp.Headers["Retry-After"] != "2" {
		t.Errorf("over the limit: %#v", resp)
	}
	if len(reviewer.calls) != calls {
		t.Error("a limited request sent SubjectAccessReviews")
	}
	if !strings.Contains(logs.String(), "reason=\"too many reviews for this user\" retry_after_seconds=2") {
		t.Errorf("the log: %s", logs)
	}
	// what is left is enough for a smaller request
	if resp := issuer.Handle(ctx, request(t, "env-test", basic("u", secret), "repository:a/b:pull")); resp.Status != 200 {
		t.Errorf("within the limit: %#v", resp)
	}
}

func TestHandleErrors(t *testing.T) {
	issuer, logs := testIssuer(t, newFakeReviewer([3]string{"get", "imagestreams", "p"}))
	ctx := context.Background()
	if resp := issuer.Handle(ctx, request(t, "nope", basic("u", secret), "repository:p/a:pull")); resp.Status != 400 || errorCode(resp) != "UNSUPPORTED" {
		t.Errorf("unknown service: %#v", resp)
	}
	badScope := issuer.Handle(ctx, request(t, "integrated", basic("u", secret), "repository:p/a"))
	if badScope.Status != 400 || errorCode(badScope) != "INVALID_SCOPE" || !strings.Contains(badScope.Body.(ErrorBody).Errors[0].Message, "repository:p/a") {
		t.Errorf("bad scope: %#v", badScope)
	}
	for name, authorization := range map[string]string{"anonymous": "", "malformed": "Basic !!!", "wrong token": basic("u", "wrong-password-xyz")} {
		resp := issuer.Handle(ctx, request(t, "integrated", authorization, "repository:p/a:pull"))
		if resp.Status != 401 || errorCode(resp) != "UNAUTHORIZED" || resp.Headers["WWW-Authenticate"] != `Basic realm="segmented-registry"` {
			t.Errorf("%s: %#v", name, resp)
		}
		if _, isToken := resp.Body.(TokenBody); isToken {
			t.Errorf("%s: a token", name)
		}
	}
	down := &fakeReviewer{fail: true}
	downIssuer, downLogs := testIssuer(t, down)
	if resp := downIssuer.Handle(ctx, request(t, "integrated", basic("u", secret), "repository:p/a:pull")); resp.Status != 503 || errorCode(resp) != "UNAVAILABLE" {
		t.Errorf("backend down: %#v", resp)
	}
	for _, text := range []string{logs.String(), downLogs.String()} {
		if strings.Contains(text, secret) || strings.Contains(text, "wrong-password-xyz") {
			t.Errorf("a secret was logged: %s", text)
		}
	}
	if !strings.Contains(downLogs.String(), "cannot be reached") {
		t.Errorf("the review error is not logged: %s", downLogs)
	}
}

func TestHandleDeniedEverythingStillIssuesAnEmptyToken(t *testing.T) {
	issuer, _ := testIssuer(t, newFakeReviewer())
	jwt := tokenOf(t, issuer.Handle(context.Background(), request(t, "integrated", basic("u", secret), "repository:p/a:pull,push")))
	if access, _ := json.Marshal(jwt.rawClaims["access"]); string(access) != "[]" {
		t.Errorf("access %s", access)
	}
}

// Over the server-wide TokenReview limit: 429 with Retry-After in whole seconds, logged, and the
// TokenReview not sent.
func TestHandleRefusesATokenReviewOverTheServerLimit(t *testing.T) {
	api := newFakeAPI(t, nil)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	issuer, logs := testIssuer(t, NewKubeReviewer(client, 0, NewRateLimiter(0.4, 1, clock.Now), clock.Now))
	ctx := context.Background()
	if resp := issuer.Handle(ctx, request(t, "integrated", basic("u", "random-1"), "repository:a/b:pull")); resp.Status != 401 {
		t.Fatalf("within the limit, an unknown token: %#v", resp)
	}
	resp := issuer.Handle(ctx, request(t, "integrated", basic("u", "random-2"), "repository:a/b:pull"))
	if resp.Status != 429 || errorCode(resp) != "TOOMANYREQUESTS" || resp.Headers["Retry-After"] != "3" {
		t.Errorf("over the limit: %#v", resp)
	}
	if reviews, _ := api.seen(); len(reviews) != 1 {
		t.Errorf("TokenReviews sent: %v, want 1", reviews)
	}
	if !strings.Contains(logs.String(), "reason=\"too many token reviews on this server\" retry_after_seconds=3") {
		t.Errorf("the log: %s", logs)
	}
}
