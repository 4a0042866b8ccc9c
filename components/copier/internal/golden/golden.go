// Package golden loads the golden copy cases (testdata/golden/*.json, described in
// testdata/golden/README.md), builds their images, serves their registries (internal/testregistry
// on 127.0.0.1, TLS or plain HTTP) and seeds them. golden_test.go runs the cases against the
// copier with it; cmd/golden-registries serves a case's registries to another engine (the
// collection's Python Executor, tests/unit/components/test_copier_golden.py).
package golden

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/segmented-registry/copier/internal/plan"
	"github.com/segmented-registry/copier/internal/testregistry"
)

// Image is one image of a case: an image manifest (Config, Layers, ...) or an index (Index: image names).
type Image struct {
	Config          string            `json:"config"`
	ConfigMediaType string            `json:"config_media_type"`
	Layers          []string          `json:"layers"`
	ArtifactType    string            `json:"artifact_type"`
	Index           []string          `json:"index"`
	Platform        map[string]string `json:"platform"`
}

// Registry is the source or a destination of a case.
type Registry struct {
	Insecure     bool                         `json:"insecure"`
	DenyPush     []string                     `json:"deny_push"`
	Repositories map[string]map[string]string `json:"repositories"` // repo -> tag -> image name
}

// Item is one item of a case's plan, as the plan's own (plan.Item), except that Digest,
// ArtifactOf and Requires.Digest hold image names of the case, rendered to digests when the
// plan is written.
type Item = plan.Item

// Run is what one run of the plan gives.
type Run struct {
	Exit    int                       `json:"exit"`
	Results map[string]map[string]any `json:"results"` // id -> expected fields
	Summary map[string]any            `json:"summary"`
}

// Case is one golden case.
type Case struct {
	Description  string                                  `json:"description"`
	Images       map[string]Image                        `json:"images"`
	Source       Registry                                `json:"source"`
	Destinations map[string]Registry                     `json:"destinations"`
	Present      map[string]map[string][]string          `json:"present"` // env -> repo -> image names
	Items        []Item                                  `json:"items"`
	Runs         []Run                                   `json:"runs"`
	ExpectTags   map[string]map[string]map[string]string `json:"expect_tags"` // env -> repo -> ref -> image name, "" for none
}

// Load reads a case file; a key the format does not have is an error.
func Load(path string) (*Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Case
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(c.Runs) == 0 {
		return nil, fmt.Errorf("%s: no runs", path)
	}
	return &c, nil
}

// Built is an image's bytes: its manifest and its blobs.
type Built struct {
	Manifest  []byte
	MediaType string
	Digest    string
	Blobs     [][]byte
	Children  []string // image names of an index
}

type descriptor struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int               `json:"size"`
	Platform  map[string]string `json:"platform,omitempty"`
}

// BuildImages makes every image of a case: compact JSON, keys in the order of these structs.
func BuildImages(specs map[string]Image) (map[string]*Built, error) {
	built := map[string]*Built{}
	var build func(name string) (*Built, error)
	build = func(name string) (*Built, error) {
		if b, ok := built[name]; ok {
			return b, nil
		}
		spec, ok := specs[name]
		if !ok {
			return nil, fmt.Errorf("image %q is not defined in images", name)
		}
		b := &Built{}
		var doc any
		if spec.Index != nil {
			var manifests []descriptor
			for _, child := range spec.Index {
				c, err := build(child)
				if err != nil {
					return nil, err
				}
				manifests = append(manifests, descriptor{MediaType: c.MediaType, Digest: c.Digest, Size: len(c.Manifest), Platform: specs[child].Platform})
				b.Children = append(b.Children, child)
			}
			b.MediaType = "application/vnd.oci.image.index.v1+json"
			doc = struct {
				SchemaVersion int          `json:"schemaVersion"`
				MediaType     string       `json:"mediaType"`
				Manifests     []descriptor `json:"manifests"`
			}{2, b.MediaType, manifests}
		} else {
			configType := spec.ConfigMediaType
			if configType == "" {
				configType = "application/vnd.oci.image.config.v1+json"
			}
			config := []byte(spec.Config)
			b.Blobs = append(b.Blobs, config)
			var layers []descriptor
			for _, l := range spec.Layers {
				b.Blobs = append(b.Blobs, []byte(l))
				layers = append(layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: testregistry.Digest([]byte(l)), Size: len(l)})
			}
			b.MediaType = "application/vnd.oci.image.manifest.v1+json"
			doc = struct {
				SchemaVersion int          `json:"schemaVersion"`
				MediaType     string       `json:"mediaType"`
				ArtifactType  string       `json:"artifactType,omitempty"`
				Config        descriptor   `json:"config"`
				Layers        []descriptor `json:"layers"`
			}{2, b.MediaType, spec.ArtifactType, descriptor{MediaType: configType, Digest: testregistry.Digest(config), Size: len(config)}, layers}
		}
		data, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		b.Manifest, b.Digest = data, testregistry.Digest(data)
		built[name] = b
		return b, nil
	}
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := build(name); err != nil {
			return nil, err
		}
	}
	return built, nil
}

// Endpoint is how a plan names a served registry: host:port, plain HTTP or not, and the PEM file
// of the certificate its TLS server presents (a CA certificate; none when insecure).
type Endpoint struct {
	Registry string `json:"registry"`
	Insecure bool   `json:"insecure"`
	CAFile   string `json:"ca_file,omitempty"`
}

// Env is a case's registries, served and seeded.
type Env struct {
	Images       map[string]*Built
	Hosts        map[string]string // "source" and destination environments -> host:port
	Source       *testregistry.Registry
	Dests        map[string]*testregistry.Registry
	SourceEntry  Endpoint
	Destinations map[string]Endpoint
	servers      []*httptest.Server
}

var template = regexp.MustCompile(`\{(source|dest:[^}]+|digest:[^}]+|hex:[^}]+)\}`)

// Start builds the case's images, serves its source and destinations on 127.0.0.1 (writing each
// TLS server's certificate into dir as <name>-ca.crt) and seeds them. Close stops the servers.
func Start(c *Case, dir string) (*Env, error) {
	images, err := BuildImages(c.Images)
	if err != nil {
		return nil, err
	}
	e := &Env{Images: images, Hosts: map[string]string{}, Dests: map[string]*testregistry.Registry{}, Destinations: map[string]Endpoint{}}
	if e.Source, e.SourceEntry, err = e.serve(dir, "source", c.Source); err != nil {
		e.Close()
		return nil, err
	}
	for env, spec := range c.Destinations {
		if e.Dests[env], e.Destinations[env], err = e.serve(dir, env, spec); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.seedAll(e.Source, c.Source); err != nil {
		e.Close()
		return nil, err
	}
	for env, spec := range c.Destinations {
		if err := e.seedAll(e.Dests[env], spec); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close stops the servers.
func (e *Env) Close() {
	for _, srv := range e.servers {
		srv.Close()
	}
	e.servers = nil
}

// Digest is the digest of the image named name.
func (e *Env) Digest(name string) (string, error) {
	img, ok := e.Images[name]
	if !ok {
		return "", fmt.Errorf("no image %q", name)
	}
	return img.Digest, nil
}

// Resolve replaces {digest:NAME}, {hex:NAME}, {source} and {dest:ENV} in s.
func (e *Env) Resolve(s string) (string, error) {
	var err error
	out := template.ReplaceAllStringFunc(s, func(m string) string {
		parts := strings.SplitN(strings.Trim(m, "{}"), ":", 2)
		switch parts[0] {
		case "source":
			return e.Hosts["source"]
		case "dest":
			host, ok := e.Hosts[parts[1]]
			if !ok && err == nil {
				err = fmt.Errorf("template %s: no destination %q", m, parts[1])
			}
			return host
		}
		digest, derr := e.Digest(parts[1])
		if derr != nil {
			if err == nil {
				err = fmt.Errorf("template %s: %v", m, derr)
			}
			return m
		}
		if parts[0] == "hex" {
			return strings.TrimPrefix(digest, "sha256:")
		}
		return digest
	})
	return out, err
}

func (e *Env) serve(dir, name string, spec Registry) (*testregistry.Registry, Endpoint, error) {
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
	e.servers = append(e.servers, srv)
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
	e.Hosts[name] = host
	entry := Endpoint{Registry: host, Insecure: spec.Insecure}
	if !spec.Insecure {
		entry.CAFile = filepath.Join(dir, name+"-ca.crt")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(entry.CAFile, pemBytes, 0o600); err != nil {
			return nil, Endpoint{}, err
		}
	}
	return reg, entry, nil
}

// seed puts an image (children and blobs first) into repo of reg, tagged tags.
func (e *Env) seed(reg *testregistry.Registry, repo, name string, tags ...string) error {
	img, ok := e.Images[name]
	if !ok {
		return fmt.Errorf("seed %s: no image %q", repo, name)
	}
	for _, child := range img.Children {
		if err := e.seed(reg, repo, child); err != nil {
			return err
		}
	}
	for _, blob := range img.Blobs {
		reg.SeedBlob(repo, blob)
	}
	for _, ref := range append([]string{img.Digest}, tags...) {
		if err := reg.SeedManifest(repo, ref, img.Manifest, img.MediaType); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) seedAll(reg *testregistry.Registry, spec Registry) error {
	for repo, tags := range spec.Repositories {
		for tag, name := range tags {
			resolved, err := e.Resolve(tag)
			if err != nil {
				return err
			}
			if err := e.seed(reg, repo, name, resolved); err != nil {
				return err
			}
		}
	}
	return nil
}
