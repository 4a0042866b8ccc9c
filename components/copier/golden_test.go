package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmented-registry/copier/internal/testregistry"
)

// The golden cases (testdata/golden/*.json, described in testdata/golden/README.md): images
// seeded into a source and destination registries, a plan's items, the expected result of each
// item per run and the destination's tags afterwards.

type goldenImage struct {
	Config          string            `json:"config"`
	ConfigMediaType string            `json:"config_media_type"`
	Layers          []string          `json:"layers"`
	ArtifactType    string            `json:"artifact_type"`
	Index           []string          `json:"index"`
	Platform        map[string]string `json:"platform"`
}

type goldenRegistry struct {
	Insecure     bool                         `json:"insecure"`
	DenyPush     []string                     `json:"deny_push"`
	Repositories map[string]map[string]string `json:"repositories"` // repo -> tag -> image name
}

type goldenItem struct {
	ID               int    `json:"id"`
	Environment      string `json:"environment"`
	Repository       string `json:"repository"`
	SourceRepository string `json:"source_repository,omitempty"`
	Tag              string `json:"tag"`
	Digest           string `json:"digest"` // an image name
	ByDigest         bool   `json:"by_digest,omitempty"`
	Requires         *struct {
		Environment string `json:"environment"`
		Repository  string `json:"repository"`
		Digest      string `json:"digest"` // an image name
	} `json:"requires,omitempty"`
	ArtifactOf string `json:"artifact_of,omitempty"` // an image name
}

type goldenRun struct {
	Exit    int                       `json:"exit"`
	Results map[string]map[string]any `json:"results"` // id -> expected fields
	Summary map[string]any            `json:"summary"`
}

type goldenCase struct {
	Description  string                                  `json:"description"`
	Images       map[string]goldenImage                  `json:"images"`
	Source       goldenRegistry                          `json:"source"`
	Destinations map[string]goldenRegistry               `json:"destinations"`
	Present      map[string]map[string][]string          `json:"present"` // env -> repo -> image names
	Items        []goldenItem                            `json:"items"`
	Runs         []goldenRun                             `json:"runs"`
	ExpectTags   map[string]map[string]map[string]string `json:"expect_tags"` // env -> repo -> ref -> image name, "" for none
}

// builtImage: the bytes of an image's manifest and its blobs.
type builtImage struct {
	manifest  []byte
	mediaType string
	digest    string
	blobs     [][]byte
	children  []string // image names of an index
}

type descriptor struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int               `json:"size"`
	Platform  map[string]string `json:"platform,omitempty"`
}

// buildImages makes every image of the case: compact JSON, keys in the order of these structs.
func buildImages(t *testing.T, specs map[string]goldenImage) map[string]*builtImage {
	built := map[string]*builtImage{}
	var build func(name string) *builtImage
	build = func(name string) *builtImage {
		if b, ok := built[name]; ok {
			return b
		}
		spec, ok := specs[name]
		if !ok {
			t.Fatalf("image %q is not defined in images", name)
		}
		b := &builtImage{}
		var doc any
		if spec.Index != nil {
			var manifests []descriptor
			for _, child := range spec.Index {
				c := build(child)
				manifests = append(manifests, descriptor{MediaType: c.mediaType, Digest: c.digest, Size: len(c.manifest), Platform: specs[child].Platform})
				b.children = append(b.children, child)
			}
			b.mediaType = "application/vnd.oci.image.index.v1+json"
			doc = struct {
				SchemaVersion int          `json:"schemaVersion"`
				MediaType     string       `json:"mediaType"`
				Manifests     []descriptor `json:"manifests"`
			}{2, b.mediaType, manifests}
		} else {
			configType := spec.ConfigMediaType
			if configType == "" {
				configType = "application/vnd.oci.image.config.v1+json"
			}
			config := []byte(spec.Config)
			b.blobs = append(b.blobs, config)
			var layers []descriptor
			for _, l := range spec.Layers {
				b.blobs = append(b.blobs, []byte(l))
				layers = append(layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: testregistry.Digest([]byte(l)), Size: len(l)})
			}
			b.mediaType = "application/vnd.oci.image.manifest.v1+json"
			doc = struct {
				SchemaVersion int          `json:"schemaVersion"`
				MediaType     string       `json:"mediaType"`
				ArtifactType  string       `json:"artifactType,omitempty"`
				Config        descriptor   `json:"config"`
				Layers        []descriptor `json:"layers"`
			}{2, b.mediaType, spec.ArtifactType, descriptor{MediaType: configType, Digest: testregistry.Digest(config), Size: len(config)}, layers}
		}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		b.manifest, b.digest = data, testregistry.Digest(data)
		built[name] = b
		return b
	}
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		build(name)
	}
	return built
}

type goldenEnv struct {
	t        *testing.T
	images   map[string]*builtImage
	hosts    map[string]string // "source" and destination environments -> host:port
	source   *testregistry.Registry
	dests    map[string]*testregistry.Registry
	template *regexp.Regexp
}

// resolve replaces {digest:NAME}, {hex:NAME}, {source} and {dest:ENV} in s.
func (g *goldenEnv) resolve(s string) string {
	return g.template.ReplaceAllStringFunc(s, func(m string) string {
		parts := strings.SplitN(strings.Trim(m, "{}"), ":", 2)
		switch parts[0] {
		case "source":
			return g.hosts["source"]
		case "dest":
			return g.hosts[parts[1]]
		}
		img, ok := g.images[parts[1]]
		if !ok {
			g.t.Fatalf("template %s: no image %q", m, parts[1])
		}
		if parts[0] == "hex" {
			return strings.TrimPrefix(img.digest, "sha256:")
		}
		return img.digest
	})
}

func (g *goldenEnv) digest(name string) string {
	img, ok := g.images[name]
	if !ok {
		g.t.Fatalf("no image %q", name)
	}
	return img.digest
}

// seed puts an image (children and blobs first) into repo of reg, tagged tags.
func (g *goldenEnv) seed(reg *testregistry.Registry, repo, name string, tags ...string) {
	img := g.images[name]
	for _, child := range img.children {
		g.seed(reg, repo, child)
	}
	for _, blob := range img.blobs {
		reg.SeedBlob(repo, blob)
	}
	for _, ref := range append([]string{img.digest}, tags...) {
		if err := reg.SeedManifest(repo, ref, img.manifest, img.mediaType); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g *goldenEnv) serve(dir, name string, spec goldenRegistry) (*testregistry.Registry, map[string]any) {
	reg := testregistry.New()
	for _, repo := range spec.DenyPush {
		reg.DenyPush[repo] = true
	}
	var srv *httptest.Server
	if spec.Insecure {
		srv = httptest.NewServer(reg)
	} else {
		srv = httptest.NewTLSServer(reg)
	}
	g.t.Cleanup(srv.Close)
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
	g.hosts[name] = host
	entry := map[string]any{"registry": host, "insecure": spec.Insecure}
	if !spec.Insecure {
		caFile := filepath.Join(dir, name+"-ca.crt")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
			g.t.Fatal(err)
		}
		entry["ca_file"] = caFile
	}
	return reg, entry
}

func (g *goldenEnv) seedAll(reg *testregistry.Registry, spec goldenRegistry) {
	for repo, tags := range spec.Repositories {
		for tag, name := range tags {
			g.seed(reg, repo, name, g.resolve(tag))
		}
	}
}

// runGolden runs one case; it returns the stdout of each run.
func runGolden(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c goldenCase
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dir := t.TempDir()
	g := &goldenEnv{t: t, images: buildImages(t, c.Images), hosts: map[string]string{}, dests: map[string]*testregistry.Registry{},
		template: regexp.MustCompile(`\{(source|dest:[^}]+|digest:[^}]+|hex:[^}]+)\}`)}
	source, sourceEntry := g.serve(dir, "source", c.Source)
	g.source = source
	destinations := map[string]any{}
	for env, spec := range c.Destinations {
		g.dests[env], destinations[env] = g.serve(dir, env, spec)
	}
	g.seedAll(source, c.Source)
	for env, spec := range c.Destinations {
		g.seedAll(g.dests[env], spec)
	}
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
		"source": sourceEntry, "destinations": destinations, "token_file": tokenFile,
		"parallel_images": 4, "parallel_blobs": 6, "retries": 2, "timeout_seconds": 20,
		"present": present, "items": items,
	})
	if err := os.WriteFile(planFile, planJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) == 0 {
		t.Fatalf("%s: no runs", path)
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
				got := g.dests[env].Resolve(repo, g.resolve(ref))
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
