package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/copier/internal/golden"
)

// The golden cases (testdata/golden/*.json, described in testdata/golden/README.md; loaded,
// served and seeded by internal/golden): images seeded into a source and destination registries,
// a plan's items, the expected result of each item per run and the destination's tags afterwards.

// goldenEnv is a case's served registries, with the test failing on an unknown image name.
type goldenEnv struct {
	*golden.Env
	t *testing.T
}

func (g *goldenEnv) resolve(s string) string {
	out, err := g.Resolve(s)
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

func (g *goldenEnv) digest(name string) string {
	d, err := g.Digest(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return d
}

// runGolden runs one case against the copier.
func runGolden(t *testing.T, path string) {
	c, err := golden.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env, err := golden.Start(c, dir)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(env.Close)
	g := &goldenEnv{Env: env, t: t}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("golden-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	present := map[string]map[string][]string{}
	for env, repos := range c.Present {
		present[env] = map[string][]string{}
		for repo, names := range repos {
			for _, name := range names {
				present[env][repo] = append(present[env][repo], g.digest(name))
			}
		}
	}
	var items []map[string]any
	for _, it := range c.Items {
		item := map[string]any{"id": it.ID, "environment": it.Environment, "repository": it.Repository, "tag": g.resolve(it.Tag), "digest": g.digest(it.Digest)}
		if it.SourceRepository != "" {
			item["source_repository"] = it.SourceRepository
		}
		if it.ByDigest {
			item["by_digest"] = true
		}
		if it.Requires != nil {
			item["requires"] = map[string]any{"environment": it.Requires.Environment, "repository": it.Requires.Repository, "digest": g.digest(it.Requires.Digest)}
		}
		if it.ArtifactOf != "" {
			item["artifact_of"] = g.digest(it.ArtifactOf)
		}
		items = append(items, item)
	}
	planFile := filepath.Join(dir, "plan.json")
	planJSON, _ := json.Marshal(map[string]any{
		"source": g.SourceEntry, "destinations": g.Destinations, "token_file": tokenFile,
		"parallel_images": 4, "parallel_blobs": 6, "retries": 2, "timeout_seconds": 20,
		"present": present, "items": items,
	})
	if err := os.WriteFile(planFile, planJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	for n, expected := range c.Runs {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"--plan", planFile}, &stdout, &stderr)
		t.Logf("run %d stdout:\n%s", n+1, stdout.String())
		results, summary := parseOutput(t, stdout.String())
		if code != expected.Exit {
			t.Errorf("run %d: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", n+1, code, expected.Exit, stdout.String(), stderr.String())
		}
		if len(results) != len(c.Items) {
			t.Errorf("run %d: %d result lines for %d items:\n%s", n+1, len(results), len(c.Items), stdout.String())
		}
		for id, want := range expected.Results {
			got, ok := results[id]
			if !ok {
				t.Errorf("run %d: no result for item %s", n+1, id)
				continue
			}
			for key, value := range want {
				g.check(t, fmt.Sprintf("run %d item %s %s", n+1, id, key), key, value, got)
			}
		}
		for key, value := range expected.Summary {
			g.check(t, fmt.Sprintf("run %d summary %s", n+1, key), key, value, summary)
		}
	}
	for env, repos := range c.ExpectTags {
		for repo, refs := range repos {
			for ref, name := range refs {
				got := g.Dests[env].Resolve(repo, g.resolve(ref))
				want := ""
				if name != "" {
					want = g.digest(name)
				}
				if got != want {
					t.Errorf("destination %s %s:%s serves %q, want %q (%s)", env, repo, ref, got, want, name)
				}
			}
		}
	}
}

func (g *goldenEnv) check(t *testing.T, what, key string, want any, got map[string]any) {
	switch key {
	case "error_contains": // a text, or a list of texts
		text, _ := got["error"].(string)
		parts, ok := want.([]any)
		if !ok {
			parts = []any{want}
		}
		for _, part := range parts {
			if !strings.Contains(text, g.resolve(part.(string))) {
				t.Errorf("%s: error %q does not contain %q", what, text, g.resolve(part.(string)))
			}
		}
	case "absent":
		for _, k := range want.([]any) {
			if _, ok := got[k.(string)]; ok {
				t.Errorf("%s: has %q: %v", what, k, got)
			}
		}
	default:
		if s, ok := want.(string); ok {
			want = g.resolve(s)
		}
		if fmt.Sprint(got[key]) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v (line %v)", what, got[key], want, got)
		}
	}
}

func parseOutput(t *testing.T, stdout string) (map[string]map[string]any, map[string]any) {
	results := map[string]map[string]any{}
	var summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if s, ok := m["summary"].(map[string]any); ok {
			if summary != nil {
				t.Errorf("two summary lines")
			}
			summary = s
			continue
		}
		id := strconv.Itoa(int(m["id"].(float64)))
		if _, dup := results[id]; dup {
			t.Errorf("item %s reported twice", id)
		}
		results[id] = m
	}
	if summary == nil {
		t.Errorf("no summary line in %q", stdout)
	}
	return results, summary
}

func TestGolden(t *testing.T) {
	backoff = 10 * time.Millisecond
	cases, _ := filepath.Glob("testdata/golden/*.json")
	if len(cases) < 9 {
		t.Fatalf("%d golden cases, expected at least 9", len(cases))
	}
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) { runGolden(t, path) })
	}
}
