// Command copier carries out one shard of a segmented.registry promotion plan inside the
// registry cluster: it copies images by digest from the source registry (the integrated
// registry) into environment registries, as plugins/module_utils/promotion/execute.py does, so
// that no image byte passes through the Ansible controller.
//
// Usage: copier --plan /etc/copier/plan (a plan file, or a folder of its parts: see README.md)
//
// Output: one JSON line per item on stdout as it ends, then a summary line. Exit 0: every item
// was copied or gated; 1: an item failed; 2: the plan cannot be used (the error names the field).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/segmented-registry/copier/internal/copier"
	"github.com/segmented-registry/copier/internal/plan"
	"github.com/segmented-registry/copier/internal/registry"
)

const (
	exitFailed = 1
	exitPlan   = 2
)

// backoff is the first pause between two attempts of a transient failure (doubled each time).
var backoff = time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type summary struct {
	Copied    int   `json:"copied"`
	Failed    int   `json:"failed"`
	Gated     int   `json:"gated"`
	BytesSent int64 `json:"bytes_sent"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("copier", flag.ContinueOnError)
	flags.SetOutput(stderr)
	planPath := flags.String("plan", "", "the plan: a file (JSON, .gz for gzip) or a folder of its parts (see README.md)")
	if err := flags.Parse(args); err != nil {
		return exitPlan
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "copier: %v\n", err)
		return exitPlan
	}
	if *planPath == "" || flags.NArg() > 0 {
		return fail(errors.New("usage: copier --plan <file.json or folder>"))
	}
	p, err := plan.Load(*planPath)
	if err != nil {
		return fail(err)
	}
	options := func(field, name string, r plan.Registry, push bool) (registry.Options, error) {
		tokenFile, key := p.TokenFile, "token_file"
		if r.TokenFile != "" {
			tokenFile, key = r.TokenFile, field+".token_file"
		}
		if _, err := os.Stat(tokenFile); err != nil {
			return registry.Options{}, fmt.Errorf("%s: %v", key, err)
		}
		return registry.Options{Host: r.Registry, Name: name, Insecure: r.Insecure, CAFile: r.CAFile, Realms: p.Realms, TokenFile: tokenFile,
			Timeout: time.Duration(p.TimeoutSeconds) * time.Second, Retries: *p.Retries, Backoff: backoff, Push: push}, nil
	}
	client := func(field, name string, r plan.Registry, push bool) (*registry.Client, error) {
		o, err := options(field, name, r, push)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", plan.ErrPlan, err)
		}
		c, err := registry.New(o)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", plan.ErrPlan, field, err)
		}
		return c, nil
	}
	source, err := client("source", "default (integrated registry)", p.Source, false)
	if err != nil {
		return fail(err)
	}
	destinations := map[string]*registry.Client{}
	envs := make([]string, 0, len(p.Destinations))
	for env := range p.Destinations {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		if destinations[env], err = client("destinations."+env, env, p.Destinations[env], true); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(stderr, "copier: %d items from %s into %d registries\n", len(p.Items), p.Source.Registry, len(destinations))
	out := json.NewEncoder(stdout)
	var total summary
	x := &copier.Executor{
		Source: source, Destinations: destinations, ImageWorkers: p.ParallelImages, BlobWorkers: p.ParallelBlobs,
		Emit: func(r copier.Result) {
			_ = out.Encode(r)
			switch r.Result {
			case copier.Copied:
				total.Copied++
			case copier.Failed:
				total.Failed++
			case copier.Gated:
				total.Gated++
			}
			if r.Counters != nil {
				total.BytesSent += r.BytesSent
			}
		},
	}
	x.Run(ctx, p.Items, p.Present)
	_ = out.Encode(map[string]summary{"summary": total})
	if total.Failed > 0 {
		return exitFailed
	}
	return 0
}
