// Package plan reads the copier's input: one shard of a promotion plan (its copy items) and the
// registries, credentials and limits to carry it out with.
package plan

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrPlan is the kind of every problem of the plan file (exit code 2).
var ErrPlan = errors.New("bad plan")

// Registry is one registry the copier talks to.
type Registry struct {
	// Registry is host[:port].
	Registry string `json:"registry"`
	// Insecure: plain HTTP (an edge-terminated route's pod serves HTTP inside the cluster).
	Insecure bool `json:"insecure"`
	// CAFile: PEM certificates trusted for HTTPS, in addition to the system roots: the
	// registry's, and its token realm's (a plain-HTTP registry may have an HTTPS realm).
	CAFile string `json:"ca_file"`
	// TokenFile: this registry's credential, when not the plan's token_file (the integrated
	// registry reviews a token for the API server's audiences, an environment registry one for
	// the token server's).
	TokenFile string `json:"token_file"`
}

// Ref names one image in one repository of one environment.
type Ref struct {
	Environment string `json:"environment"`
	Repository  string `json:"repository"`
	Digest      string `json:"digest"`
}

// Item is one copy: the image Digest into Environment's Repository as Tag.
type Item struct {
	ID               int    `json:"id"`
	Environment      string `json:"environment"`
	Repository       string `json:"repository"`
	SourceRepository string `json:"source_repository"`
	Tag              string `json:"tag"`
	Digest           string `json:"digest"`
	// ByDigest: the source is checked by the digest itself (a rollback's pinned digest), not the tag.
	ByDigest   bool   `json:"by_digest"`
	Requires   *Ref   `json:"requires"`
	ArtifactOf string `json:"artifact_of"`
}

// Plan is the copier's whole input.
type Plan struct {
	Source         Registry                       `json:"source"`
	Destinations   map[string]Registry            `json:"destinations"`
	Realms         map[string]string              `json:"realms"`
	TokenFile      string                         `json:"token_file"`
	ParallelImages int                            `json:"parallel_images"`
	ParallelBlobs  int                            `json:"parallel_blobs"`
	Retries        *int                           `json:"retries"`
	TimeoutSeconds int                            `json:"timeout_seconds"`
	Present        map[string]map[string][]string `json:"present"`
	Items          []Item                         `json:"items"`
}

// Defaults of the optional numbers.
const (
	DefaultParallelImages = 4
	DefaultParallelBlobs  = 6
	DefaultRetries        = 3
	DefaultTimeoutSeconds = 60
)

var (
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// the distribution specification's tag and repository name grammars
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	repoPattern = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
)

// Load reads and checks the plan at path: a file (JSON; gzip when its name ends in .gz), or a
// folder whose files *.json and *.json.gz (in name order; names starting with a dot, as a
// mounted ConfigMap's own entries, are skipped) are the parts of one plan. A ConfigMap holds at
// most 1 MiB, so a large shard comes in parts: each holds the same settings and some of the
// items and present repositories.
func Load(path string) (*Plan, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --plan %s: %v", ErrPlan, path, err)
	}
	if !info.IsDir() {
		return loadFile(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --plan %s: %v", ErrPlan, path, err)
	}
	var whole *Plan
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".json.gz")) {
			continue
		}
		part, err := loadFile(filepath.Join(path, name))
		if err != nil {
			return nil, err
		}
		if whole == nil {
			whole = part
			continue
		}
		if settings(part) != settings(whole) {
			return nil, fmt.Errorf("%w: --plan %s: the part %s holds other settings than the first part; every part holds the same", ErrPlan, path, name)
		}
		whole.Items = append(whole.Items, part.Items...)
		for env, repos := range part.Present {
			if whole.Present == nil {
				whole.Present = map[string]map[string][]string{}
			}
			if whole.Present[env] == nil {
				whole.Present[env] = map[string][]string{}
			}
			for repo, digests := range repos {
				whole.Present[env][repo] = append(whole.Present[env][repo], digests...)
			}
		}
	}
	if whole == nil {
		return nil, fmt.Errorf("%w: --plan %s: the folder holds no *.json or *.json.gz", ErrPlan, path)
	}
	if problems := whole.check(); len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrPlan, strings.Join(problems, "; "))
	}
	return whole, nil
}

func loadFile(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --plan %s: %v", ErrPlan, path, err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		unzipped, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%w: --plan %s: %v", ErrPlan, path, err)
		}
		defer unzipped.Close()
		r = unzipped
	}
	return Parse(r)
}

// settings is a part's plan without its items and present repositories, as JSON.
func settings(p *Plan) string {
	rest := *p
	rest.Items, rest.Present = nil, nil
	data, _ := json.Marshal(rest)
	return string(data)
}

// Parse reads a plan: unknown fields are refused (json.Decoder.DisallowUnknownFields, whose
// message names the field), then every value is checked; every problem found is reported at once.
func Parse(r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPlan, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v (the fields are those of components/copier/README.md)", ErrPlan, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: more than one JSON value in the file", ErrPlan)
	}
	p.defaults()
	if problems := p.check(); len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrPlan, strings.Join(problems, "; "))
	}
	return &p, nil
}

func (p *Plan) defaults() {
	if p.ParallelImages == 0 {
		p.ParallelImages = DefaultParallelImages
	}
	if p.ParallelBlobs == 0 {
		p.ParallelBlobs = DefaultParallelBlobs
	}
	if p.Retries == nil {
		r := DefaultRetries
		p.Retries = &r
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = DefaultTimeoutSeconds
	}
	for i := range p.Items {
		if p.Items[i].SourceRepository == "" {
			p.Items[i].SourceRepository = p.Items[i].Repository
		}
	}
}

func checkRegistry(field string, r Registry) []string {
	var problems []string
	if r.Registry == "" || strings.ContainsAny(r.Registry, "/ ") {
		problems = append(problems, fmt.Sprintf("%s.registry %q: give host[:port], no scheme or path", field, r.Registry))
	}
	return problems
}

func (p *Plan) check() []string {
	problems := checkRegistry("source", p.Source)
	for env, r := range p.Destinations {
		problems = append(problems, checkRegistry("destinations."+env, r)...)
	}
	if p.TokenFile == "" {
		missing := p.Source.TokenFile == ""
		for _, r := range p.Destinations {
			missing = missing || r.TokenFile == ""
		}
		if missing {
			problems = append(problems, "token_file: required unless every registry has its own token_file (the file holding the registry credential, a projected service account token)")
		}
	}
	if p.ParallelImages < 1 || p.ParallelImages > 64 {
		problems = append(problems, fmt.Sprintf("parallel_images %d: give 1 to 64", p.ParallelImages))
	}
	if p.ParallelBlobs < 1 || p.ParallelBlobs > 64 {
		problems = append(problems, fmt.Sprintf("parallel_blobs %d: give 1 to 64", p.ParallelBlobs))
	}
	if *p.Retries < 0 || *p.Retries > 20 {
		problems = append(problems, fmt.Sprintf("retries %d: give 0 to 20", *p.Retries))
	}
	if p.TimeoutSeconds < 1 || p.TimeoutSeconds > 3600 {
		problems = append(problems, fmt.Sprintf("timeout_seconds %d: give 1 to 3600", p.TimeoutSeconds))
	}
	for from, to := range p.Realms {
		if !strings.HasPrefix(to, "https://") && !strings.HasPrefix(to, "http://") {
			problems = append(problems, fmt.Sprintf("realms[%q] %q: give an http(s) URL", from, to))
		}
	}
	for env, repos := range p.Present {
		for repo, digests := range repos {
			for i, d := range digests {
				if !digestPattern.MatchString(d) {
					problems = append(problems, fmt.Sprintf("present.%s[%q][%d] %q: give sha256:<64 hex digits>", env, repo, i, d))
				}
			}
		}
	}
	ids := map[int]bool{}
	for i, it := range p.Items {
		at := fmt.Sprintf("items[%d]", i)
		if ids[it.ID] {
			problems = append(problems, fmt.Sprintf("%s.id %d: used twice; give each item its own id", at, it.ID))
		}
		ids[it.ID] = true
		if _, ok := p.Destinations[it.Environment]; !ok {
			problems = append(problems, fmt.Sprintf("%s.environment %q: not in destinations", at, it.Environment))
		}
		if !repoPattern.MatchString(it.Repository) {
			problems = append(problems, fmt.Sprintf("%s.repository %q: not a repository name", at, it.Repository))
		}
		if !repoPattern.MatchString(it.SourceRepository) {
			problems = append(problems, fmt.Sprintf("%s.source_repository %q: not a repository name", at, it.SourceRepository))
		}
		if !tagPattern.MatchString(it.Tag) {
			problems = append(problems, fmt.Sprintf("%s.tag %q: not a tag", at, it.Tag))
		}
		if !digestPattern.MatchString(it.Digest) {
			problems = append(problems, fmt.Sprintf("%s.digest %q: give sha256:<64 hex digits>", at, it.Digest))
		}
		if it.ArtifactOf != "" && !digestPattern.MatchString(it.ArtifactOf) {
			problems = append(problems, fmt.Sprintf("%s.artifact_of %q: give sha256:<64 hex digits>", at, it.ArtifactOf))
		}
		if it.Requires != nil {
			if it.Requires.Environment == "" || it.Requires.Repository == "" || !digestPattern.MatchString(it.Requires.Digest) {
				problems = append(problems, fmt.Sprintf("%s.requires: give environment, repository and digest (sha256:<64 hex digits>)", at))
			}
		}
	}
	return problems
}
