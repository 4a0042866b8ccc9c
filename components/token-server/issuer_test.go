package main

import (
	"context"
	"encoding/json"
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
	return &Issuer{
		Services: map[string]Service{"integrated": integrated, "env-test": envTest},
		Signer:   signer, Reviewer: reviewer, TTL: 300 * time.Second,
		Clock: func() time.Time { return time.Unix(1_000_000, 0) }, Log: log,
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
	issuer, _ := testIssuer(t, newFakeReviewer([3]string{"get", "imagestreams", "test"}))
	claims := tokenOf(t, issuer.Handle(context.Background(), request(t, "env-test", basic("u", secret), "repository:myproject/app:pull,push"))).claims
	if claims.Audience != "env-test" || !reflect.DeepEqual(claims.Access, []Access{{"repository", "myproject/app", []string{"pull"}}}) {
		t.Errorf("claims %#v", claims)
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
