// Package copier carries out a plan's copies as the collection's Python Executor
// (plugins/module_utils/promotion/execute.py) does: waves by requires, a source check once per
// (repository, tag, digest), a tag-only PUT when the destination repository holds the image,
// else the tree (index children first, blobs present/mounted/sent, the manifest's exact bytes
// last), one copy of one image into one repository at a time, blobs deduplicated per
// (environment, digest).
package copier

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmented-registry/copier/internal/keyed"
	"github.com/segmented-registry/copier/internal/plan"
	"github.com/segmented-registry/copier/internal/registry"
)

// Results of an item.
const (
	Copied = "copied"
	Failed = "failed"
	Gated  = "gated"
)

// ErrSourceMoved is the kind of the failures of a source that no longer serves the planned digest.
var ErrSourceMoved = errors.New("source moved")

// movedError is such a failure, with execute.py's text.
type movedError string

func (e movedError) Error() string        { return string(e) }
func (e movedError) Is(target error) bool { return target == ErrSourceMoved }

// Counters of one copy.
type Counters struct {
	BytesSent    int64   `json:"bytes_sent"`
	BlobsSent    int64   `json:"blobs_sent"`
	BlobsMounted int64   `json:"blobs_mounted"`
	BlobsPresent int64   `json:"blobs_present"`
	ManifestsPut int64   `json:"manifests_put"`
	Seconds      float64 `json:"seconds"`
}

// Result of one item: a gated one has no counters.
type Result struct {
	ID     int    `json:"id"`
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
	*Counters
}

// Executor carries out copy items. Source: the registry images come from; Destinations by
// environment; ImageWorkers images are copied at once, BlobWorkers blobs (over all images).
type Executor struct {
	Source       *registry.Client
	Destinations map[string]*registry.Client
	ImageWorkers int
	BlobWorkers  int
	// Emit receives each item's result as it ends (called one at a time).
	Emit  func(Result)
	Clock func() time.Time

	mu           sync.Mutex
	emitMu       sync.Mutex
	manifests    map[string]manifest           // digest -> bytes and media type from the source
	blobHome     map[[2]string]string          // (env, blob digest) -> a repository of env that has it
	inflight     map[[2]string]chan struct{}   // (env, blob digest) -> closed once the first attempt ended
	images       map[[2]string]map[string]bool // (env, digest) -> repositories that hold the manifest (mount candidates)
	present      map[[3]string]bool            // (env, repo, digest) there now (the plan's present, or copied in this run)
	sourceChecks map[[3]string]*sourceCheck    // (source repo, tag or digest, digest) -> its answer
	imageLocks   keyed.Mutexes[[3]string]      // (env, repo, digest): one copy of an image into a repository at a time
	blobSlots    chan struct{}
}

type manifest struct {
	data      []byte
	mediaType string
}

type sourceCheck struct {
	done chan struct{}
	err  error
}

// Run carries out items (present: {env: {repo: [digests]}}) and returns their results in the
// items' order. A failure of one item never stops the others.
func (x *Executor) Run(ctx context.Context, items []plan.Item, present map[string]map[string][]string) []Result {
	x.manifests = map[string]manifest{}
	x.blobHome = map[[2]string]string{}
	x.inflight = map[[2]string]chan struct{}{}
	x.images = map[[2]string]map[string]bool{}
	x.present = map[[3]string]bool{}
	x.sourceChecks = map[[3]string]*sourceCheck{}
	x.blobSlots = make(chan struct{}, max(1, x.BlobWorkers))
	if x.Clock == nil {
		x.Clock = time.Now
	}
	for env, repos := range present {
		for repo, digests := range repos {
			for _, d := range digests {
				x.recordImage(env, repo, d)
			}
		}
	}
	results := make([]Result, len(items))
	for _, wave := range Waves(items) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(max(1, x.ImageWorkers), len(wave)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					results[i] = x.runCopy(ctx, items[i])
					x.emitMu.Lock()
					if x.Emit != nil {
						x.Emit(results[i])
					}
					x.emitMu.Unlock()
				}
			}()
		}
		for _, i := range wave {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	return results
}

func (x *Executor) runCopy(ctx context.Context, item plan.Item) Result {
	started := x.Clock()
	if r := item.Requires; r != nil {
		x.mu.Lock()
		met := x.present[[3]string{r.Environment, r.Repository, r.Digest}]
		x.mu.Unlock()
		if !met {
			reason := fmt.Sprintf("policy after %s: its copy into %s did not succeed in this run", r.Environment, r.Environment)
			if item.ArtifactOf != "" {
				reason = fmt.Sprintf("not copied: its image %s did not reach %s in this run", r.Digest, item.Environment)
			}
			return Result{ID: item.ID, Result: Gated, Reason: reason}
		}
	}
	c := &Counters{}
	result := Result{ID: item.ID, Result: Copied, Counters: c}
	err := func() (err error) {
		defer func() { // a bug must not stop the other items: it is reported as this item's failure
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error: %v", p)
			}
		}()
		return x.copy(ctx, item, c)
	}()
	if err != nil {
		result.Result, result.Error = Failed, err.Error()
	}
	c.Seconds = math.Round(x.Clock().Sub(started).Seconds()*1000) / 1000
	return result
}

// copy copies item.Digest into its environment's registry as repository:tag.
func (x *Executor) copy(ctx context.Context, item plan.Item, c *Counters) error {
	destination, ok := x.Destinations[item.Environment]
	if !ok {
		return fmt.Errorf("environment %q has no destination registry in the plan", item.Environment)
	}
	sourceRepository := item.SourceRepository
	if sourceRepository == "" {
		sourceRepository = item.Repository
	}
	ref := item.Tag
	if item.ByDigest {
		ref = item.Digest
	}
	if err := x.checkSource(ctx, sourceRepository, ref, item.Digest); err != nil {
		return err
	}
	// Tags of one image into one repository go one at a time: the first copies the tree, the
	// others only PUT their tag.
	defer x.imageLocks.Lock([3]string{item.Environment, item.Repository, item.Digest})()
	held, err := x.holds(ctx, destination, item.Environment, item.Repository, item.Digest)
	if err != nil {
		return err
	}
	var m manifest
	if held {
		// its blobs and child manifests are there, only the tag is missing
		m, err = x.manifest(ctx, sourceRepository, item.Digest)
	} else {
		m, err = x.copyTree(ctx, item.Environment, destination, sourceRepository, item.Repository, item.Digest, c)
	}
	if err != nil {
		return err
	}
	if err := destination.PutManifest(ctx, item.Repository, item.Tag, m.data, m.mediaType); err != nil {
		return err
	}
	atomic.AddInt64(&c.ManifestsPut, 1)
	x.recordImage(item.Environment, item.Repository, item.Digest)
	return nil
}

// holds: the repository has the manifest (known to the run, or a HEAD finds it).
func (x *Executor) holds(ctx context.Context, destination *registry.Client, env, repository, digest string) (bool, error) {
	x.mu.Lock()
	known := x.present[[3]string{env, repository, digest}]
	x.mu.Unlock()
	if known {
		return true, nil
	}
	served, err := destination.HeadManifest(ctx, repository, digest)
	return served != "", err
}

// checkSource fails unless the source serves digest under ref (a tag, or the digest itself):
// one HEAD per (repository, ref, digest) in a run; the others wait for its answer.
func (x *Executor) checkSource(ctx context.Context, repository, ref, digest string) error {
	key := [3]string{repository, ref, digest}
	x.mu.Lock()
	check, ok := x.sourceChecks[key]
	if !ok {
		check = &sourceCheck{done: make(chan struct{})}
		x.sourceChecks[key] = check
	}
	x.mu.Unlock()
	if !ok {
		func() {
			defer close(check.done)
			served, err := x.Source.HeadManifest(ctx, repository, ref)
			switch {
			case err != nil:
				check.err = err
			case ref == digest && served == "":
				check.err = movedError(fmt.Sprintf("%s/%s@%s no longer exists in the source registry, so it cannot be copied back (a rollback's pinned digest); nothing was copied for this tag",
					x.Source.Host, repository, digest))
			case served != digest:
				now := "does not exist"
				if served != "" {
					now = "serves " + served
				}
				check.err = movedError(fmt.Sprintf("source moved: %s/%s:%s now %s, but the plan (the ImageStream's status) says %s; nothing was copied for this tag (a different digest is never tagged). Run again once the ImageStream shows the new image, or approve it again",
					x.Source.Host, repository, ref, now, digest))
			}
		}()
	}
	<-check.done
	return check.err
}

// manifest: the source's exact bytes and media type of digest (once per run).
func (x *Executor) manifest(ctx context.Context, repository, digest string) (manifest, error) {
	x.mu.Lock()
	m, ok := x.manifests[digest]
	x.mu.Unlock()
	if ok {
		return m, nil
	}
	data, mediaType, found, err := x.Source.GetManifest(ctx, repository, digest)
	if err != nil {
		return manifest{}, err
	}
	if !found {
		return manifest{}, movedError(fmt.Sprintf("source moved: %s/%s@%s no longer exists in the source registry", x.Source.Host, repository, digest))
	}
	m = manifest{data: data, mediaType: mediaType}
	x.mu.Lock()
	x.manifests[digest] = m
	x.mu.Unlock()
	return m, nil
}

// copyTree brings everything digest refers to into the destination repository (not the
// manifest itself) and returns the manifest.
func (x *Executor) copyTree(ctx context.Context, env string, destination *registry.Client, sourceRepository, repository, digest string, c *Counters) (manifest, error) {
	m, err := x.manifest(ctx, sourceRepository, digest)
	if err != nil {
		return manifest{}, err
	}
	refs, err := Parse(m.data, m.mediaType)
	if err != nil {
		return manifest{}, fmt.Errorf("%s/%s@%s: %w", x.Source.Host, sourceRepository, digest, err)
	}
	if refs.Index {
		for _, child := range refs.Children {
			held, err := x.holds(ctx, destination, env, repository, child.Digest)
			if err != nil {
				return manifest{}, err
			}
			if held {
				continue
			}
			cm, err := x.copyTree(ctx, env, destination, sourceRepository, repository, child.Digest, c)
			if err != nil {
				return manifest{}, err
			}
			if err := destination.PutManifest(ctx, repository, child.Digest, cm.data, cm.mediaType); err != nil {
				return manifest{}, err
			}
			atomic.AddInt64(&c.ManifestsPut, 1)
			x.recordImage(env, repository, child.Digest)
		}
		return m, nil
	}
	x.mu.Lock()
	var hints []string
	for repo := range x.images[[2]string{env, digest}] {
		hints = append(hints, repo)
	}
	x.mu.Unlock()
	sort.Strings(hints)
	// the largest blobs first, so that the small ones (the config) fill in at the end
	blobs := slices.Clone(refs.Blobs)
	sort.SliceStable(blobs, func(i, j int) bool { return size(blobs[i]) > size(blobs[j]) })
	errs := make([]error, len(blobs))
	var wg sync.WaitGroup
	for i, blob := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.blobSlots <- struct{}{}
			defer func() { <-x.blobSlots }()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("internal error: %v", p)
				}
			}()
			errs[i] = x.ensureBlob(ctx, env, destination, sourceRepository, repository, blob, hints, c)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return manifest{}, err
		}
	}
	return m, nil
}

func size(d Descriptor) int64 {
	if d.Size == nil {
		return 0
	}
	return *d.Size
}

func (x *Executor) recordImage(env, repository, digest string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := [2]string{env, digest}
	if x.images[k] == nil {
		x.images[k] = map[string]bool{}
	}
	x.images[k][repository] = true
	x.present[[3]string{env, repository, digest}] = true
}

// ensureBlob: one blob per (env, digest) at a time; who comes second waits for the first,
// then finds it present or mounts it.
func (x *Executor) ensureBlob(ctx context.Context, env string, destination *registry.Client, sourceRepository, repository string, blob Descriptor, hints []string, c *Counters) error {
	key := [2]string{env, blob.Digest}
	x.mu.Lock()
	done, busy := x.inflight[key]
	if !busy {
		done = make(chan struct{})
		x.inflight[key] = done
	}
	x.mu.Unlock()
	if busy {
		<-done
	} else {
		defer close(done)
	}
	return x.ensureBlobOnce(ctx, env, destination, sourceRepository, repository, blob, hints, c)
}

func (x *Executor) ensureBlobOnce(ctx context.Context, env string, destination *registry.Client, sourceRepository, repository string, blob Descriptor, hints []string, c *Counters) error {
	found, err := destination.HeadBlob(ctx, repository, blob.Digest)
	if err != nil {
		return err
	}
	if found {
		atomic.AddInt64(&c.BlobsPresent, 1)
		x.home(env, blob.Digest, repository)
		return nil
	}
	x.mu.Lock()
	home := x.blobHome[[2]string{env, blob.Digest}]
	x.mu.Unlock()
	var candidates []string
	if home != "" {
		candidates = append(candidates, home)
	}
	for _, h := range hints {
		if !slices.Contains(candidates, h) {
			candidates = append(candidates, h)
		}
	}
	location := ""
	for _, candidate := range candidates {
		if candidate == repository {
			continue
		}
		mounted, loc, err := destination.Mount(ctx, repository, blob.Digest, candidate)
		if err != nil {
			return err
		}
		if mounted {
			atomic.AddInt64(&c.BlobsMounted, 1)
			x.home(env, blob.Digest, repository)
			return nil
		}
		location = loc
		break // refused (an upload session was opened instead): stream into it
	}
	want := int64(-1)
	if blob.Size != nil {
		want = *blob.Size
	}
	sent, err := registry.CopyBlob(ctx, x.Source, sourceRepository, destination, repository, blob.Digest, want, location)
	if err != nil {
		return err
	}
	atomic.AddInt64(&c.BlobsSent, 1)
	atomic.AddInt64(&c.BytesSent, sent)
	x.home(env, blob.Digest, repository)
	return nil
}

func (x *Executor) home(env, digest, repository string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := [2]string{env, digest}
	if _, ok := x.blobHome[k]; !ok {
		x.blobHome[k] = repository
	}
}

// Waves groups item indexes so that each one's requires is copied in an earlier wave (as
// execute.py's _waves: the depth of an item is one more than its deepest producer's).
func Waves(items []plan.Item) [][]int {
	produced := map[[3]string][]int{}
	for i, it := range items {
		k := [3]string{it.Environment, it.Repository, it.Digest}
		produced[k] = append(produced[k], i)
	}
	depth := map[int]int{}
	var depthOf func(i int, seen []int) int
	depthOf = func(i int, seen []int) int {
		if d, ok := depth[i]; ok {
			return d
		}
		level := 0
		if r := items[i].Requires; r != nil && !slices.Contains(seen, i) {
			for _, p := range produced[[3]string{r.Environment, r.Repository, r.Digest}] {
				if p != i {
					level = max(level, 1+depthOf(p, append(slices.Clone(seen), i)))
				}
			}
		}
		depth[i] = level
		return level
	}
	byLevel := map[int][]int{}
	for i := range items {
		l := depthOf(i, nil)
		byLevel[l] = append(byLevel[l], i)
	}
	levels := make([]int, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	waves := make([][]int, 0, len(levels))
	for _, l := range levels {
		waves = append(waves, byLevel[l])
	}
	return waves
}
