// Package config reads and validates the token server's configuration file.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmented-registry/token-server/internal/access"
)

// The configuration file: JSON, relative paths resolved against the file's folder.
//
//	{"listen": ":8080",
//	 "tls_cert": "tls.crt", "tls_key": "tls.key",
//	 "signing_cert": "signing.crt", "signing_key": "signing.key",
//	 "token_ttl_seconds": 300, "tokenreview_cache_seconds": 10,
//	 "max_scopes_per_request": 64, "reviews_per_second_per_user": 50, "review_burst_per_user": 200,
//	 "token_reviews_per_second": 20, "token_review_burst": 100,
//	 "kubernetes": {"server": "https://api.example:6443", "ca_file": "ca.crt",
//	                "token_file": "token" | "client_cert": "c.crt", "client_key": "c.key"},
//	 "services": {"env-test": {"issuer": "segmented-registry", "namespace": "test",
//	                           "audiences": ["segmented.registry/token-server"]},
//	              "integrated": {"issuer": "segmented-registry", "namespace_from": "repository"}}}

const (
	defaultListen      = ":8080"
	defaultTokenTTL    = 300
	minTokenTTL        = 60
	maxTokenTTL        = 86400
	defaultReviewCache = 10.0
	maxReviewCache     = 300.0
	serviceAccountDir  = "/var/run/secrets/kubernetes.io/serviceaccount" // a pod's token and CA
	defaultMaxScopes   = 64
	maxMaxScopes       = 1024
	defaultReviewRate  = 50.0
	maxReviewRate      = 100000.0
	defaultReviewBurst = 200
	maxReviewBurst     = 1000000
	// the server-wide bucket over the TokenReviews of tokens not in the cache (review.go)
	defaultTokenReviewRate  = 20.0
	defaultTokenReviewBurst = 100
	// reviewsPerScope: the most SubjectAccessReviews one scope can need (pull, push, delete), so
	// a request needs at most max_scopes_per_request * reviewsPerScope + 1 (its TokenReview).
	reviewsPerScope = 3
)

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Kinds of configuration problems; each text is a part of the message that names the key and the
// fix.
var (
	ErrNotJSON    = errors.New("not valid JSON")
	ErrNotObject  = errors.New("the configuration must be a JSON object")
	ErrUnknownKey = errors.New("unknown key")
	ErrRequired   = errors.New("is required")
)

// Config is a validated configuration.
type Config struct {
	Listen                  string
	TLSCert, TLSKey         string // both empty: plain HTTP
	SigningCert, SigningKey string
	TokenTTL                time.Duration
	TokenReviewCache        time.Duration
	MaxScopes               int
	ReviewRate              float64 // reviews a second per user
	ReviewBurst             int
	TokenReviewRate         float64 // TokenReviews a second, server-wide
	TokenReviewBurst        int
	Kubernetes              KubernetesConfig
	Services                map[string]access.Service
}

// KubernetesConfig is how the server reaches the registry cluster's API server. InCluster: from
// the pod's service account (KUBERNETES_SERVICE_HOST/PORT and its token and CA files).
type KubernetesConfig struct {
	Server                string
	CAFile                string
	TokenFile             string
	ClientCert, ClientKey string
	InCluster             bool
}

// TLS tells whether the server itself serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" }

var topKeys = []string{"listen", "tls_cert", "tls_key", "signing_cert", "signing_key", "token_ttl_seconds",
	"tokenreview_cache_seconds", "max_scopes_per_request", "reviews_per_second_per_user", "review_burst_per_user",
	"token_reviews_per_second", "token_review_burst",
	"kubernetes", "services"}
var kubernetesKeys = []string{"server", "ca_file", "token_file", "client_cert", "client_key"}
var serviceKeys = []string{"issuer", "namespace_from", "namespace", "audiences"}

// Load reads and validates the configuration file at path. getenv reads the environment
// (KUBERNETES_SERVICE_HOST/PORT when the kubernetes block is absent).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data, filepath.Dir(abs), getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration %s:\n%w", path, err)
	}
	return cfg, nil
}

// Parse validates a configuration document; every problem is reported (errors.Join), each
// naming the field and the fix. Relative paths are resolved against baseDir.
func Parse(data []byte, baseDir string, getenv func(string) string) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(data, err)
	}
	if raw == nil {
		return nil, ErrNotObject
	}
	p := &parser{base: baseDir}
	p.unknown("", raw, topKeys)
	cfg := &Config{
		Listen:           p.listen(raw),
		SigningCert:      p.path(raw, "", "signing_cert", true, "the PEM signing certificate (leaf first) whose chain the registries trust in auth.token.rootcertbundle"),
		SigningKey:       p.path(raw, "", "signing_key", true, "the PEM RSA private key of signing_cert"),
		TLSCert:          p.path(raw, "", "tls_cert", false, ""),
		TLSKey:           p.path(raw, "", "tls_key", false, ""),
		TokenTTL:         time.Duration(p.integer(raw, "token_ttl_seconds", "a whole number of seconds", defaultTokenTTL, minTokenTTL, maxTokenTTL)) * time.Second,
		TokenReviewCache: time.Duration(p.number(raw, "tokenreview_cache_seconds", "a number of seconds from 0 (no cache)", defaultReviewCache, 0, maxReviewCache) * float64(time.Second)),
		MaxScopes:        int(p.integer(raw, "max_scopes_per_request", "a whole number", defaultMaxScopes, 1, maxMaxScopes)),
		ReviewRate:       p.number(raw, "reviews_per_second_per_user", "a number of reviews a second above 0", defaultReviewRate, math.SmallestNonzeroFloat64, maxReviewRate),
		ReviewBurst:      int(p.integer(raw, "review_burst_per_user", "a whole number of reviews", defaultReviewBurst, 1, maxReviewBurst)),
		TokenReviewRate:  p.number(raw, "token_reviews_per_second", "a number of TokenReviews a second above 0", defaultTokenReviewRate, math.SmallestNonzeroFloat64, maxReviewRate),
		TokenReviewBurst: int(p.integer(raw, "token_review_burst", "a whole number of TokenReviews", defaultTokenReviewBurst, 1, maxReviewBurst)),
	}
	if most := cfg.MaxScopes*reviewsPerScope + 1; cfg.ReviewBurst < most {
		p.fail("review_burst_per_user: %d is less than the %d reviews a request of max_scopes_per_request (%d) scopes can need; raise review_burst_per_user to at least %d or lower max_scopes_per_request",
			cfg.ReviewBurst, most, cfg.MaxScopes, most)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		p.fail("tls_cert and tls_key: set both (HTTPS) or neither (plain HTTP, behind an edge Route)")
	}
	cfg.Kubernetes = p.kubernetes(raw, getenv)
	cfg.Services = p.services(raw)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

type parser struct {
	base string
	errs []error
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// unknown refuses the keys of raw that are not known, each by name with the keys there are.
// The document is read into maps of raw values rather than decoded into structs with
// json.Decoder.DisallowUnknownFields: that stops at the first unknown field with a message
// naming neither the known keys nor the fix, where every problem is reported here at once.
func (p *parser) unknown(prefix string, raw map[string]json.RawMessage, known []string) {
	var extra []string
	for key := range raw {
		if !slices.Contains(known, key) {
			extra = append(extra, key)
		}
	}
	slices.Sort(extra)
	for _, key := range extra {
		p.fail("%s%s: %w; the keys are %s", prefix, key, ErrUnknownKey, strings.Join(known, ", "))
	}
}

func (p *parser) str(raw map[string]json.RawMessage, prefix, key string) (string, bool) {
	value, present := raw[key]
	if !present || isNull(value) {
		return "", false
	}
	var s string
	if err := json.Unmarshal(value, &s); err != nil {
		p.fail("%s%s: must be a string, not %s", prefix, key, value)
		return "", false
	}
	return s, true
}

// path returns the key's file path, resolved against the configuration's folder.
func (p *parser) path(raw map[string]json.RawMessage, prefix, key string, required bool, what string) string {
	s, present := p.str(raw, prefix, key)
	if !present || s == "" {
		if required {
			p.fail("%s%s %w: the path of %s", prefix, key, ErrRequired, what)
		}
		return ""
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.base, s)
	}
	return filepath.Clean(s)
}

func (p *parser) listen(raw map[string]json.RawMessage) string {
	s, present := p.str(raw, "", "listen")
	if !present {
		return defaultListen
	}
	_, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		p.fail("listen: %q is not host:port (port 1-65535); for instance \":8080\" (every address) or \"127.0.0.1:5110\"", s)
		return ""
	}
	return s
}

// integer reads a whole number from lo to hi; what says what it counts, for the error.
func (p *parser) integer(raw map[string]json.RawMessage, key, what string, def, lo, hi int64) int64 {
	value, present := raw[key]
	if !present || isNull(value) {
		return def
	}
	var n int64
	if err := json.Unmarshal(value, &n); err != nil || n < lo || n > hi {
		p.fail("%s: must be %s from %d to %d, not %s", key, what, lo, hi, value)
		return def
	}
	return n
}

// number reads a number from lo to hi; what says what it counts, for the error.
func (p *parser) number(raw map[string]json.RawMessage, key, what string, def, lo, hi float64) float64 {
	value, present := raw[key]
	if !present || isNull(value) {
		return def
	}
	var n float64
	if err := json.Unmarshal(value, &n); err != nil || math.IsNaN(n) || n < lo || n > hi {
		p.fail("%s: must be %s, at most %g, not %s", key, what, hi, value)
		return def
	}
	return n
}

func (p *parser) object(raw map[string]json.RawMessage, prefix, key string) (map[string]json.RawMessage, bool) {
	value, present := raw[key]
	if !present || isNull(value) {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(value, &obj); err != nil {
		p.fail("%s%s: must be an object, not %s", prefix, key, value)
		return nil, false
	}
	return obj, true
}

func (p *parser) kubernetes(raw map[string]json.RawMessage, getenv func(string) string) KubernetesConfig {
	obj, present := p.object(raw, "", "kubernetes")
	if !present {
		host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			p.fail("kubernetes: absent, so the server runs in-cluster, but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; outside a pod give kubernetes.server, kubernetes.ca_file and kubernetes.token_file (or client_cert and client_key)")
			return KubernetesConfig{}
		}
		return KubernetesConfig{
			Server:    "https://" + net.JoinHostPort(host, port),
			CAFile:    filepath.Join(serviceAccountDir, "ca.crt"),
			TokenFile: filepath.Join(serviceAccountDir, "token"),
			InCluster: true,
		}
	}
	p.unknown("kubernetes.", obj, kubernetesKeys)
	k := KubernetesConfig{
		CAFile:     p.path(obj, "kubernetes.", "ca_file", true, "the PEM CA bundle that signed the API server's certificate (TLS to the API server is always verified)"),
		TokenFile:  p.path(obj, "kubernetes.", "token_file", false, ""),
		ClientCert: p.path(obj, "kubernetes.", "client_cert", false, ""),
		ClientKey:  p.path(obj, "kubernetes.", "client_key", false, ""),
	}
	server, _ := p.str(obj, "kubernetes.", "server")
	if u, err := url.Parse(server); server == "" || err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		p.fail("kubernetes.server: %q is not the API server's https URL; for instance \"https://api.cluster.example.com:6443\"", server)
	} else {
		k.Server = strings.TrimSuffix(server, "/")
	}
	if (k.ClientCert == "") != (k.ClientKey == "") {
		p.fail("kubernetes.client_cert and kubernetes.client_key: set both or neither")
	}
	switch {
	case k.TokenFile != "" && k.ClientCert != "":
		p.fail("kubernetes: set token_file or client_cert and client_key, not both")
	case k.TokenFile == "" && k.ClientCert == "" && k.ClientKey == "":
		p.fail("kubernetes: no credentials; set token_file (a service account token of the registry cluster) or client_cert and client_key")
	}
	return k
}

func (p *parser) services(raw map[string]json.RawMessage) map[string]access.Service {
	obj, ok := p.object(raw, "", "services")
	if _, wrongType := raw["services"]; wrongType && !ok && !isNull(raw["services"]) {
		return nil // reported by object
	}
	if len(obj) == 0 {
		p.fail(`services %w: one entry per registry, named like the registry's auth.token.service, e.g. {"integrated": {"issuer": "segmented-registry", "namespace_from": "repository"}, "env-test": {"issuer": "segmented-registry", "namespace": "test"}}`, ErrRequired)
		return nil
	}
	services := map[string]access.Service{}
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		prefix := "services." + name
		svc, ok := p.object(obj, "services.", name)
		if !ok {
			if isNull(obj[name]) {
				p.fail("%s: must be an object with issuer and namespace or namespace_from", prefix)
			}
			continue
		}
		if name == "" {
			p.fail("services: a service name is empty; use the registry's auth.token.service")
		}
		p.unknown(prefix+".", svc, serviceKeys)
		issuer, _ := p.str(svc, prefix+".", "issuer")
		if issuer == "" {
			p.fail("%s.issuer %w: the iss of its tokens, equal to the registry's auth.token.issuer", prefix, ErrRequired)
		}
		from, hasFrom := p.str(svc, prefix+".", "namespace_from")
		namespace, hasNamespace := p.str(svc, prefix+".", "namespace")
		switch {
		case hasFrom == hasNamespace:
			p.fail(`%s: set exactly one of "namespace_from": "repository" (the integrated registry: the repository's first segment is the namespace) or "namespace": "<namespace>" (an environment registry)`, prefix)
		case hasFrom && from != "repository":
			p.fail(`%s.namespace_from: must be "repository", not %q`, prefix, from)
		case hasNamespace && (len(namespace) > 63 || !dns1123Label.MatchString(namespace)):
			p.fail("%s.namespace: %q is not a namespace name (a DNS-1123 label: lower-case letters, digits and dashes, at most 63)", prefix, namespace)
		}
		services[name] = access.Service{Name: name, Issuer: issuer, NamespaceFromRepository: hasFrom, Namespace: namespace,
			Audiences: p.audiences(svc, prefix)}
	}
	return services
}

// audiences reads a service's optional "audiences": a non-empty list of non-empty strings.
func (p *parser) audiences(svc map[string]json.RawMessage, prefix string) []string {
	value, present := svc["audiences"]
	if !present || isNull(value) {
		return nil
	}
	var list []string
	if err := json.Unmarshal(value, &list); err != nil || len(list) == 0 || slices.Contains(list, "") {
		p.fail(`%s.audiences: must be a list of audience names a presented token must be bound to, e.g. ["segmented.registry/token-server"], not %s; leave it out to accept the API server's default audiences`, prefix, value)
		return nil
	}
	return list
}

func isNull(value json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(value), []byte("null")) }

// jsonError says where a document stops being JSON.
func jsonError(data []byte, err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line := 1 + bytes.Count(data[:min(int(syntax.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("%w at line %d: %v (comments are not allowed)", ErrNotJSON, line, err)
	}
	return fmt.Errorf("%w: %v", ErrNotObject, err)
}
