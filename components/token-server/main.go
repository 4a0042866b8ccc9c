// Command token-server is the registry token server of segmented.registry: it makes CNCF
// distribution authorize by the registry cluster's RBAC (an environment registry by the
// collection's own environmentregistries resource, the integrated registry the way OpenShift's
// does). A registry configured with
// auth.token sends clients here; the password they present is an API token of the registry
// cluster, checked with a TokenReview; each requested scope is decided by SubjectAccessReviews;
// the answer is an RS256 JWT (x5c chain) that the registry verifies against its rootcertbundle.
//
// Usage: token-server --config /etc/token-server/config.json [--log-level info] [--check]
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/segmented-registry/token-server/internal/config"
	"github.com/segmented-registry/token-server/internal/issuer"
	"github.com/segmented-registry/token-server/internal/jwt"
	"github.com/segmented-registry/token-server/internal/ratelimit"
	"github.com/segmented-registry/token-server/internal/review"
	"github.com/segmented-registry/token-server/internal/tlsreload"
)

const (
	exitRuntime     = 1
	exitConfig      = 2
	shutdownTimeout = 20 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run parses the flags and the configuration, then serves until ctx ends (SIGTERM), letting
// requests in flight finish. Any configuration problem ends it with exit code 2 before it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	flags := flag.NewFlagSet("token-server", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "the JSON configuration file (required)")
	levelName := flags.String("log-level", orDefault(getenv("TOKEN_SERVER_LOG_LEVEL"), "info"),
		"debug, info, warn or error (default from TOKEN_SERVER_LOG_LEVEL)")
	check := flags.Bool("check", false, "check the configuration, the signing key and the credentials' files, then exit")
	if err := flags.Parse(args); err != nil {
		return exitConfig
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "token-server: cannot start: %v\n", err)
		return exitConfig
	}
	if *configPath == "" || flags.NArg() > 0 {
		return fail(errors.New("usage: token-server --config <file.json> [--log-level info] [--check]"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return fail(fmt.Errorf("--log-level %q: use debug, info, warn or error", *levelName))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return fail(err)
	}
	server, signer, err := setup(cfg, log)
	if err != nil {
		return fail(err)
	}
	if *check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	log.Info("listening", "address", listener.Addr().String(), "tls", cfg.TLS(), "token_path", tokenPath,
		"services", strings.Join(slices.Sorted(maps.Keys(cfg.Services)), ","), "api_server", cfg.Kubernetes.Server,
		"signing_cert_subject", signer.Leaf().Subject.String(), "signing_cert_not_after", jwt.RFC3339(signer.Leaf().NotAfter))
	if err := serve(ctx, server, listener, log); err != nil {
		log.Error("stopped", "reason", err.Error())
		return exitRuntime
	}
	return 0
}

// setup loads what the configuration names (signing key, TLS key pair, API server credentials)
// and returns the ready, not yet listening server.
func setup(cfg *config.Config, log *slog.Logger) (*http.Server, *jwt.Signer, error) {
	signer, err := jwt.LoadSigner(cfg.SigningCert, cfg.SigningKey, time.Now())
	if err != nil {
		return nil, nil, err
	}
	client, err := review.NewKubeClient(cfg.Kubernetes, time.Now)
	if err != nil {
		return nil, nil, err
	}
	tokens := &issuer.Issuer{
		Services:  cfg.Services,
		Signer:    signer,
		Reviewer:  review.NewKubeReviewer(client, cfg.TokenReviewCache, ratelimit.New(cfg.TokenReviewRate, cfg.TokenReviewBurst, time.Now), time.Now),
		TTL:       cfg.TokenTTL,
		MaxScopes: cfg.MaxScopes,
		Limiter:   ratelimit.New(cfg.ReviewRate, cfg.ReviewBurst, time.Now),
		Clock:     time.Now,
		Log:       log,
	}
	server := &http.Server{
		Handler:           NewHandler(tokens, log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake noise
	}
	if cfg.TLS() {
		pair, err := tlsreload.NewKeyPairReloader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			return nil, nil, err
		}
		server.TLSConfig = &tls.Config{GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	return server, signer, nil
}

// serve answers on listener until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, server *http.Server, listener net.Listener, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() {
		if server.TLSConfig != nil {
			done <- server.ServeTLS(listener, "", "")
		} else {
			done <- server.Serve(listener)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping", "grace", shutdownTimeout.String())
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func orDefault(value, def string) string {
	if value == "" {
		return def
	}
	return value
}
