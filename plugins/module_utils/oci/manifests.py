# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""OCI and Docker v2 manifests as the promotion engine copies them (pure, no I/O).

Media types, digests, what a manifest refers to (an index's child manifests; a manifest's config
and layers), the placeholder manifest used to remove one tag from a registry that deletes by
digest, and the tags cosign gives a digest's signature, attestation and SBOM.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.errors import OciError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
#: What we ask for: the four kinds we copy unchanged (never Docker schema 1, deprecated and
#: signed by the registry itself, so its bytes cannot survive a copy).
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
#: Layers that live outside the registry (Windows base layers): never copied, as in docker/skopeo.
FOREIGN_LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)
#: The OCI "empty" descriptor's blob (``{}``), the config of artifacts and placeholders.
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_JSON_TYPE = "application/vnd.oci.empty.v1+json"

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of the bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(reference: str | None) -> bool:
    """Whether a reference is a sha256 digest (not a tag)."""
    return bool(DIGEST_RE.match(reference or ""))


class ManifestError(OciError, ValueError):
    """Manifest bytes that cannot be copied as they are."""


def media_type_of(data: bytes, content_type: str | None = None) -> str:
    """The manifest's media type: its ``mediaType`` field, else the Content-Type it was served
    with (OCI manifests may omit the field), else guessed from its shape."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ManifestError("the manifest is not JSON")
    if not isinstance(document, dict):
        raise ManifestError("the manifest is not a JSON object")
    declared = document.get("mediaType")
    served = (content_type or "").split(";")[0].strip() or None
    if declared:
        return declared
    if served in INDEX_TYPES + MANIFEST_TYPES:
        return served
    if "manifests" in document:
        return OCI_INDEX
    if "layers" in document or "config" in document:
        return OCI_MANIFEST
    raise ManifestError(f"cannot tell the manifest's media type (no mediaType field, Content-Type {served})")


def parse_manifest(data: bytes, media_type: str) -> dict[str, Any]:
    """What a manifest refers to: ``{"index": bool, "children": [descriptor], "blobs":
    [descriptor]}``. An index's children are manifests; a manifest's blobs are its config and
    layers (foreign layers and layers with ``urls`` excluded). ``subject`` is not followed: a
    referrer is copied on its own."""
    if media_type not in INDEX_TYPES + MANIFEST_TYPES:
        raise ManifestError(f"media type {media_type} is not one that can be copied unchanged (expected one of: {ACCEPT})")
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ManifestError("the manifest is not JSON")
    if document.get("schemaVersion") != 2:
        raise ManifestError(f"schemaVersion {document.get('schemaVersion')!r} is not 2 (Docker schema 1 cannot be copied by digest)")
    if media_type in INDEX_TYPES:
        children = []
        for item in document.get("manifests") or []:
            _check_descriptor(item)
            children.append(dict(digest=item["digest"], size=item.get("size"), mediaType=item.get("mediaType"), platform=item.get("platform")))
        return {"index": True, "children": children, "blobs": []}
    blobs = []
    config = document.get("config")
    if config:
        _check_descriptor(config)
        blobs.append({"digest": config["digest"], "size": config.get("size"), "mediaType": config.get("mediaType")})
    for layer in document.get("layers") or []:
        _check_descriptor(layer)
        if layer.get("mediaType") in FOREIGN_LAYER_TYPES or layer.get("urls"):
            continue
        blobs.append({"digest": layer["digest"], "size": layer.get("size"), "mediaType": layer.get("mediaType")})
    unique = []
    seen = set()
    for blob in blobs:
        if blob["digest"] not in seen:
            seen.add(blob["digest"])
            unique.append(blob)
    return {"index": False, "children": [], "blobs": unique}


def _check_descriptor(item: Any) -> None:
    if not isinstance(item, dict) or not is_digest(item.get("digest")):
        raise ManifestError(f"a descriptor without a sha256 digest: {json.dumps(item)[:200]}")


def placeholder_manifest(note: str) -> bytes:
    """A tiny OCI artifact manifest (no layers, the empty config) that is unique per ``note``.

    Used to remove one tag from a registry that deletes by digest: the tag is first pointed at
    this placeholder, then the placeholder's digest is deleted, which takes only that tag."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_JSON_TYPE, "digest": EMPTY_JSON_DIGEST, "size": len(EMPTY_JSON)},
        "layers": [],
        "annotations": {"io.segmented-registry.placeholder": note},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def artifact_tags(digest: str) -> list[str]:
    """The tags cosign gives the signature, attestation and SBOM of ``digest``."""
    hexpart = digest.split(":", 1)[1]
    return [f"sha256-{hexpart}.{suffix}" for suffix in ("sig", "att", "sbom")]


_ARTIFACT_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")


def artifact_subject(tag: str | None) -> str | None:
    """The digest a cosign artifact tag belongs to, or None for an ordinary tag."""
    match = _ARTIFACT_TAG.match(tag or "")
    return "sha256:" + match.group(1) if match else None
