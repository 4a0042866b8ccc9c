package review

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/config"
	"github.com/segmented-registry/token-server/internal/credentials"
	"github.com/segmented-registry/token-server/internal/ratelimit"
	"github.com/segmented-registry/token-server/internal/testkit"
)

var builder = &ReviewedUser{Username: "system:serviceaccount:myproject:builder", UID: "uid-1",
	Groups: []string{"system:serviceaccounts", "system:authenticated"},
	Extra:  map[string][]string{"authentication.kubernetes.io/pod-name": {"build-1"}}}

func tokenClient(t *testing.T, api *testkit.FakeAPI, clock *testkit.Clock) (*KubeClient, string) {
	t.Helper()
	tokenPath := testkit.WriteFile(t, t.TempDir(), "token", []byte("server-token-1\n"))
	client, err := NewKubeClient(config.KubernetesConfig{Server: api.URL, CAFile: api.CAFile(t), TokenFile: tokenPath}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return client, tokenPath
}

// anyReviews is a server-wide TokenReview bucket no test of the cache or the client empties.
func anyReviews(clock func() time.Time) *ratelimit.Limiter {
	return ratelimit.New(20, 100, clock) // the configuration's default
}

// Tokens not in the cache share one server-wide bucket of TokenReviews: a flood of random bearer
// tokens is refused (with how long to wait) without reaching the API server; cached tokens cost
// nothing from it and are still accepted.
func TestKubeReviewerLimitsTheTokenReviewsOfTheServer(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	api.Users[testkit.Secret] = builder
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, ratelimit.New(2, 3, clock.Now), clock.Now) // 2 a second, 3 at once
	ctx := context.Background()
	if user, err := reviewer.Authenticate(ctx, testkit.Secret, nil); err != nil || user == nil {
		t.Fatalf("first review: %#v, %v", user, err)
	}
	for n := range 2 {
		if user, err := reviewer.Authenticate(ctx, fmt.Sprintf("random-%d", n), nil); user != nil || err != nil {
			t.Fatalf("within the burst: %#v, %v", user, err)
		}
	}
	for n := range 50 {
		_, err := reviewer.Authenticate(ctx, fmt.Sprintf("flood-%d", n), nil)
		var throttled *Throttled
		if !errors.Is(err, ErrTokenReviewsThrottled) || !errors.As(err, &throttled) || throttled.Wait != 500*time.Millisecond {
			t.Fatalf("token %d over the limit: %v", n, err)
		}
	}
	if user, err := reviewer.Authenticate(ctx, testkit.Secret, nil); err != nil || user == nil {
		t.Errorf("a cached token while the bucket is empty: %#v, %v", user, err)
	}
	if reviews, _ := api.Seen(); len(reviews) != 3 {
		t.Errorf("%d TokenReviews sent, want 3 (the burst): refused ones must not reach the API server", len(reviews))
	}
	clock.Advance(500 * time.Millisecond)
	if _, err := reviewer.Authenticate(ctx, "after-the-wait", nil); err != nil {
		t.Errorf("refilled: %v", err)
	}
}

func TestTTLCacheExpires(t *testing.T) {
	clock := testkit.NewClock(time.Unix(100, 0))
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
	clock := testkit.NewClock(time.Unix(100, 0))
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
	api := testkit.NewFakeAPI(t, nil)
	api.Users[testkit.Secret] = builder
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	for range 3 {
		user, err := reviewer.Authenticate(ctx, testkit.Secret, nil)
		if err != nil || !reflect.DeepEqual(user, builder) {
			t.Fatalf("got %#v, %v", user, err)
		}
	}
	if user, err := reviewer.Authenticate(ctx, "unknown-token", nil); user != nil || err != nil {
		t.Errorf("an unknown token: %#v, %v", user, err)
	}
	reviewer.Authenticate(ctx, "unknown-token", nil) // not authenticated: not cached
	reviews, bearers := api.Seen()
	if want := []string{"TokenReview", "TokenReview", "TokenReview"}; !reflect.DeepEqual(reviews, want) {
		t.Errorf("reviews %v: the second and third of the same token must come from the cache", reviews)
	}
	if bearers[0] != "server-token-1" {
		t.Errorf("the server's own token was not sent: %q", bearers[0])
	}
	if _, cached := reviewer.cache.data[credentials.Fingerprint(testkit.Secret)+" []"]; !cached {
		t.Errorf("the cache key is not sha256(token) and the audiences: %v", reviewer.cache.data)
	}
	clock.Advance(10 * time.Second)
	reviewer.Authenticate(ctx, testkit.Secret, nil)
	if reviews, _ := api.Seen(); len(reviews) != 4 {
		t.Errorf("an expired entry must be reviewed again: %v", reviews)
	}
}

// An answer with authenticated false is a refusal, whatever else it holds.
func TestKubeReviewerRefusesAnUnauthenticatedAnswer(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	api.Users[testkit.Secret] = builder
	api.Unauthenticated[testkit.Secret] = true
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	if user, err := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now).Authenticate(context.Background(), testkit.Secret, nil); user != nil || err != nil {
		t.Errorf("authenticated false: got %#v, %v", user, err)
	}
}

func TestKubeReviewerSendsAndChecksTheAudiences(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	api.Users[testkit.Secret] = builder
	api.AnswerAudiences[testkit.Secret] = []string{testkit.Audience}
	api.Users["api-token"] = builder // an authenticator that ignores spec.audiences
	api.AnswerAudiences["api-token"] = []string{"https://kubernetes.default.svc"}
	api.Users["no-audience"] = builder
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	audiences := []string{"other", testkit.Audience}
	if user, err := reviewer.Authenticate(ctx, testkit.Secret, audiences); err != nil || !reflect.DeepEqual(user, builder) {
		t.Fatalf("a token bound to one of the audiences: %#v, %v", user, err)
	}
	if got := api.TokenReviews[0]["audiences"]; !reflect.DeepEqual(got, []any{"other", testkit.Audience}) {
		t.Errorf("spec.audiences %#v", got)
	}
	for _, token := range []string{"api-token", "no-audience"} {
		if user, err := reviewer.Authenticate(ctx, token, audiences); user != nil || err != nil {
			t.Errorf("%s: answered with other audiences, got %#v, %v", token, user, err)
		}
	}
	// the same token for other audiences is another review, not the cached answer
	api.AnswerAudiences[testkit.Secret] = nil
	if user, _ := reviewer.Authenticate(ctx, testkit.Secret, []string{"elsewhere"}); user != nil {
		t.Errorf("the answer cached for %v was reused for other audiences", audiences)
	}
	if user, _ := reviewer.Authenticate(ctx, testkit.Secret, nil); user == nil {
		t.Error("no audiences: the API server's default audiences decide")
	}
	if _, sent := api.TokenReviews[4]["audiences"]; sent {
		t.Errorf("no audiences must send no spec.audiences: %#v", api.TokenReviews[4])
	}
}

func TestKubeReviewerSubjectAccessReview(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	api.Allowed[[4]string{builder.Username, "get", "imagestreams", "myproject"}] = true
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	attrs := access.ResourceAttributes{Group: "image.openshift.io", Resource: "imagestreams", Subresource: "layers",
		Namespace: "myproject", Name: "app", Verb: "get"}
	allowed, err := reviewer.Allowed(context.Background(), builder, attrs)
	if err != nil || !allowed {
		t.Fatalf("got %v, %v", allowed, err)
	}
	attrs.Verb = "update"
	if allowed, err := reviewer.Allowed(context.Background(), builder, attrs); err != nil || allowed {
		t.Errorf("update: got %v, %v", allowed, err)
	}
	spec := api.SARs[0]
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
	reviewer.Allowed(context.Background(), &ReviewedUser{Username: "u"}, access.ResourceAttributes{Group: "image.openshift.io", Resource: "images", Verb: "delete"})
	if got := api.SARs[2]; !reflect.DeepEqual(got, map[string]any{"user": "u",
		"resourceAttributes": map[string]any{"group": "image.openshift.io", "resource": "images", "verb": "delete"}}) {
		t.Errorf("spec %#v", got)
	}
}

func TestKubeClientRereadsARotatedTokenFile(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, tokenPath := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 0, anyReviews(clock.Now), clock.Now)
	ctx := context.Background()
	reviewer.Authenticate(ctx, "a", nil)
	os.WriteFile(tokenPath, []byte("server-token-2"), 0o600)
	clock.Advance(59 * time.Second)
	reviewer.Authenticate(ctx, "a", nil)
	clock.Advance(time.Second)
	reviewer.Authenticate(ctx, "a", nil)
	_, bearers := api.Seen()
	if want := []string{"server-token-1", "server-token-1", "server-token-2"}; !reflect.DeepEqual(bearers, want) {
		t.Errorf("bearers %v, want %v (read again after a minute)", bearers, want)
	}
}

func TestKubeClientRereadsTheTokenFileOnceAfterA401(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, tokenPath := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 0, anyReviews(clock.Now), clock.Now)
	os.WriteFile(tokenPath, []byte("server-token-2"), 0o600)
	api.Status, api.Message = http.StatusUnauthorized, "Unauthorized"
	_, err := reviewer.Authenticate(context.Background(), "a", nil)
	_, bearers := api.Seen()
	if want := []string{"server-token-1", "server-token-2"}; !reflect.DeepEqual(bearers, want) {
		t.Errorf("bearers %v, want %v", bearers, want)
	}
	if !errors.Is(err, ErrTokenReview) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("got %v", err)
	}
}

func TestKubeReviewerErrorsNameTheCauseButNeverTheToken(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	clock := testkit.NewClock(time.Unix(1000, 0))
	client, _ := tokenClient(t, api, clock)
	reviewer := NewKubeReviewer(client, 10*time.Second, anyReviews(clock.Now), clock.Now)
	api.Status = http.StatusForbidden
	api.Message = `tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:r:token-server" cannot create resource "tokenreviews" (token ` + testkit.Secret + `)`
	_, err := reviewer.Authenticate(context.Background(), testkit.Secret, nil)
	if !errors.Is(err, ErrTokenReview) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"TokenReview", "HTTP 403", "cannot create resource", "<token>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), testkit.Secret) {
		t.Errorf("%q shows the token", err)
	}
	api.Message = "boom"
	if _, err := reviewer.Allowed(context.Background(), builder, access.ResourceAttributes{Verb: "get"}); !errors.Is(err, ErrSubjectAccessReview) || !errors.Is(err, ErrAPIStatus) {
		t.Errorf("got %v", err)
	}
	api.Close()
	if _, err := reviewer.Authenticate(context.Background(), testkit.Secret, nil); !errors.Is(err, ErrTokenReview) {
		t.Errorf("an unreachable API server: %v", err)
	}
}

func TestKubeClientAlwaysVerifiesTheAPIServer(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	api.Users[testkit.Secret] = builder
	other := testkit.NewCert(t, testkit.ECKey(t), testkit.CertOptions{CN: "another CA", IsCA: true})
	tokenPath := testkit.WriteFile(t, t.TempDir(), "token", []byte("t"))
	client, err := NewKubeClient(config.KubernetesConfig{Server: api.URL, CAFile: testkit.WriteFile(t, t.TempDir(), "ca.crt", testkit.CertPEM(other)),
		TokenFile: tokenPath}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewKubeReviewer(client, 0, anyReviews(time.Now), time.Now).Authenticate(context.Background(), testkit.Secret, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("got %v, want a certificate verification failure", err)
	}
}

func TestKubeClientWithAClientCertificate(t *testing.T) {
	caKey := testkit.ECKey(t)
	ca := testkit.NewCert(t, caKey, testkit.CertOptions{CN: "client CA", IsCA: true})
	clientKey := testkit.ECKey(t)
	clientCert := testkit.NewCert(t, clientKey, testkit.CertOptions{CN: "token-server", Parent: ca, ParentKey: caKey,
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	api := testkit.NewFakeAPI(t, func(s *httptest.Server) {
		s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	})
	api.Users[testkit.Secret] = builder
	dir := t.TempDir()
	client, err := NewKubeClient(config.KubernetesConfig{Server: api.URL, CAFile: api.CAFile(t),
		ClientCert: testkit.WriteFile(t, dir, "c.crt", testkit.CertPEM(clientCert)), ClientKey: testkit.WriteFile(t, dir, "c.key", testkit.PKCS8PEM(t, clientKey))}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	user, err := NewKubeReviewer(client, 0, anyReviews(time.Now), time.Now).Authenticate(context.Background(), testkit.Secret, nil)
	if err != nil || user == nil || user.Username != builder.Username {
		t.Fatalf("got %#v, %v", user, err)
	}
	if _, bearers := api.Seen(); bearers[0] != "" {
		t.Error("no bearer token with a client certificate")
	}
}

func TestNewKubeClientNamesTheField(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.WriteFile(t, dir, "ca.crt", testkit.CertPEM(testkit.NewCert(t, testkit.ECKey(t), testkit.CertOptions{CN: "ca", IsCA: true})))
	for name, c := range map[string]struct {
		cfg  config.KubernetesConfig
		want string
	}{
		"missing CA":      {config.KubernetesConfig{Server: "https://x", CAFile: dir + "/nope", TokenFile: ca}, "kubernetes.ca_file: cannot read"},
		"not a CA":        {config.KubernetesConfig{Server: "https://x", CAFile: testkit.WriteFile(t, dir, "x", []byte("x")), TokenFile: ca}, "kubernetes.ca_file: "},
		"in-cluster CA":   {config.KubernetesConfig{Server: "https://x", CAFile: dir + "/nope", TokenFile: ca, InCluster: true}, "in-cluster service account ca_file"},
		"missing token":   {config.KubernetesConfig{Server: "https://x", CAFile: ca, TokenFile: dir + "/nope"}, "kubernetes.token_file: cannot read"},
		"empty token":     {config.KubernetesConfig{Server: "https://x", CAFile: ca, TokenFile: testkit.WriteFile(t, dir, "empty", []byte("\n"))}, "is empty"},
		"bad client cert": {config.KubernetesConfig{Server: "https://x", CAFile: ca, ClientCert: ca, ClientKey: ca}, "kubernetes.client_cert and kubernetes.client_key"},
	} {
		if _, err := NewKubeClient(c.cfg, time.Now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}
