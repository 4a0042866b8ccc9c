package copier

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Media types of manifests that are copied unchanged.
const (
	OCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	OCIIndex       = "application/vnd.oci.image.index.v1+json"
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	DockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ErrManifest is the kind of a manifest that cannot be copied.
var ErrManifest = errors.New("manifest cannot be copied")

// foreignLayers live outside the registry (Windows base layers): never copied.
var foreignLayers = []string{
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Descriptor is the part of an OCI descriptor the copier reads.
type Descriptor struct {
	MediaType string   `json:"mediaType"`
	Digest    string   `json:"digest"`
	Size      *int64   `json:"size"`
	URLs      []string `json:"urls"`
}

// Refs is what a manifest refers to: an index's children (manifests), or a manifest's blobs
// (config and layers, foreign layers and layers with urls excluded, each digest once). A
// subject is not followed: a referrer is copied on its own.
type Refs struct {
	Index    bool
	Children []Descriptor
	Blobs    []Descriptor
}

// Parse reads the references of a manifest (as execute.py's parse_manifest).
func Parse(data []byte, mediaType string) (Refs, error) {
	index := mediaType == OCIIndex || mediaType == DockerList
	if !index && mediaType != OCIManifest && mediaType != DockerManifest {
		return Refs{}, fmt.Errorf("%w: media type %q is not one that can be copied unchanged (expected one of: %s, %s, %s, %s)",
			ErrManifest, mediaType, OCIIndex, OCIManifest, DockerList, DockerManifest)
	}
	var doc struct {
		SchemaVersion int          `json:"schemaVersion"`
		Manifests     []Descriptor `json:"manifests"`
		Config        *Descriptor  `json:"config"`
		Layers        []Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Refs{}, fmt.Errorf("%w: the manifest is not JSON", ErrManifest)
	}
	if doc.SchemaVersion != 2 {
		return Refs{}, fmt.Errorf("%w: schemaVersion %d is not 2 (Docker schema 1 cannot be copied by digest)", ErrManifest, doc.SchemaVersion)
	}
	check := func(d Descriptor) error {
		if !digestPattern.MatchString(d.Digest) {
			return fmt.Errorf("%w: a descriptor without a sha256 digest (%q)", ErrManifest, d.Digest)
		}
		return nil
	}
	if index {
		for _, m := range doc.Manifests {
			if err := check(m); err != nil {
				return Refs{}, err
			}
		}
		return Refs{Index: true, Children: doc.Manifests}, nil
	}
	var blobs []Descriptor
	if doc.Config != nil {
		if err := check(*doc.Config); err != nil {
			return Refs{}, err
		}
		blobs = append(blobs, *doc.Config)
	}
	for _, l := range doc.Layers {
		if err := check(l); err != nil {
			return Refs{}, err
		}
		if slices.Contains(foreignLayers, l.MediaType) || len(l.URLs) > 0 {
			continue
		}
		blobs = append(blobs, l)
	}
	seen := map[string]bool{}
	unique := blobs[:0]
	for _, b := range blobs {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			unique = append(unique, b)
		}
	}
	return Refs{Blobs: unique}, nil
}
