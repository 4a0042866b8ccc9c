package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/token-server/internal/issuer"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/testkit"
)

// labFiles writes a complete configuration (TLS, signing key, a token file for the fake API
// server) into a folder and returns its path and the server's CA pool.
func labFiles(t *testing.T, api *testkit.FakeAPI, listen string, over map[string]any) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey := testkit.ECKey(t)
	ca := testkit.NewCert(t, caKey, testkit.CertOptions{CN: "test CA", IsCA: true})
	tlsKey := testkit.ECKey(t)
	tlsCert := testkit.NewCert(t, tlsKey, testkit.CertOptions{CN: "token-server", Parent: ca, ParentKey: caKey,
		Hosts: []string{"127.0.0.1"}, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	signingKey := testkit.RSAKey(t, 0)
	testkit.WriteFile(t, dir, "tls.crt", testkit.CertPEM(tlsCert))
	testkit.WriteFile(t, dir, "tls.key", testkit.PKCS8PEM(t, tlsKey))
	testkit.WriteFile(t, dir, "signing.crt", testkit.CertPEM(testkit.NewCert(t, signingKey, testkit.CertOptions{CN: "signer"})))
	testkit.WriteFile(t, dir, "signing.key", testkit.PKCS8PEM(t, signingKey))
	testkit.WriteFile(t, dir, "api-ca.crt", testkit.CertPEM(api.Certificate()))
	testkit.WriteFile(t, dir, "token", []byte("server-token"))
	raw := map[string]any{
		"listen": listen, "tls_cert": "tls.crt", "tls_key": "tls.key",
		"signing_cert": "signing.crt", "signing_key": "signing.key",
		"kubernetes": map[string]any{"server": api.URL, "ca_file": "api-ca.crt", "token_file": "token"},
		"services":   map[string]any{"integrated": map[string]any{"issuer": "segmented-registry", "namespace_from": "repository"}},
	}
	for k, v := range over {
		raw[k] = v
	}
	data, _ := json.Marshal(raw)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testkit.WriteFile(t, dir, "config.json", data), pool
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRunServesTokensOverTLSAndStopsGracefully(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	builder := &review.ReviewedUser{Username: "system:serviceaccount:myproject:builder"}
	api.Users[testkit.Secret] = builder
	api.Allowed[[4]string{builder.Username, "get", "imagestreams", "myproject"}] = true
	address := freeAddress(t)
	config, pool := labFiles(t, api, address, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testkit.LogBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"--config", config}, &stdout, &stderr, testkit.NoEnv) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("https://" + address + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "https://"+address+"/token?service=integrated&scope=repository:myproject/app:pull", nil)
	req.SetBasicAuth("builder", testkit.Secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body issuer.TokenBody
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || testkit.DecodeJWT[jwt.Claims](t, body.Token).Claims.Subject != builder.Username {
		t.Fatalf("HTTP %d %#v\n%s", resp.StatusCode, body, stderr.String())
	}
	if reviews, bearers := api.Seen(); len(reviews) != 2 || bearers[0] != "server-token" {
		t.Errorf("reviews %v bearers %v", reviews, bearers)
	}

	cancel() // what SIGTERM does
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful stop")
	}
	logs := stderr.String()
	for _, want := range []string{"msg=listening", "tls=true", "msg=stopping", "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testkit.Secret) || strings.Contains(logs, "server-token") || strings.Contains(logs, body.Token) {
		t.Errorf("a testkit.Secret was logged:\n%s", logs)
	}
}

func TestRunRefusesABadConfigurationBeforeListening(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	address := freeAddress(t)
	for want, over := range map[string]map[string]any{
		"token_ttl_seconds: must be":         {"token_ttl_seconds": 1},
		"signing_cert: cannot read":          {"signing_cert": "missing.crt"},
		"signing_key: ":                      {"signing_key": "tls.key"},
		"tls_cert and tls_key":               {"tls_key": "signing.key"},
		"kubernetes.token_file: cannot read": {"kubernetes": map[string]any{"server": api.URL, "ca_file": "api-ca.crt", "token_file": "nope"}},
	} {
		config, _ := labFiles(t, api, address, over)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"--config", config}, &stdout, &stderr, testkit.NoEnv); code != exitConfig || !strings.Contains(stderr.String(), want) {
			t.Errorf("%v: exit %d, %s; want exit 2 and %q", over, code, stderr.String(), want)
		}
		if conn, err := net.Dial("tcp", address); err == nil {
			conn.Close()
			t.Errorf("%v: it listened", over)
		}
	}
}

func TestRunFlags(t *testing.T) {
	api := testkit.NewFakeAPI(t, nil)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	config, _ := labFiles(t, api, taken.Addr().String(), nil)
	for args, want := range map[string]struct {
		code   int
		output string
	}{
		"":                              {exitConfig, "usage: token-server --config"},
		"--config " + config + " extra": {exitConfig, "usage: token-server --config"},
		"--bogus":                       {exitConfig, "flag provided but not defined"},
		"--config " + config + " --log-level loud": {exitConfig, `--log-level "loud"`},
		"--config " + config + " --check":          {0, "configuration ok"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), strings.Fields(args), &stdout, &stderr, testkit.NoEnv)
		if code != want.code || !strings.Contains(stdout.String()+stderr.String(), want.output) {
			t.Errorf("%q: exit %d, %s%s; want %d and %q", args, code, stdout.String(), stderr.String(), want.code, want.output)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", config}, &bytes.Buffer{}, &stderr, testkit.NoEnv); code != exitConfig || !strings.Contains(stderr.String(), "listen: ") {
		t.Errorf("an address in use: exit %d %s", code, stderr.String())
	}
}
