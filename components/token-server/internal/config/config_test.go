package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
	"github.com/segmented-registry/token-server/internal/testkit"
)

func rawConfig(over map[string]any) []byte {
	raw := map[string]any{
		"listen": "127.0.0.1:5110", "tls_cert": "tls.crt", "tls_key": "/abs/tls.key",
		"signing_cert": "s.crt", "signing_key": "keys/s.key", "token_ttl_seconds": 300,
		"max_scopes_per_request": 10, "reviews_per_second_per_user": 2.5, "review_burst_per_user": 31,
		"token_reviews_per_second": 7.5, "token_review_burst": 40,
		"kubernetes": map[string]any{"server": "https://127.0.0.1:16443", "ca_file": "ca.crt",
			"client_cert": "admin.crt", "client_key": "admin.key"},
		"services": map[string]any{
			"integrated": map[string]any{"issuer": "i", "namespace_from": "repository"},
			"env-test":   map[string]any{"issuer": "i", "namespace": "test", "audiences": []string{"a1", "a2"}},
		},
	}
	for k, v := range over {
		if v == nil {
			delete(raw, k)
		} else {
			raw[k] = v
		}
	}
	data, _ := json.Marshal(raw)
	return data
}

func TestParseConfig(t *testing.T) {
	cfg, err := Parse(rawConfig(nil), "/etc/ts", testkit.NoEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: "127.0.0.1:5110", TLSCert: "/etc/ts/tls.crt", TLSKey: "/abs/tls.key",
		SigningCert: "/etc/ts/s.crt", SigningKey: "/etc/ts/keys/s.key",
		TokenTTL: 300 * time.Second, TokenReviewCache: 10 * time.Second,
		MaxScopes: 10, ReviewRate: 2.5, ReviewBurst: 31, TokenReviewRate: 7.5, TokenReviewBurst: 40,
		Kubernetes: KubernetesConfig{Server: "https://127.0.0.1:16443", CAFile: "/etc/ts/ca.crt",
			ClientCert: "/etc/ts/admin.crt", ClientKey: "/etc/ts/admin.key"},
		Services: map[string]access.Service{
			"integrated": {Name: "integrated", Issuer: "i", NamespaceFromRepository: true},
			"env-test":   {Name: "env-test", Issuer: "i", Namespace: "test", Audiences: []string{"a1", "a2"}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %#v\nwant %#v", cfg, want)
	}
	if !cfg.TLS() {
		t.Error("TLS() with tls_cert and tls_key")
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := Parse(rawConfig(map[string]any{"listen": nil, "tls_cert": nil, "tls_key": nil,
		"token_ttl_seconds": nil, "max_scopes_per_request": nil, "reviews_per_second_per_user": nil, "review_burst_per_user": nil,
		"token_reviews_per_second": nil, "token_review_burst": nil,
		"kubernetes": map[string]any{"server": "https://api.example:6443/", "ca_file": "/ca",
			"token_file": "/token"}}), "/etc/ts", testkit.NoEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.TLS() || cfg.TokenTTL != 300*time.Second || cfg.TokenReviewCache != 10*time.Second ||
		cfg.MaxScopes != 64 || cfg.ReviewRate != 50 || cfg.ReviewBurst != 200 || cfg.TokenReviewRate != 20 || cfg.TokenReviewBurst != 100 {
		t.Errorf("defaults: %#v", cfg)
	}
	if cfg.Kubernetes.Server != "https://api.example:6443" || cfg.Kubernetes.TokenFile != "/token" {
		t.Errorf("kubernetes: %#v", cfg.Kubernetes)
	}
	cfg, err = Parse(rawConfig(map[string]any{"tokenreview_cache_seconds": 0.5}), "/", testkit.NoEnv)
	if err != nil || cfg.TokenReviewCache != 500*time.Millisecond {
		t.Errorf("tokenreview_cache_seconds: %v %v", cfg, err)
	}
}

func TestParseConfigInCluster(t *testing.T) {
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
	cfg, err := Parse(rawConfig(map[string]any{"kubernetes": nil}), "/", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := KubernetesConfig{Server: "https://[fd00::1]:443", InCluster: true,
		CAFile:    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
		TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"}
	if cfg.Kubernetes != want {
		t.Errorf("got %#v", cfg.Kubernetes)
	}
	_, err = Parse(rawConfig(map[string]any{"kubernetes": nil}), "/", testkit.NoEnv)
	if err == nil || !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
		t.Errorf("outside a pod without a kubernetes block: %v", err)
	}
}

func TestParseConfigRejectsBadServices(t *testing.T) {
	for want, services := range map[string]any{
		"services.x: set exactly one of":                   map[string]any{"x": map[string]any{"issuer": "i"}},
		"services.x: set exactly one":                      map[string]any{"x": map[string]any{"issuer": "i", "namespace": "test", "namespace_from": "repository"}},
		`services.x.namespace_from: must be "repository"`:  map[string]any{"x": map[string]any{"issuer": "i", "namespace_from": "path"}},
		"services.x.issuer is required":                    map[string]any{"x": map[string]any{"issuer": "", "namespace": "test"}},
		"services.x.namespace: \"Bad_NS\"":                 map[string]any{"x": map[string]any{"issuer": "i", "namespace": "Bad_NS"}},
		"services.x: must be an object":                    map[string]any{"x": "i"},
		"services.x.namespace: must be a string":           map[string]any{"x": map[string]any{"issuer": "i", "namespace": 5}},
		"services.x.audiences: must be a list":             map[string]any{"x": map[string]any{"issuer": "i", "namespace": "t", "audiences": "a"}},
		"services.x.audiences: must be a list of audience": map[string]any{"x": map[string]any{"issuer": "i", "namespace": "t", "audiences": []string{}}},
		"not [\"\"]":                  map[string]any{"x": map[string]any{"issuer": "i", "namespace": "t", "audiences": []string{""}}},
		"services is required":        map[string]any{},
		"services: must be an object": []any{"x"},
	} {
		_, err := Parse(rawConfig(map[string]any{"services": services}), "/", testkit.NoEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("services %v: got %v, want %q", services, err, want)
		}
	}
	if _, err := Parse(rawConfig(map[string]any{"services": nil}), "/", testkit.NoEnv); err == nil || !strings.Contains(err.Error(), "services is required") {
		t.Errorf("no services: %v", err)
	}
}

func TestParseConfigRejectsBadValuesNamingTheField(t *testing.T) {
	for want, over := range map[string]map[string]any{
		"listen: \"nope\" is not host:port":                                                                              {"listen": "nope"},
		"listen: \"127.0.0.1:0\"":                                                                                        {"listen": "127.0.0.1:0"},
		"token_ttl_seconds: must be a whole number":                                                                      {"token_ttl_seconds": 5},
		"token_ttl_seconds: must be a whole number of seconds from 60 to 86400, not 90.5":                                {"token_ttl_seconds": 90.5},
		"tokenreview_cache_seconds: must be a number":                                                                    {"tokenreview_cache_seconds": -1},
		"max_scopes_per_request: must be a whole number from 1 to 1024, not 0":                                           {"max_scopes_per_request": 0},
		"reviews_per_second_per_user: must be a number of reviews a second above 0":                                      {"reviews_per_second_per_user": 0},
		"review_burst_per_user: must be a whole number of reviews from 1":                                                {"review_burst_per_user": 1.5},
		"review_burst_per_user: 30 is less than the 31 reviews a request of max_scopes_per_request (10) scopes can need": {"review_burst_per_user": 30},
		"token_reviews_per_second: must be a number of TokenReviews a second above 0":                                    {"token_reviews_per_second": 0},
		"token_review_burst: must be a whole number of TokenReviews from 1":                                              {"token_review_burst": 0},
		"tls_cert and tls_key: set both":                                                                                 {"tls_key": nil},
		"signing_cert is required":                                                                                       {"signing_cert": nil},
		"signing_key is required":                                                                                        {"signing_key": ""},
		"signing_cert: must be a string":                                                                                 {"signing_cert": 1},
		"kubernetes.server: \"http://api:6443\"":                                                                         {"kubernetes": map[string]any{"server": "http://api:6443", "ca_file": "c", "token_file": "t"}},
		"kubernetes.server: \"\"":                                                                                        {"kubernetes": map[string]any{"ca_file": "c", "token_file": "t"}},
		"kubernetes.ca_file is required":                                                                                 {"kubernetes": map[string]any{"server": "https://a", "token_file": "t"}},
		"kubernetes: no credentials":                                                                                     {"kubernetes": map[string]any{"server": "https://a", "ca_file": "c"}},
		"kubernetes: set token_file or client_cert":                                                                      {"kubernetes": map[string]any{"server": "https://a", "ca_file": "c", "token_file": "t", "client_cert": "c", "client_key": "k"}},
		"kubernetes.client_cert and kubernetes.client_key: set both":                                                     {"kubernetes": map[string]any{"server": "https://a", "ca_file": "c", "client_cert": "c"}},
		"kubernetes: must be an object":                                                                                  {"kubernetes": "https://a"},
	} {
		_, err := Parse(rawConfig(over), "/", testkit.NoEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", over, err, want)
		}
	}
}

func TestParseConfigReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Parse(rawConfig(map[string]any{"listen": "x", "signing_key": nil, "services": map[string]any{}}), "/", testkit.NoEnv)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"listen:", "signing_key is required", "services is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if !errors.Is(err, ErrRequired) {
		t.Errorf("%v is not ErrRequired", err)
	}
}

// Keys the configuration does not know are refused, every one of them, each named with its
// place and the keys there are: a misspelt key is never silently ignored.
func TestParseConfigRefusesUnknownKeysNamingEach(t *testing.T) {
	for name, over := range map[string]map[string]any{
		"tls_certificate":    {"tls_certificate": "x"},
		"kubernetes.context": {"kubernetes": map[string]any{"server": "https://a", "ca_file": "c", "token_file": "t", "context": "x"}},
		"services.x.extra":   {"services": map[string]any{"x": map[string]any{"issuer": "i", "namespace": "t", "extra": 1}}},
	} {
		_, err := Parse(rawConfig(over), "/", testkit.NoEnv)
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), name+": unknown key; the keys are ") {
			t.Errorf("%s: got %v, want ErrUnknownKey naming it", name, err)
		}
	}
	_, err := Parse(rawConfig(map[string]any{"listn": ":8080", "signing_crt": "s.crt"}), "/", testkit.NoEnv)
	for _, name := range []string{"listn", "signing_crt"} {
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), name+": unknown key") {
			t.Errorf("%s: got %v, want every unknown key named", name, err)
		}
	}
	path := testkit.WriteFile(t, t.TempDir(), "config.json", rawConfig(map[string]any{"listn": ":8080"}))
	if _, err := Load(path, testkit.NoEnv); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "listn") {
		t.Errorf("Load: got %v, want ErrUnknownKey naming listn", err)
	}
}

func TestParseConfigNamesWhereTheJSONBreaks(t *testing.T) {
	_, err := Parse([]byte("{\n \"listen\": \":8080\", # a comment\n}"), "/", testkit.NoEnv)
	if !errors.Is(err, ErrNotJSON) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v", err)
	}
	if _, err := Parse([]byte(`["x"]`), "/", testkit.NoEnv); !errors.Is(err, ErrNotObject) {
		t.Errorf("got %v", err)
	}
	if _, err := Parse([]byte(`null`), "/", testkit.NoEnv); !errors.Is(err, ErrNotObject) {
		t.Errorf("got %v", err)
	}
}

func TestLoadConfigResolvesPathsAgainstTheFilesFolder(t *testing.T) {
	dir := t.TempDir()
	path := testkit.WriteFile(t, dir, "config.json", rawConfig(nil))
	cfg, err := Load(path, testkit.NoEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SigningCert != filepath.Join(dir, "s.crt") || cfg.Kubernetes.CAFile != filepath.Join(dir, "ca.crt") {
		t.Errorf("paths: %s %s", cfg.SigningCert, cfg.Kubernetes.CAFile)
	}
	os.WriteFile(path, rawConfig(map[string]any{"listen": "x"}), 0o600)
	if _, err := Load(path, testkit.NoEnv); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("the error must name the file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "nope.json"), testkit.NoEnv); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a missing file")
	}
}
