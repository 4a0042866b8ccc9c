package review

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmented-registry/token-server/internal/config"
)

// The connection to the registry cluster's API server: TLS always verified against the configured
// CA, authenticated by a client certificate or by a bearer token file re-read every minute (a
// pod's bound service account token rotates).

const (
	apiTimeout     = 10 * time.Second
	tokenRefresh   = time.Minute
	maxAPIResponse = 1 << 20
	apiContentType = "application/json"
)

// KubeClient creates review objects on the API server.
type KubeClient struct {
	server string
	http   *http.Client
	token  *tokenFile // nil when a client certificate authenticates
}

// NewKubeClient reads the CA, the client certificate or the token once, so that a wrong path
// stops the server before it listens; errors name the configuration field.
func NewKubeClient(cfg config.KubernetesConfig, clock func() time.Time) (*KubeClient, error) {
	field := func(name string) string {
		if cfg.InCluster {
			return "in-cluster service account " + name + " (kubernetes block absent; is automountServiceAccountToken false?)"
		}
		return "kubernetes." + name
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read %s: %w", field("ca_file"), cfg.CAFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate; give the CA bundle that signed the API server's certificate", field("ca_file"), cfg.CAFile)
	}
	tlsConfig := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	client := &KubeClient{server: cfg.Server}
	if cfg.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.client_cert and kubernetes.client_key (%s, %s): %w", cfg.ClientCert, cfg.ClientKey, err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	if cfg.TokenFile != "" {
		client.token = &tokenFile{path: cfg.TokenFile, clock: clock}
		if _, err := client.token.get(); err != nil {
			return nil, fmt.Errorf("%s: %w", field("token_file"), err)
		}
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: apiTimeout,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	client.http = &http.Client{Transport: transport, Timeout: apiTimeout}
	return client, nil
}

// Create POSTs object to path and decodes the API server's answer into out. Its errors say why
// the API server gave no answer and never hold the request body; the caller names the review.
func (c *KubeClient) Create(ctx context.Context, path string, object, out any) error {
	body, err := json.Marshal(object)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		status, data, err := c.post(ctx, path, body)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && c.token != nil && attempt == 0 {
			c.token.expire() // rotated since the last read: read it again, once
			continue
		}
		if status != http.StatusCreated && status != http.StatusOK {
			return fmt.Errorf("the API server %s %w %d: %s", c.server, ErrAPIStatus, status, statusMessage(status, data))
		}
		// the API server's objects carry more than out reads (metadata, spec, fields of later
		// versions): unknown fields are tolerated, unlike in the token server's own configuration
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the API server %s %w: %v", c.server, ErrNotJSON, err)
		}
		return nil
	}
}

func (c *KubeClient) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", apiContentType)
	req.Header.Set("Accept", apiContentType)
	if c.token != nil {
		token, err := c.token.get()
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer of %s: %w", c.server, err)
	}
	return resp.StatusCode, data, nil
}

// statusMessage is the message of a metav1.Status answer (for instance why RBAC refused), else
// the HTTP status text. The Status's other fields are tolerated, as in every API server answer.
func statusMessage(code int, data []byte) string {
	var status struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &status) == nil && status.Message != "" {
		return status.Message
	}
	return http.StatusText(code)
}

// tokenFile is a bearer token read from a file, read again when a minute has passed.
type tokenFile struct {
	path   string
	clock  func() time.Time
	mu     sync.Mutex
	value  string
	readAt time.Time
}

func (t *tokenFile) get() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	if t.value != "" && now.Sub(t.readAt) < tokenRefresh {
		return t.value, nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return "", fmt.Errorf("cannot read the token: %w", err)
	}
	value := strings.TrimSpace(string(data))
	if value == "" {
		return "", fmt.Errorf("the token file %s is empty", t.path)
	}
	t.value, t.readAt = value, now
	return value, nil
}

func (t *tokenFile) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readAt = time.Time{}
}
