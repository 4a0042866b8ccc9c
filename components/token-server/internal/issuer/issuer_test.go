package issuer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/config"
	"github.com/segmented-registry/token-server/internal/credentials"
	"github.com/segmented-registry/token-server/internal/issuer"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/ratelimit"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/testkit"
	"github.com/segmented-registry/token-server/internal/testkit/fakes"
)

func request(t *testing.T, service, authorization string, scopes ...string) issuer.TokenRequest {
	t.Helper()
	creds, err := credentials.FromHeader(authorization)
	return issuer.TokenRequest{Service: service, Account: "anyone", Scopes: scopes, Credentials: creds, CredentialError: err, Client: "192.0.2.1"}
}

func tokenOf(t *testing.T, resp issuer.Response) testkit.JWT[jwt.Claims] {
	t.Helper()
	body, ok := resp.Body.(issuer.TokenBody)
	if !ok || resp.Status != http.StatusOK {
		t.Fatalf("HTTP %d %#v", resp.Status, resp.Body)
	}
	return testkit.DecodeJWT[jwt.Claims](t, body.Token)
}

func errorCode(resp issuer.Response) string {
	body, ok := resp.Body.(issuer.ErrorBody)
	if !ok {
		return ""
	}
	return body.Errors[0].Code
}

func TestHandleIssuesATokenWithTheGrantedAccess(t *testing.T) {
	reviewer := fakes.NewReviewer([3]string{"get", "imagestreams", "myproject"}, [3]string{"update", "imagestreams", "myproject"})
	tokens, logs := fakes.Issuer(t, reviewer)
	resp := tokens.Handle(context.Background(), request(t, "integrated", testkit.Basic("ignored", testkit.Secret),
		"repository:myproject/app:pull,push", "repository:x/y:pull"))
	body := resp.Body.(issuer.TokenBody)
	if body.Token != body.AccessToken || body.ExpiresIn != 300 || body.IssuedAt != "1970-01-12T13:46:40Z" {
		t.Errorf("body %#v", body)
	}
	claims := tokenOf(t, resp).Claims
	if claims.Issuer != "segmented-registry-lab" || claims.Audience != "integrated" ||
		claims.Subject != "system:serviceaccount:myproject:builder" || claims.Expiry != 1_000_300 ||
		claims.NotBefore != 1_000_000 || claims.IssuedAt != 1_000_000 || len(claims.ID) != 32 {
		t.Errorf("claims %#v", claims)
	}
	if want := []access.Access{{Type: "repository", Name: "myproject/app", Actions: []string{"pull", "push"}}}; !reflect.DeepEqual(claims.Access, want) {
		t.Errorf("access %#v", claims.Access)
	}
	if !reflect.DeepEqual(reviewer.Tokens, []string{testkit.Secret}) {
		t.Errorf("reviewed tokens %v", reviewer.Tokens)
	}
	text := logs.String()
	if strings.Contains(text, testkit.Secret) || strings.Contains(text, body.Token) || strings.Contains(text, strings.Split(body.Token, ".")[2]) {
		t.Errorf("a testkit.Secret was logged: %s", text)
	}
	for _, want := range []string{"system:serviceaccount:myproject:builder", "token_sha256=" + credentials.Fingerprint(testkit.Secret)[:12],
		"granted=repository:myproject/app:pull,push", "account=ignored", "msg=issue"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q: %s", want, text)
		}
	}
}

func TestHandleFixedNamespaceService(t *testing.T) {
	reviewer := fakes.NewReviewer([3]string{"pull", "environmentregistries", "test"}, [3]string{"update", "imagestreams", "test"})
	tokens, logs := fakes.Issuer(t, reviewer)
	claims := tokenOf(t, tokens.Handle(context.Background(), request(t, "env-test", testkit.Basic("u", testkit.Secret), "repository:myproject/app:pull,push"))).Claims
	if claims.Audience != "env-test" || !reflect.DeepEqual(claims.Access, []access.Access{{Type: "repository", Name: "myproject/app", Actions: []string{"pull"}}}) {
		t.Errorf("claims %#v", claims)
	}
	if !reflect.DeepEqual(reviewer.Audiences, [][]string{{testkit.Audience}}) {
		t.Errorf("the TokenReview was not asked for the service's audiences: %v", reviewer.Audiences)
	}
	// the refused action is logged with the user and the grant it lacks
	want := `msg=refuse client=192.0.2.1 service=env-test scopes=repository:myproject/app:pull,push account=u token_sha256=` +
		credentials.Fingerprint(testkit.Secret)[:12] + ` user=system:serviceaccount:myproject:builder action=repository:myproject/app:push verb=push resource=segmented.registry/environmentregistries namespace=test`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q: %s", want, logs)
	}
}

func TestHandleCapsTheScopesOfARequest(t *testing.T) {
	reviewer := fakes.NewReviewer()
	tokens, _ := fakes.Issuer(t, reviewer)
	scopes := make([]string, 64+1)
	for n := range scopes {
		scopes[n] = fmt.Sprintf("repository:p/a%d:pull", n)
	}
	resp := tokens.Handle(context.Background(), request(t, "integrated", testkit.Basic("u", testkit.Secret), strings.Join(scopes, " ")))
	if resp.Status != 400 || errorCode(resp) != "INVALID_SCOPE" || !strings.Contains(resp.Body.(issuer.ErrorBody).Errors[0].Message, "65 scopes in one token request; at most 64") {
		t.Errorf("%d scopes: %#v", len(scopes), resp)
	}
	if len(reviewer.Tokens)+len(reviewer.Calls) != 0 {
		t.Errorf("a refused request cost reviews: %v %v", reviewer.Tokens, reviewer.Calls)
	}
	if resp := tokens.Handle(context.Background(), request(t, "integrated", testkit.Basic("u", testkit.Secret), scopes[1:]...)); resp.Status != 200 {
		t.Errorf("%d scopes: %#v", 64, resp)
	}
}

func TestHandleLimitsTheReviewsOfAUser(t *testing.T) {
	reviewer := fakes.NewReviewer()
	tokens, logs := fakes.Issuer(t, reviewer)
	tokens.Limiter = ratelimit.New(0.5, 7, tokens.Clock) // one review every 2 s, 7 at once
	ctx := context.Background()
	// the TokenReview and pull, push and delete on the environment registry: 4 reviews
	if resp := tokens.Handle(ctx, request(t, "env-test", testkit.Basic("u", testkit.Secret), "repository:a/b:pull,push,delete")); resp.Status != 200 {
		t.Fatalf("first request: %#v", resp)
	}
	calls := len(reviewer.Calls)
	resp := tokens.Handle(ctx, request(t, "env-test", testkit.Basic("u", testkit.Secret), "repository:a/b:pull,push,delete"))
	// 3 left, 4 needed: the one missing comes in 2 s
	if resp.Status != 429 || errorCode(resp) != "TOOMANYREQUESTS" || resp.Headers["Retry-After"] != "2" {
		t.Errorf("over the limit: %#v", resp)
	}
	if len(reviewer.Calls) != calls {
		t.Error("a limited request sent SubjectAccessReviews")
	}
	if !strings.Contains(logs.String(), "reason=\"too many reviews for this user\" retry_after_seconds=2") {
		t.Errorf("the log: %s", logs)
	}
	// what is left is enough for a smaller request
	if resp := tokens.Handle(ctx, request(t, "env-test", testkit.Basic("u", testkit.Secret), "repository:a/b:pull")); resp.Status != 200 {
		t.Errorf("within the limit: %#v", resp)
	}
}

func TestHandleErrors(t *testing.T) {
	tokens, logs := fakes.Issuer(t, fakes.NewReviewer([3]string{"get", "imagestreams", "p"}))
	ctx := context.Background()
	if resp := tokens.Handle(ctx, request(t, "nope", testkit.Basic("u", testkit.Secret), "repository:p/a:pull")); resp.Status != 400 || errorCode(resp) != "UNSUPPORTED" {
		t.Errorf("unknown service: %#v", resp)
	}
	badScope := tokens.Handle(ctx, request(t, "integrated", testkit.Basic("u", testkit.Secret), "repository:p/a"))
	if badScope.Status != 400 || errorCode(badScope) != "INVALID_SCOPE" || !strings.Contains(badScope.Body.(issuer.ErrorBody).Errors[0].Message, "repository:p/a") {
		t.Errorf("bad scope: %#v", badScope)
	}
	for name, authorization := range map[string]string{"anonymous": "", "malformed": "Basic !!!", "wrong token": testkit.Basic("u", "wrong-password-xyz")} {
		resp := tokens.Handle(ctx, request(t, "integrated", authorization, "repository:p/a:pull"))
		if resp.Status != 401 || errorCode(resp) != "UNAUTHORIZED" || resp.Headers["WWW-Authenticate"] != `Basic realm="segmented-registry"` {
			t.Errorf("%s: %#v", name, resp)
		}
		if _, isToken := resp.Body.(issuer.TokenBody); isToken {
			t.Errorf("%s: a token", name)
		}
	}
	down := &fakes.Reviewer{Fail: true}
	downIssuer, downLogs := fakes.Issuer(t, down)
	if resp := downIssuer.Handle(ctx, request(t, "integrated", testkit.Basic("u", testkit.Secret), "repository:p/a:pull")); resp.Status != 503 || errorCode(resp) != "UNAVAILABLE" {
		t.Errorf("backend down: %#v", resp)
	}
	for _, text := range []string{logs.String(), downLogs.String()} {
		if strings.Contains(text, testkit.Secret) || strings.Contains(text, "wrong-password-xyz") {
			t.Errorf("a testkit.Secret was logged: %s", text)
		}
	}
	if !strings.Contains(downLogs.String(), "cannot be reached") {
		t.Errorf("the review error is not logged: %s", downLogs)
	}
}

func TestHandleDeniedEverythingStillIssuesAnEmptyToken(t *testing.T) {
	tokens, _ := fakes.Issuer(t, fakes.NewReviewer())
	parts := tokenOf(t, tokens.Handle(context.Background(), request(t, "integrated", testkit.Basic("u", testkit.Secret), "repository:p/a:pull,push")))
	if access, _ := json.Marshal(parts.RawClaims["access"]); string(access) != "[]" {
		t.Errorf("access %s", access)
	}
}

// Over the server-wide TokenReview limit: 429 with Retry-After in whole seconds, logged, and the
// TokenReview not sent.
func TestHandleRefusesATokenReviewOverTheServerLimit(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, err := review.NewKubeClient(config.KubernetesConfig{Server: api.URL, CAFile: api.CAFile(t),
		TokenFile: testkit.WriteFile(t, t.TempDir(), "token", []byte("server-token"))}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens, logs := fakes.Issuer(t, review.NewKubeReviewer(client, 0, ratelimit.New(0.4, 1, clock.Now), clock.Now))
	ctx := context.Background()
	if resp := tokens.Handle(ctx, request(t, "integrated", testkit.Basic("u", "random-1"), "repository:a/b:pull")); resp.Status != 401 {
		t.Fatalf("within the limit, an unknown token: %#v", resp)
	}
	resp := tokens.Handle(ctx, request(t, "integrated", testkit.Basic("u", "random-2"), "repository:a/b:pull"))
	if resp.Status != 429 || errorCode(resp) != "TOOMANYREQUESTS" || resp.Headers["Retry-After"] != "3" {
		t.Errorf("over the limit: %#v", resp)
	}
	if reviews, _ := api.Seen(); len(reviews) != 1 {
		t.Errorf("TokenReviews sent: %v, want 1", reviews)
	}
	if !strings.Contains(logs.String(), "reason=\"too many token reviews on this server\" retry_after_seconds=3") {
		t.Errorf("the log: %s", logs)
	}
}
