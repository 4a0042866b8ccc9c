// Package registry is the copier's client of the OCI distribution API: manifests and blobs by
// digest, cross-repository mounts and streamed uploads, bearer tokens from the registry's
// realm (optionally rewritten), bounded retries of transient failures.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ManifestTypes are the manifest media types the copier asks for and copies.
var ManifestTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

// maxManifestBytes: a larger manifest is refused (distribution refuses more than 4 MiB too).
const maxManifestBytes = 4 << 20

// Options configure one Client.
type Options struct {
	Host      string // host[:port]
	Name      string // shown after the host in errors, as execute.py's clients do: the environment
	Insecure  bool   // plain HTTP
	CAFile    string // PEM bundle trusted in addition to the system roots
	Realms    map[string]string
	TokenFile string
	Timeout   time.Duration // connect, TLS handshake, response headers, a request; a stalled blob stream
	Retries   int           // further attempts after a transient failure
	Backoff   time.Duration // the first pause between attempts, doubled each time up to BackoffCap
	// Push: every token of a repository is asked for "pull,push" (a destination: one token
	// serves the HEADs, uploads and PUTs of a copy); else "pull".
	Push bool
}

// BackoffCap is the longest pause between two attempts.
const BackoffCap = 8 * time.Second

// Client talks to one registry.
type Client struct {
	Host    string
	Name    string
	base    string // scheme://host
	plain   *http.Client
	follow  *http.Client // follows redirects (blob downloads from storage)
	tokens  *tokens
	timeout time.Duration
	retries int
	backoff time.Duration
	actions string // of the repository scopes: "pull" or "pull,push"

	mu      sync.Mutex
	realm   string // of the registry's last Bearer challenge
	service string
	basic   bool // the registry asked for Basic credentials
}

// New makes a client. The CA file is read now: a missing or empty bundle is an error.
func New(o Options) (*Client, error) {
	scheme := "https"
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.Insecure {
		scheme = "http"
	}
	if o.CAFile != "" { // a plain-HTTP registry's token realm may be HTTPS: the same trust applies
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file of %s: %w", o.Host, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s of %s: no PEM certificate in it", o.CAFile, o.Host)
		}
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	rt := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	c := &Client{
		Host:    o.Host,
		Name:    o.Name,
		base:    scheme + "://" + o.Host,
		plain:   &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		follow:  &http.Client{Transport: rt},
		timeout: o.Timeout,
		retries: o.Retries,
		backoff: o.Backoff,
		actions: "pull",
	}
	if o.Push {
		c.actions = "pull,push"
	}
	// the token realm is asked with the same verified TLS (the realm map changes the URL only)
	c.tokens = &tokens{client: &http.Client{Transport: rt}, host: o.Host, realms: o.Realms, tokenFile: o.TokenFile, clock: time.Now, cache: map[string]cachedToken{}}
	return c, nil
}

// where: the host, and the name when it is another ("registry.seg-test.svc:5000 (test)").
func (c *Client) where() string {
	if c.Name != "" && c.Name != c.Host {
		return c.Host + " (" + c.Name + ")"
	}
	return c.Host
}

// Scope of a repository for actions ("pull", "pull,push").
func Scope(repository, actions string) string {
	return "repository:" + repository + ":" + actions
}

// scope of a repository this client reads or writes.
func (c *Client) scope(repository string) string {
	return Scope(repository, c.actions)
}

func (c *Client) url(repository, kind, ref string) string {
	return c.base + "/v2/" + repository + "/" + kind + "/" + ref
}

// request is one HTTP request: body is replayable (nil: none); stream is sent once.
type request struct {
	method, url string
	scopes      []string
	header      http.Header
	body        []byte
	stream      io.Reader
	length      int64 // of stream; -1: unknown
	follow      bool
}

// send sends r with a bearer token for its scopes; a 401 with a challenge gets a new token and
// one more try (not for a stream: the caller retries the whole transfer).
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	scopes := normalise(r.scopes)
	build := func() (*http.Request, error) {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		} else if r.stream != nil {
			body = r.stream
		}
		req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
		if err != nil {
			return nil, err
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		if r.stream != nil {
			req.ContentLength = r.length
			if r.length == 0 {
				req.Body = http.NoBody
			}
		}
		return req, nil
	}
	client := c.plain
	if r.follow {
		client = c.follow
	}
	req, err := build()
	if err != nil {
		return nil, err
	}
	sent, err := c.authorize(ctx, req, scopes, false)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	challenges := parseChallenges(resp.Header)
	learned := false
	for _, ch := range challenges {
		switch ch.scheme {
		case "bearer":
			if ch.params["realm"] == "" {
				continue
			}
			c.mu.Lock()
			c.realm, c.service, c.basic = ch.params["realm"], ch.params["service"], false
			c.mu.Unlock()
			if s := ch.params["scope"]; s != "" && sent {
				// a token was refused: ask for what the challenge names too
				scopes = normalise(append(scopes, strings.Fields(s)...))
			}
			learned = true
		case "basic":
			c.mu.Lock()
			c.basic = true
			c.mu.Unlock()
			learned = true
		}
		if learned {
			break
		}
	}
	if !learned || r.stream != nil {
		return resp, nil // the caller reports the 401
	}
	drain(resp)
	req, err = build()
	if err != nil {
		return nil, err
	}
	if _, err := c.authorize(ctx, req, scopes, sent); err != nil {
		return nil, err
	}
	return client.Do(req)
}

// authorize sets the Authorization header from what the registry asked for before (a cached
// token, or a new one when there is none or fresh is set); nothing before the first challenge.
// It tells whether it set credentials.
func (c *Client) authorize(ctx context.Context, req *http.Request, scopes []string, fresh bool) (bool, error) {
	c.mu.Lock()
	realm, service, basic := c.realm, c.service, c.basic
	c.mu.Unlock()
	if basic {
		password, err := c.tokens.password()
		if err != nil {
			return false, err
		}
		req.SetBasicAuth(Username, password)
		return true, nil
	}
	if realm == "" {
		return false, nil
	}
	token, err := c.tokens.get(ctx, realm, service, scopes, fresh)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return true, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// fail makes the Error of a response that is not the expected one (its body is read and closed).
func (c *Client) fail(doing, repository string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return &Error{Registry: c.where(), Repository: repository, Doing: doing, Status: resp.StatusCode, Detail: detail(resp, body)}
}

// failed makes the Error of a request that got no answer.
func (c *Client) failed(doing, repository string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err // a token request's own error
	}
	return &Error{Registry: c.where(), Repository: repository, Doing: doing, Err: transportCause(err)}
}

// withRetries runs op until it succeeds, fails for good or has been tried 1 + retries times.
func (c *Client) withRetries(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		var e *Error
		if !errors.As(err, &e) || !e.Transient() || attempt > c.retries || ctx.Err() != nil {
			if e != nil {
				e.Attempts = attempt
			}
			return err
		}
		pause := c.backoff << (attempt - 1)
		if pause > BackoffCap || pause <= 0 {
			pause = min(BackoffCap, max(pause, c.backoff))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

func acceptManifests() http.Header {
	return http.Header{"Accept": {strings.Join(ManifestTypes, ", ")}}
}

// HeadManifest returns the digest the registry serves for repository:ref ("" when it has none).
func (c *Client) HeadManifest(ctx context.Context, repository, ref string) (string, error) {
	doing := "HEAD manifest " + repository + refSep(ref) + ref
	var digest string
	err := c.withRetries(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		resp, err := c.send(ctx, request{method: http.MethodHead, url: c.url(repository, "manifests", ref), scopes: []string{c.scope(repository)}, header: acceptManifests()})
		if err != nil {
			return c.failed(doing, repository, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			drain(resp)
			digest = resp.Header.Get("Docker-Content-Digest")
			if digest == "" { // not sent by every registry: the digest of the bytes it serves
				data, _, found, err := c.getManifest(ctx, repository, ref)
				if err != nil {
					return err
				}
				if found {
					digest = digestOf(data)
				}
			}
			return nil
		case http.StatusNotFound:
			drain(resp)
			digest = ""
			return nil
		}
		return c.fail(doing, repository, resp)
	})
	return digest, err
}

// GetManifest returns the exact bytes and media type of repository@digest, checked against the
// digest; found is false when the registry has no such manifest.
func (c *Client) GetManifest(ctx context.Context, repository, digest string) (data []byte, mediaType string, found bool, err error) {
	err = c.withRetries(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		var e error
		data, mediaType, found, e = c.getManifest(ctx, repository, digest)
		return e
	})
	if err == nil && found && digestOf(data) != digest {
		return nil, "", false, &Error{Registry: c.where(), Repository: repository, Doing: "GET manifest " + repository + "@" + digest,
			Err: fmt.Errorf("the registry served bytes whose digest is %s", digestOf(data))}
	}
	return data, mediaType, found, err
}

func (c *Client) getManifest(ctx context.Context, repository, ref string) ([]byte, string, bool, error) {
	doing := "GET manifest " + repository + refSep(ref) + ref
	resp, err := c.send(ctx, request{method: http.MethodGet, url: c.url(repository, "manifests", ref), scopes: []string{c.scope(repository)}, header: acceptManifests()})
	if err != nil {
		return nil, "", false, c.failed(doing, repository, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		drain(resp)
		return nil, "", false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", false, c.fail(doing, repository, resp)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, "", false, c.failed(doing, repository, err)
	}
	if len(data) > maxManifestBytes {
		return nil, "", false, &Error{Registry: c.where(), Repository: repository, Doing: doing, Err: fmt.Errorf("the manifest is larger than %d bytes", maxManifestBytes)}
	}
	mediaType := strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	if !isManifestType(mediaType) {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(data, &probe) == nil && isManifestType(probe.MediaType) {
			mediaType = probe.MediaType
		}
	}
	return data, mediaType, true, nil
}

func isManifestType(t string) bool {
	for _, m := range ManifestTypes {
		if t == m {
			return true
		}
	}
	return false
}

// PutManifest puts data (exactly these bytes) as repository:ref with its media type.
func (c *Client) PutManifest(ctx context.Context, repository, ref string, data []byte, mediaType string) error {
	doing := "PUT manifest " + repository + refSep(ref) + ref
	return c.withRetries(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		resp, err := c.send(ctx, request{method: http.MethodPut, url: c.url(repository, "manifests", ref), scopes: []string{c.scope(repository)},
			header: http.Header{"Content-Type": {mediaType}}, body: data})
		if err != nil {
			return c.failed(doing, repository, err)
		}
		if resp.StatusCode/100 != 2 {
			return c.fail(doing, repository, resp)
		}
		drain(resp)
		return nil
	})
}

// HeadBlob tells whether repository has the blob.
func (c *Client) HeadBlob(ctx context.Context, repository, digest string) (bool, error) {
	doing := "HEAD blob " + repository + "@" + digest
	var found bool
	err := c.withRetries(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		resp, err := c.send(ctx, request{method: http.MethodHead, url: c.url(repository, "blobs", digest), scopes: []string{c.scope(repository)}})
		if err != nil {
			return c.failed(doing, repository, err)
		}
		drain(resp)
		switch {
		case resp.StatusCode == http.StatusOK, resp.StatusCode/100 == 3: // 3xx: served from storage elsewhere
			found = true
			return nil
		case resp.StatusCode == http.StatusNotFound:
			found = false
			return nil
		}
		return c.fail(doing, repository, resp)
	})
	return found, err
}

// Mount asks the registry to mount the blob from another of its repositories; when it refuses
// (202), the upload session it opened instead is returned.
func (c *Client) Mount(ctx context.Context, repository, digest, from string) (mounted bool, location string, err error) {
	doing := "mount blob " + digest + " from " + from + " into " + repository
	err = c.withRetries(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		u := c.base + "/v2/" + repository + "/blobs/uploads/?" + url.Values{"mount": {digest}, "from": {from}}.Encode()
		resp, err := c.send(ctx, request{method: http.MethodPost, url: u, scopes: []string{c.scope(repository), Scope(from, "pull")}, body: []byte{}})
		if err != nil {
			return c.failed(doing, repository, err)
		}
		switch resp.StatusCode {
		case http.StatusCreated:
			drain(resp)
			mounted = true
			return nil
		case http.StatusAccepted:
			drain(resp)
			location, err = c.location(resp, doing, repository)
			return err
		}
		return c.fail(doing, repository, resp)
	})
	return mounted, location, err
}

func (c *Client) startUpload(ctx context.Context, repository, doing string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, request{method: http.MethodPost, url: c.base + "/v2/" + repository + "/blobs/uploads/", scopes: []string{c.scope(repository)}, body: []byte{}})
	if err != nil {
		return "", c.failed(doing, repository, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", c.fail(doing, repository, resp)
	}
	drain(resp)
	return c.location(resp, doing, repository)
}

func (c *Client) location(resp *http.Response, doing, repository string) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", &Error{Registry: c.where(), Repository: repository, Doing: doing, Err: errors.New("the registry answered no Location")}
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", &Error{Registry: c.where(), Repository: repository, Doing: doing, Err: errors.New("the registry answered an unreadable Location")}
	}
	return u.String(), nil
}

// upload streams body (length bytes) into a new blob of repository: one PATCH, then the PUT
// that commits digest (the registry checks the digest of what it received). Not retried here.
func (c *Client) upload(ctx context.Context, repository, digest, location string, body io.Reader, length int64) error {
	doing := "upload blob " + digest + " to " + repository
	if location == "" {
		var err error
		if location, err = c.startUpload(ctx, repository, doing); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, request{method: http.MethodPatch, url: location, scopes: []string{c.scope(repository)},
		header: http.Header{"Content-Type": {"application/octet-stream"}}, stream: body, length: length})
	if err != nil {
		return c.failed(doing, repository, err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		return c.fail(doing, repository, resp)
	}
	drain(resp)
	if location, err = c.location(resp, doing, repository); err != nil {
		return err
	}
	u, err := url.Parse(location)
	if err != nil {
		return &Error{Registry: c.where(), Repository: repository, Doing: doing, Err: errors.New("unreadable upload location")}
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	putCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err = c.send(putCtx, request{method: http.MethodPut, url: u.String(), scopes: []string{c.scope(repository)}, body: []byte{}})
	if err != nil {
		return c.failed(doing, repository, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return c.fail(doing, repository, resp)
	}
	drain(resp)
	return nil
}

// openBlob starts the download of repository@digest (redirects to storage followed).
func (c *Client) openBlob(ctx context.Context, repository, digest string) (io.ReadCloser, int64, error) {
	doing := "GET blob " + repository + "@" + digest
	resp, err := c.send(ctx, request{method: http.MethodGet, url: c.url(repository, "blobs", digest), scopes: []string{c.scope(repository)}, follow: true})
	if err != nil {
		return nil, 0, c.failed(doing, repository, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, c.fail(doing, repository, resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// CopyBlob streams digest from the source repository into the destination repository and
// returns the bytes sent. The whole transfer (source GET, PATCH, PUT) is retried on transient
// failures, at most the destination's retries more times; location (an upload session a refused
// mount opened) is used by the first attempt only. A stream that moves no byte for the
// destination's timeout is abandoned (and retried).
func CopyBlob(ctx context.Context, src *Client, srcRepository string, dst *Client, repository, digest string, size int64, location string) (int64, error) {
	var sent atomic.Int64 // counted as the upload reads the stream (the transport's goroutine)
	err := dst.withRetries(ctx, func() error {
		defer func() { location = "" }()
		sent.Store(0)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stalled bool
		var mu sync.Mutex
		watchdog := time.AfterFunc(dst.timeout, func() { mu.Lock(); stalled = true; mu.Unlock(); cancel() })
		defer watchdog.Stop()
		body, length, err := src.openBlob(ctx, srcRepository, digest)
		if err != nil {
			return stalledError(err, &mu, &stalled, dst, repository, digest)
		}
		defer body.Close()
		if size < 0 {
			size = length
		}
		if size < 0 {
			return &Error{Registry: src.where(), Repository: srcRepository, Doing: "GET blob " + srcRepository + "@" + digest, Err: errors.New("the size is unknown")}
		}
		reader := &progressReader{r: body, onRead: func(n int) { watchdog.Reset(dst.timeout); sent.Add(int64(n)) }}
		if err := dst.upload(ctx, repository, digest, location, reader, size); err != nil {
			return stalledError(err, &mu, &stalled, dst, repository, digest)
		}
		return nil
	})
	return sent.Load(), err
}

func stalledError(err error, mu *sync.Mutex, stalled *bool, dst *Client, repository, digest string) error {
	mu.Lock()
	defer mu.Unlock()
	if *stalled {
		return &Error{Registry: dst.where(), Repository: repository, Doing: "copy of blob " + digest,
			Err: fmt.Errorf("no byte moved for %s (timeout_seconds)", dst.timeout)}
	}
	return err
}

type progressReader struct {
	r      io.Reader
	onRead func(int)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead(n)
	}
	return n, err
}

func refSep(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return "@"
	}
	return ":"
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// detail is the registry's own message: "CODE: message" of each error of a distribution error
// body (read by go-containerregistry's transport.CheckError), else the start of the body.
func detail(resp *http.Response, body []byte) string {
	probe := *resp
	probe.Body = io.NopCloser(bytes.NewReader(body))
	var terr *transport.Error
	if err := transport.CheckError(&probe); errors.As(err, &terr) && len(terr.Errors) > 0 {
		parts := make([]string, 0, len(terr.Errors))
		for _, d := range terr.Errors {
			parts = append(parts, fmt.Sprintf("%s: %s", d.Code, d.Message))
		}
		return strings.Join(parts, "; ")
	}
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		return ""
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200]
	}
	return text
}
