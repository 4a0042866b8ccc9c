package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/testkit"
	"github.com/segmented-registry/token-server/internal/testkit/fakes"
)

func testServer(t *testing.T) (*httptest.Server, *fakes.Reviewer, *testkit.LogBuffer) {
	t.Helper()
	reviewer := fakes.NewReviewer([3]string{"get", "imagestreams", "myproject"})
	tokens, logs := fakes.Issuer(t, reviewer)
	server := httptest.NewServer(NewHandler(tokens, tokens.Log))
	t.Cleanup(server.Close)
	return server, reviewer, logs
}

func do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("not JSON: %s", data)
		}
	}
	return resp, body
}

func newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestGetToken(t *testing.T) {
	server, _, logs := testServer(t)
	req := newRequest(t, "GET", server.URL+"/token?service=integrated&scope=repository:myproject/app:pull,push&account=bob", nil)
	req.Header.Set("Authorization", testkit.Basic("bob", testkit.Secret))
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("HTTP %d %v %v", resp.StatusCode, resp.Header, body)
	}
	claims := testkit.DecodeJWT[jwt.Claims](t, body["token"].(string)).Claims
	if claims.Access[0].Name != "myproject/app" || strings.Join(claims.Access[0].Actions, ",") != "pull" {
		t.Errorf("claims %#v", claims)
	}
	if text := logs.String(); strings.Contains(text, testkit.Secret) || strings.Contains(text, body["token"].(string)) ||
		strings.Contains(text, "scope=repository") || !strings.Contains(text, "msg=request method=GET path=/token status=200") {
		t.Errorf("log %s", text)
	}
}

// Neither the Authorization header nor the token in it, in any form, is logged: not for a
// token issued, a token refused or a request refused before review.
func TestTheAuthorizationHeaderIsNeverLogged(t *testing.T) {
	server, _, logs := testServer(t)
	headers := []string{testkit.Basic("bob", testkit.Secret), "Bearer " + testkit.Secret, testkit.Basic("bob", "wrong-token-value"), "Bearer wrong-token-value"}
	for _, header := range headers {
		for _, query := range []string{"service=integrated&scope=repository:myproject/app:pull", "service=nope"} {
			req := newRequest(t, "GET", server.URL+"/token?"+query, nil)
			req.Header.Set("Authorization", header)
			do(t, req)
		}
	}
	text := logs.String()
	for _, needle := range append(headers, testkit.Secret, "wrong-token-value", strings.TrimPrefix(testkit.Basic("bob", testkit.Secret), "Basic ")) {
		if strings.Contains(text, needle) {
			t.Errorf("the log holds %q: %s", needle, text)
		}
	}
	if strings.Count(text, "msg=request") != 8 {
		t.Errorf("8 requests were not all logged: %s", text)
	}
}

func TestGetTokenWithoutCredentialsIsChallenged(t *testing.T) {
	server, _, _ := testServer(t)
	resp, body := do(t, newRequest(t, "GET", server.URL+"/token?service=integrated&scope=repository:myproject/app:pull", nil))
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="segmented-registry"` || body["token"] != nil {
		t.Errorf("HTTP %d %v %v", resp.StatusCode, resp.Header, body)
	}
}

func TestHeadTokenHasNoBody(t *testing.T) {
	server, _, _ := testServer(t)
	req := newRequest(t, "HEAD", server.URL+"/token?service=integrated", nil)
	req.Header.Set("Authorization", "Bearer "+testkit.Secret)
	resp, body := do(t, req)
	if resp.StatusCode != 200 || body != nil {
		t.Errorf("HTTP %d %v", resp.StatusCode, body)
	}
}

func TestPostTokenPasswordGrant(t *testing.T) {
	server, reviewer, logs := testServer(t)
	form := url.Values{"grant_type": {"password"}, "username": {"us:er"}, "password": {testkit.Secret},
		"service": {"integrated"}, "scope": {"repository:myproject/app:pull repository:other/app:pull"}, "client_id": {"docker"}}
	req := newRequest(t, "POST", server.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %v", resp.StatusCode, body)
	}
	claims := testkit.DecodeJWT[jwt.Claims](t, body["access_token"].(string)).Claims
	if len(claims.Access) != 1 || claims.Access[0].Name != "myproject/app" {
		t.Errorf("claims %#v", claims)
	}
	if reviewer.Tokens[0] != testkit.Secret {
		t.Errorf("a user name with a colon must not change the password: %q", reviewer.Tokens[0])
	}
	if strings.Contains(logs.String(), testkit.Secret) {
		t.Errorf("log %s", logs)
	}
	for name, form := range map[string]url.Values{
		"refresh grant": {"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "service": {"integrated"}},
		"no password":   {"grant_type": {"password"}, "username": {"u"}, "service": {"integrated"}},
	} {
		resp, body := do(t, newRequest(t, "POST", server.URL+"/token", strings.NewReader(form.Encode())))
		want := map[string]int{"refresh grant": 400, "no password": 401}[name]
		if resp.StatusCode != want || body["errors"] == nil {
			t.Errorf("%s: HTTP %d %v", name, resp.StatusCode, body)
		}
	}
}

// A form over 64 KiB is refused unread, whatever it holds; one just under is read.
func TestPostTokenFormIsCappedAt64KiB(t *testing.T) {
	server, reviewer, _ := testServer(t)
	form := func(size int) *http.Request {
		head := "grant_type=password&service=integrated&scope=repository:myproject/app:pull&password=" + testkit.Secret + "&pad="
		req := newRequest(t, "POST", server.URL+"/token", strings.NewReader(head+strings.Repeat("x", size-len(head))))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	resp, body := do(t, form(64<<10+1))
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(body["errors"]), "too large form") || !resp.Close {
		t.Errorf("a form of 64 KiB + 1: HTTP %d %v %v", resp.StatusCode, resp.Header, body)
	}
	if len(reviewer.Tokens) != 0 {
		t.Error("an oversized form was reviewed")
	}
	if resp, body := do(t, form(64<<10)); resp.StatusCode != 200 {
		t.Errorf("a form of 64 KiB: HTTP %d %v", resp.StatusCode, body)
	}
}

func TestHealthzNotFoundAndMethods(t *testing.T) {
	server, _, logs := testServer(t)
	if resp, body := do(t, newRequest(t, "GET", server.URL+"/healthz", nil)); resp.StatusCode != 200 || body["status"] != "ok" {
		t.Errorf("healthz: HTTP %d %v", resp.StatusCode, body)
	}
	if resp, body := do(t, newRequest(t, "GET", server.URL+"/v2/", nil)); resp.StatusCode != 404 || body["errors"] == nil {
		t.Errorf("404: HTTP %d %v", resp.StatusCode, body)
	}
	if resp, _ := do(t, newRequest(t, "PUT", server.URL+"/token", nil)); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do(t, newRequest(t, "POST", server.URL+"/healthz", nil)); resp.StatusCode != 405 {
		t.Errorf("POST /healthz: HTTP %d", resp.StatusCode)
	}
	if resp, _ := do(t, newRequest(t, "GET", server.URL+"/token?service=%zz", nil)); resp.StatusCode != 400 {
		t.Errorf("a malformed query: HTTP %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "level=DEBUG msg=request method=GET path=/healthz") {
		t.Errorf("health probes are logged at debug level: %s", logs)
	}
}
