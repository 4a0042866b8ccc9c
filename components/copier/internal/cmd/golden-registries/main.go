// Command golden-registries serves one golden copy case's registries (testdata/golden/README.md)
// for an engine other than the copier (tests/unit/components/test_copier_golden.py runs the
// collection's Python Executor against them). Test tooling: it is not part of the copier image.
//
// Usage: golden-registries <case.json>
//
// It starts the case's source and destination registries on 127.0.0.1 (internal/testregistry:
// TLS, or plain HTTP where the case says insecure; pushes denied where it says deny_push), seeds
// them as golden_test.go does (internal/golden), and prints one JSON line:
//
//	{"source": {"registry": "127.0.0.1:port", "insecure": false, "ca_file": "/tmp/.../source-ca.crt"},
//	 "destinations": {env: {"registry", "insecure", "ca_file"}}, "digests": {image name: digest}}
//
// ca_file (absent when insecure) is the PEM of the certificate the server presents, a CA
// certificate valid for 127.0.0.1. The registries are served until stdin is closed (or SIGTERM,
// SIGINT); the CA files are removed on exit. Exit 2: the case cannot be served (the error says why).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/segmented-registry/copier/internal/golden"
)

type output struct {
	Source       golden.Endpoint            `json:"source"`
	Destinations map[string]golden.Endpoint `json:"destinations"`
	Digests      map[string]string          `json:"digests"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: golden-registries <case.json>")
		return 2
	}
	c, err := golden.Load(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "golden-registries: %v\n", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "golden-registries-")
	if err != nil {
		fmt.Fprintf(stderr, "golden-registries: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	env, err := golden.Start(c, dir)
	if err != nil {
		fmt.Fprintf(stderr, "golden-registries: %s: %v\n", args[0], err)
		return 2
	}
	defer env.Close()
	out := output{Source: env.SourceEntry, Destinations: env.Destinations, Digests: map[string]string{}}
	for name, img := range env.Images {
		out.Digests[name] = img.Digest
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintf(stderr, "golden-registries: %v\n", err)
		return 2
	}
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	return 0
}
