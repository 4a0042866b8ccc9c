package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is an API server that answers TokenReviews (known tokens) and SubjectAccessReviews
// (allowed (user, verb, resource, namespace) tuples), and records what it was sent.
type fakeAPI struct {
	*httptest.Server
	t            *testing.T
	users        map[string]*ReviewedUser
	allowed      map[[4]string]bool
	mu           sync.Mutex
	bearers      []string
	reviews      []string // "TokenReview" or "SubjectAccessReview <attrs>"
	sars         []map[string]any
	tokenReviews []map[string]any // the TokenReviews' specs
	// answerAudiences: the status.audiences answered for a token (an authenticator that ignores
	// spec.audiences); unauthenticated: tokens answered authenticated false though with a user
	answerAudiences map[string][]string
	unauthenticated map[string]bool
	status          int    // when set, answer every request with this status
	message         string // ... and this Status message
}

func newFakeAPI(t *testing.T, configure func(*httptest.Server)) *fakeAPI {
	api := &fakeAPI{t: t, users: map[string]*ReviewedUser{}, allowed: map[[4]string]bool{},
		answerAudiences: map[string][]string{}, unauthenticated: map[string]bool{}}
	api.Server = httptest.NewUnstartedServer(http.HandlerFunc(api.serve))
	if configure != nil {
		configure(api.Server)
	}
	api.StartTLS()
	t.Cleanup(api.Close)
	return api
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		a.t.Errorf("%s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	a.bearers = append(a.bearers, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	var body struct {
		APIVersion, Kind string
		Spec             map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		a.t.Errorf("body: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	if a.status != 0 {
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"code":%d}`, a.message, a.status)
		return
	}
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		if body.APIVersion != "authentication.k8s.io/v1" || body.Kind != "TokenReview" {
			a.t.Errorf("TokenReview body %+v", body)
		}
		a.reviews = append(a.reviews, "TokenReview")
		a.tokenReviews = append(a.tokenReviews, body.Spec)
		token := body.Spec["token"].(string)
		user := a.users[token]
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "TokenReview",
			"status": map[string]any{"authenticated": user != nil && !a.unauthenticated[token], "user": user,
				"audiences": a.answerAudiences[token]}})
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		if body.APIVersion != "authorization.k8s.io/v1" || body.Kind != "SubjectAccessReview" {
			a.t.Errorf("SubjectAccessReview body %+v", body)
		}
		attrs := body.Spec["resourceAttributes"].(map[string]any)
		a.sars = append(a.sars, body.Spec)
		a.reviews = append(a.reviews, fmt.Sprintf("SubjectAccessReview %v", attrs))
		key := [4]string{body.Spec["user"].(string), fmt.Sprint(attrs["verb"]), fmt.Sprint(attrs["resource"]), fmt.Sprint(attrs["namespace"])}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"kind": "SubjectAccessReview",
			"status": map[string]any{"allowed": a.allowed[key]}})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (a *fakeAPI) caFile(t *testing.T) string {
	return writeFile(t, t.TempDir(), "ca.crt", certPEM(a.Certificate()))
}

func (a *fakeAPI) seen() (reviews, bearers []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reviews...), append([]string(nil), a.bearers...)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var builder = &ReviewedUser{Username: "system:serviceaccount:myproject:builder", UID: "uid-1",
	Groups: []string{"system:serviceaccounts", "system:authenticated"},
	Extra:  map[string][]string{"authentication.kubernetes.io/pod-name": {"build-1"}}}

func tokenClient(t *testing.T, api *fakeAPI, clock *fakeClock) (*KubeClient, string) {
	t.Helper()
	tokenPath := writeFile(t, t.TempDir(), "token", []byte("server-token-1\n"))
	client, err := NewKubeClient(KubernetesConfig{Server: api.URL, CAFile: api.caFile(t), TokenFile: tokenPath}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return client, tokenPath
}

// anyReviews is a server-wide TokenReview bucket no test of the cache or the client empties.
func anyReviews(clock func() time.Time) *RateLimiter {
	return NewRateLimiter(defaultTokenReviewRate, defaultTokenReviewBurst, clock)
}

// Tokens not in the cache share one server-wide bucket of TokenReviews: a flood of random bearer
// tokens is refused (with how long to wait) without reaching the API server; cached tokens cost
// nothing from it and are still accepted.
func TestKubeReviewerLimitsTheTokenReviewsOfTheServer(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.users[secret] = builder
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, NewRateLimiter(2, 3, clock.Now), clock.Now) // 2 a second, 3 at once
	ctx := context.Background()
	if user, err := reviewer.Authenticate(ctx, secret, nil); err != nil || user == nil {
		t.Fatalf("first review: %#v, %v", user, err)
	}
	for n := range 2 {
		if user, err := reviewer.Authenticate(ctx, fmt.Sprintf("random-%d", n), nil); user != nil || err != nil {
			t.Fatalf("within the burst: %#v, %v", user, err)
		}
	}
	for n := range 50 {
		_, err := reviewer.Authenticate(ctx, fmt.Sprintf("flood-%d", n), nil)
		var throttled *ReviewThrottled
		if !errors.As(err, &throttled) || throttled.Wait != 500*time.Millisecond {
			t.Fatalf("token %d over the limit: %v", n, err)
		}
	}
	if user, err := reviewer.Authenticate(ctx, secret, nil); err != nil || user == nil {
		t.Errorf("a cached token while the bucket is empty: %#v, %v", user, err)
	}
	if reviews, _ := api.seen(); len(reviews) != 3 {
		t.Errorf("%d TokenReviews sent, want 3 (the burst): refused ones must not reach the API server", len(reviews))
	}
	clock.Advance(500 * time.Millisecond)
	if _, err := reviewer.Authenticate(ctx, "after-the-wait", nil); err != nil {
		t.Errorf("refilled: %v", err)
	}
}

func TestTTLCacheExpires(t *testing.T) {
	clock := &fakeClock{now: time.Unix(100, 0)}
	cache := newTTLCache(10*time.Second, clock.Now)
	user := &ReviewedUser{Username: "u"}
	cache.put("k", user)
	if cache.get("k") != user {
		t.Fatal("miss right after put")
	}
	clock.Advance(9900 * time.Millisecond)
	if cache.get("k") != user {
		t.Error("miss before expiry")
	}
	clock.Advance(100 * time.Millisecond)
	if cache.get("k") != nil {
		t.Error("hit at expiry")
	}
	off := newTTLCache(0, clock.Now)
	off.put("k", user)
	if off.get("k") != nil {
		t.Error("a zero TTL must not cache")
	}
}

func TestTTLCacheStaysBounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(100, 0)}
	cache := newTTLCache(10*time.Second, clock.Now)
	for n := range maxCacheEntries {
		cache.put(fmt.Sprint(n), &ReviewedUser{})
	}
	cache.put("new", &ReviewedUser{}) // full and nothing expired: start over
	if len(cache.data) != 1 || cache.get("new") == nil {
		t.Errorf("%d entries", len(cache.data))
	}
	for n := range maxCacheEntries - 1 {
		cache.put(fmt.Sprint(n), &ReviewedUser{})
	}
	clock.Advance(5 * time.Second)
	cache.put("fresh", &ReviewedUser{})
	clock.Advance(6 * time.Second) // all but "fresh" expired
	cache.put("newer", &ReviewedUser{})
	if len(cache.data) != 2 || cache.get("fresh") == nil {
		t.Errorf("%d entries", len(cache.data))
	}
}

func TestKubeReviewerAuthenticatesAndCachesByTokenHash(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.users[secret] = builder
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	for range 3 {
		user, err := reviewer.Authenticate(ctx, secret, nil)
		if err != nil || !reflect.DeepEqual(user, builder) {
			t.Fatalf("got %#v, %v", user, err)
		}
	}
	if user, err := reviewer.Authenticate(ctx, "unknown-token", nil); user != nil || err != nil {
		t.Errorf("an unknown token: %#v, %v", user, err)
	}
	reviewer.Authenticate(ctx, "unknown-token", nil) // not authenticated: not cached
	reviews, bearers := api.seen()
	if want := []string{"TokenReview", "TokenReview", "TokenReview"}; !reflect.DeepEqual(reviews, want) {
		t.Errorf("reviews %v: the second and third of the same token must come from the cache", reviews)
	}
	if bearers[0] != "server-token-1" {
		t.Errorf("the server's own token was not sent: %q", bearers[0])
	}
	if _, cached := reviewer.cache.data[Fingerprint(secret)+" []"]; !cached {
		t.Errorf("the cache key is not sha256(token) and the audiences: %v", reviewer.cache.data)
	}
	clock.Advance(10 * time.Second)
	reviewer.Authenticate(ctx, secret, nil)
	if reviews, _ := api.seen(); len(reviews) != 4 {
		t.Errorf("an expired entry must be reviewed again: %v", reviews)
	}
}

// An answer with authenticated false is a refusal, whatever else it holds.
func TestKubeReviewerRefusesAnUnauthenticatedAnswer(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.users[secret] = builder
	api.unauthenticated[secret] = true
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	if user, err := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now).Authenticate(context.Background(), secret, nil); user != nil || err != nil {
		t.Errorf("authenticated false: got %#v, %v", user, err)
	}
}

const tokenServerAudience = "segmented.registry/token-server"

func TestKubeReviewerSendsAndChecksTheAudiences(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.users[secret] = builder
	api.answerAudiences[secret] = []string{tokenServerAudience}
	api.users["api-token"] = builder // an authenticator that ignores spec.audiences
	api.answerAudiences["api-token"] = []string{"https://kubernetes.default.svc"}
	api.users["no-audience"] = builder
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	audiences := []string{"other", tokenServerAudience}
	if user, err := reviewer.Authenticate(ctx, secret, audiences); err != nil || !reflect.DeepEqual(user, builder) {
		t.Fatalf("a token bound to one of the audiences: %#v, %v", user, err)
	}
	if got := api.tokenReviews[0]["audiences"]; !reflect.DeepEqual(got, []any{"other", tokenServerAudience}) {
		t.Errorf("spec.audiences %#v", got)
	}
	for _, token := range []string{"api-token", "no-audience"} {
		if user, err := reviewer.Authenticate(ctx, token, audiences); user != nil || err != nil {
			t.Errorf("%s: answered with other audiences, got %#v, %v", token, user, err)
		}
	}
	// the same token for other audiences is another review, not the cached answer
	api.answerAudiences[secret] = nil
	if user, _ := reviewer.Authenticate(ctx, secret, []string{"elsewhere"}); user != nil {
		t.Errorf("the answer cached for %v was reused for other audiences", audiences)
	}
	if user, _ := reviewer.Authenticate(ctx, secret, nil); user == nil {
		t.Error("no audiences: the API server's default audiences decide")
	}
	if _, sent := api.tokenReviews[4]["audiences"]; sent {
		t.Errorf("no audiences must send no spec.audiences: %#v", api.tokenReviews[4])
	}
}

func TestKubeReviewerSubjectAccessReview(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.allowed[[4]string{builder.Username, "get", "imagestreams", "myproject"}] = true
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	attrs := ResourceAttributes{Group: imageGroup, Resource: "imagestreams", Subresource: "layers",
		Namespace: "myproject", Name: "app", Verb: "get"}
	allowed, err := reviewer.Allowed(context.Background(), builder, attrs)
	if err != nil || !allowed {
		t.Fatalf("got %v, %v", allowed, err)
	}
	attrs.Verb = "update"
	if allowed, err := reviewer.Allowed(context.Background(), builder, attrs); err != nil || allowed {
		t.Errorf("update: got %v, %v", allowed, err)
	}
	spec := api.sars[0]
	want := map[string]any{
		"user": builder.Username, "uid": "uid-1",
		"groups": []any{"system:serviceaccounts", "system:authenticated"},
		"extra":  map[string]any{"authentication.kubernetes.io/pod-name": []any{"build-1"}},
		"resourceAttributes": map[string]any{"group": "image.openshift.io", "resource": "imagestreams",
			"subresource": "layers", "namespace": "myproject", "name": "app", "verb": "get"},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec %#v\nwant %#v", spec, want)
	}
	// cluster-wide attributes carry no namespace at all
	reviewer.Allowed(context.Background(), &ReviewedUser{Username: "u"}, ResourceAttributes{Group: imageGroup, Resource: "images", Verb: "delete"})
	if got := api.sars[2]; !reflect.DeepEqual(got, map[string]any{"user": "u",
		"resourceAttributes": map[string]any{"group": "image.openshift.io", "resource": "images", "verb": "delete"}}) {
		t.Errorf("spec %#v", got)
	}
}

func TestKubeClientRereadsARotatedTokenFile(t *testing.T) {
	api := newFakeAPI(t, nil)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, tokenPath := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 0, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	reviewer.Authenticate(ctx, "a", nil)
	os.WriteFile(tokenPath, []byte("server-token-2"), 0o600)
	clock.Advance(59 * time.Second)
	reviewer.Authenticate(ctx, "a", nil)
	clock.Advance(time.Second)
	reviewer.Authenticate(ctx, "a", nil)
	_, bearers := api.seen()
	if want := []string{"server-token-1", "server-token-1", "server-token-2"}; !reflect.DeepEqual(bearers, want) {
		t.Errorf("bearers %v, want %v (read again after a minute)", bearers, want)
	}
}

func TestKubeClientRereadsTheTokenFileOnceAfterA401(t *testing.T) {
	api := newFakeAPI(t, nil)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, tokenPath := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 0, anyReviews(clock.Now), clock.Now)
	os.WriteFile(tokenPath, []byte("server-token-2"), 0o600)
	api.status, api.message = http.StatusUnauthorized, "Unauthorized"
	_, err := reviewer.Authenticate(context.Background(), "a", nil)
	_, bearers := api.seen()
	if want := []string{"server-token-1", "server-token-2"}; !reflect.DeepEqual(bearers, want) {
		t.Errorf("bearers %v, want %v", bearers, want)
	}
	var review *ReviewError
	if !errors.As(err, &review) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("got %v", err)
	}
}

func TestKubeReviewerErrorsNameTheCauseButNeverTheToken(t *testing.T) {
	api := newFakeAPI(t, nil)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	api.status = http.StatusForbidden
	api.message = `tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:r:token-server" cannot create resource "tokenreviews" (token ` + secret + `)`
	_, err := reviewer.Authenticate(context.Background(), secret, nil)
	var review *ReviewError
	if !errors.As(err, &review) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"TokenReview", "HTTP 403", "cannot create resource", "<token>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("%q shows the token", err)
	}
	api.message = "boom"
	if _, err := reviewer.Allowed(context.Background(), builder, ResourceAttributes{Verb: "get"}); err == nil || !strings.Contains(err.Error(), "SubjectAccessReview") {
		t.Errorf("got %v", err)
	}
	api.Close()
	if _, err := reviewer.Authenticate(context.Background(), secret, nil); !errors.As(err, &review) {
		t.Errorf("an unreachable API server: %v", err)
	}
}

func TestKubeClientAlwaysVerifiesTheAPIServer(t *testing.T) {
	api := newFakeAPI(t, nil)
	api.users[secret] = builder
	other := newCert(t, ecKey(t), certOptions{cn: "another CA", isCA: true})
	tokenPath := writeFile(t, t.TempDir(), "token", []byte("t"))
	client, err := NewKubeClient(KubernetesConfig{Server: api.URL, CAFile: writeFile(t, t.TempDir(), "ca.crt", certPEM(other)),
		TokenFile: tokenPath}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewKubeReviewer(client, 0, anyReviews(time.Now), time.Now).Authenticate(context.Background(), secret, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("got %v, want a certificate verification failure", err)
	}
}

func TestKubeClientWithAClientCertificate(t *testing.T) {
	caKey := ecKey(t)
	ca := newCert(t, caKey, certOptions{cn: "client CA", isCA: true})
	clientKey := ecKey(t)
	clientCert := newCert(t, clientKey, certOptions{cn: "token-server", parent: ca, parentKey: caKey,
		usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	api := newFakeAPI(t, func(s *httptest.Server) {
		s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	})
	api.users[secret] = builder
	dir := t.TempDir()
	client, err := NewKubeClient(KubernetesConfig{Server: api.URL, CAFile: api.caFile(t),
		ClientCert: writeFile(t, dir, "c.crt", certPEM(clientCert)), ClientKey: writeFile(t, dir, "c.key", pkcs8PEM(t, clientKey))}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	user, err := NewKubeReviewer(client, 0, anyReviews(time.Now), time.Now).Authenticate(context.Background(), secret, nil)
	if err != nil || user == nil || user.Username != builder.Username {
		t.Fatalf("got %#v, %v", user, err)
	}
	if _, bearers := api.seen(); bearers[0] != "" {
		t.Error("no bearer token with a client certificate")
	}
}

func TestNewKubeClientNamesTheField(t *testing.T) {
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.crt", certPEM(newCert(t, ecKey(t), certOptions{cn: "ca", isCA: true})))
	for name, c := range map[string]struct {
		cfg  KubernetesConfig
		want string
	}{
		"missing CA":      {KubernetesConfig{Server: "https://x", CAFile: dir + "/nope", TokenFile: ca}, "kubernetes.ca_file: cannot read"},
		"not a CA":        {KubernetesConfig{Server: "https://x", CAFile: writeFile(t, dir, "x", []byte("x")), TokenFile: ca}, "kubernetes.ca_file: "},
		"in-cluster CA":   {KubernetesConfig{Server: "https://x", CAFile: dir + "/nope", TokenFile: ca, InCluster: true}, "in-cluster service account ca_file"},
		"missing token":   {KubernetesConfig{Server: "https://x", CAFile: ca, TokenFile: dir + "/nope"}, "kubernetes.token_file: cannot read"},
		"empty token":     {KubernetesConfig{Server: "https://x", CAFile: ca, TokenFile: writeFile(t, dir, "empty", []byte("\n"))}, "is empty"},
		"bad client cert": {KubernetesConfig{Server: "https://x", CAFile: ca, ClientCert: ca, ClientKey: ca}, "kubernetes.client_cert and kubernetes.client_key"},
	} {
		if _, err := NewKubeClient(c.cfg, time.Now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}
