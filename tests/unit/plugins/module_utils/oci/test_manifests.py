"""OCI manifests and the registry client's pure helpers (no network)."""

import hashlib
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.oci import transport
from ansible_collections.segmented.registry.plugins.module_utils.oci import manifests


def d(seed):
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def test_oci_pure_helpers():
    scheme, params = transport.parse_challenge(
        'Bearer realm="https://localhost:5110/token",service="env-test",scope="repository:a/b:pull,push"')
    assert scheme == "bearer" and params == {"realm": "https://localhost:5110/token", "service": "env-test",
                                             "scope": "repository:a/b:pull,push"}
    assert transport.next_link('</v2/a/tags/list?last=x&n=2>; rel="next"') == "/v2/a/tags/list?last=x&n=2"
    assert transport.next_link(None) is None
    assert manifests.artifact_subject("sha256-" + "a" * 64 + ".sig") == "sha256:" + "a" * 64
    assert manifests.artifact_subject("v1") is None
    placeholder = manifests.placeholder_manifest("x")
    assert manifests.parse_manifest(placeholder, manifests.OCI_MANIFEST)["blobs"][0]["digest"] == manifests.EMPTY_JSON_DIGEST
    assert manifests.sha256_digest(manifests.EMPTY_JSON) == manifests.EMPTY_JSON_DIGEST
    assert manifests.placeholder_manifest("x") != manifests.placeholder_manifest("y")
    index = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_INDEX,
                        "manifests": [{"digest": d("p1"), "size": 1, "mediaType": manifests.OCI_MANIFEST}]}).encode()
    parsed = manifests.parse_manifest(index, manifests.media_type_of(index))
    assert parsed["index"] and [c["digest"] for c in parsed["children"]] == [d("p1")]
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": d("c"), "size": 2},
                           "layers": [{"digest": d("l"), "size": 3},
                                      {"digest": d("f"), "size": 4, "urls": ["https://x"]},
                                      {"digest": d("l"), "size": 3}]}).encode()
    assert manifests.media_type_of(manifest, "application/vnd.docker.distribution.manifest.v2+json") == manifests.DOCKER_MANIFEST
    assert [b["digest"] for b in manifests.parse_manifest(manifest, manifests.OCI_MANIFEST)["blobs"]] == [d("c"), d("l")]
    with pytest.raises(manifests.ManifestError):
        manifests.parse_manifest(json.dumps({"schemaVersion": 1}).encode(), manifests.DOCKER_MANIFEST)
    with pytest.raises(manifests.ManifestError):
        manifests.parse_manifest(b"{}", "application/vnd.docker.distribution.manifest.v1+prettyjws")
