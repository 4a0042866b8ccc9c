"""Unit tests of lab/image.py: the OCI layout, the push wrapper (with a fake skopeo) and the
ImageStream status merge. No network, no cluster."""

import base64
import copy
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from lab import image

KiB = 1024


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(layout, digest):
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    path = tmp_path_factory.mktemp("oci") / "layout"
    digest = image.build_oci_layout(str(path), layers=3, layer_size=200 * KiB, seed="unit")
    return path, digest


# --- OCI layout --------------------------------------------------------------------------------

def test_layout_files_and_blob_digests(layout):
    path = layout[0]
    assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    blobs = list((path / "blobs" / "sha256").iterdir())
    assert len(blobs) == 5  # 3 layers, config, manifest
    for blob in blobs:
        assert _sha(blob.read_bytes()) == "sha256:" + blob.name
        assert stat.S_IMODE(blob.stat().st_mode) == 0o644


def test_index_manifest_config_layers_are_consistent(layout):
    path, digest = layout
    index = json.loads((path / "index.json").read_text())
    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 1
    entry = index["manifests"][0]
    assert entry["digest"] == digest
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    raw_manifest = _blob(path, digest)
    assert len(raw_manifest) == entry["size"] and _sha(raw_manifest) == digest
    manifest = json.loads(raw_manifest)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    raw_config = _blob(path, manifest["config"]["digest"])
    assert len(raw_config) == manifest["config"]["size"]
    config = json.loads(raw_config)
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["rootfs"]["type"] == "layers"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"]) == 3
    assert len(config["history"]) == 3
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        data = _blob(path, layer["digest"])
        assert len(data) == layer["size"]
        assert _sha(gzip.decompress(data)) == diff_id
    assert len({layer["digest"] for layer in manifest["layers"]}) == 3  # distinct content
    assert image.verify_layout(str(path)) == []
    assert image.load_manifest(str(path)) == (digest, manifest)


def test_layer_tar_content(layout):
    path, digest = layout
    manifest = json.loads(_blob(path, digest))
    layer = gzip.decompress(_blob(path, manifest["layers"][1]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == ["app", "app/layer-02", "app/layer-02/README",
                         "app/layer-02/part-0000.bin"]
        assert all(m.mtime == 0 and m.uid == 0 for m in members)
        assert tar.getmember("app/layer-02/part-0000.bin").size == 200 * KiB
        assert b"layer: 2/3" in tar.extractfile("app/layer-02/README").read()


def test_same_seed_same_digest_different_seed_different(tmp_path, layout):
    digest = layout[1]
    again = image.build_oci_layout(str(tmp_path / "again"), layers=3, layer_size=200 * KiB,
                                   seed="unit")
    assert again == digest
    other = image.build_oci_layout(str(tmp_path / "other"), layers=3, layer_size=200 * KiB,
                                   seed="unit-2")
    assert other != digest
    fewer = image.build_oci_layout(str(tmp_path / "fewer"), layers=2, layer_size=200 * KiB,
                                   seed="unit")
    assert fewer != digest


def test_big_layer_is_split_into_files(tmp_path):
    assert image.layer_files(1, 0) == []
    assert image.layer_files(3, image.MiB + 5) == [("app/layer-03/part-0000.bin", image.MiB),
                                                   ("app/layer-03/part-0001.bin", 5)]
    path = tmp_path / "big"
    image.build_oci_layout(str(path), layers=1, layer_size=image.MiB + 3 * KiB, seed="big")
    assert image.verify_layout(str(path)) == []
    summary = image.image_summary(str(path))
    assert len(summary["layers"]) == 1
    assert summary["layers"][0]["size"] > image.MiB  # pseudo-random data does not compress


def test_build_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        image.build_oci_layout(str(tmp_path / "x"), layers=0)
    with pytest.raises(ValueError):
        image.build_oci_layout(str(tmp_path / "x"), layer_size=-1)


def test_verify_layout_detects_corruption(tmp_path):
    path = tmp_path / "bad"
    digest = image.build_oci_layout(str(path), layers=1, layer_size=KiB, seed="c")
    manifest = json.loads(_blob(path, digest))
    layer = path / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    assert image.verify_layout(str(path))


def test_pseudo_random_reader_is_chunk_independent():
    whole = image.PseudoRandomReader("x", 200_000).read()
    assert len(whole) == 200_000
    reader = image.PseudoRandomReader("x", 200_000)
    parts = []
    for n in [1, 7, 65_535, 3, 100_000, 50_000]:
        parts.append(reader.read(n))
    parts.append(reader.read())
    assert b"".join(parts) == whole
    assert reader.read(10) == b""
    assert image.PseudoRandomReader("y", 1000).read() != whole[:1000]


def test_image_summary(layout):
    path, digest = layout
    summary = image.image_summary(str(path))
    manifest = json.loads(_blob(path, digest))
    assert summary["digest"] == digest
    assert summary["layers"] == [{"digest": d["digest"], "size": d["size"]}
                                 for d in manifest["layers"]]
    assert summary["bytes"] == sum(d["size"] for d in manifest["layers"]) + \
        manifest["config"]["size"]


# --- push (fake skopeo) ------------------------------------------------------------------------

FAKE_SKOPEO = r"""#!/usr/bin/env python3
import json, os, stat, sys
args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1]
authfile = opt("--dest-authfile")
record = {"argv": args, "auth": json.load(open(authfile)),
          "auth_mode": stat.S_IMODE(os.stat(authfile).st_mode),
          "certs": sorted(os.listdir(opt("--dest-cert-dir")))}
json.dump(record, open(os.environ["FAKE_SKOPEO_RECORD"], "w"))
if os.environ.get("FAKE_SKOPEO_FAIL"):
    sys.stderr.write("unauthorized: " + record["auth"]["auths"]["localhost:5100"]["auth"] + "\n")
    sys.exit(1)
open(opt("--digestfile"), "w").write("sha256:" + "ab" * 32)
"""


@pytest.fixture
def fake_skopeo(tmp_path, monkeypatch):
    script = tmp_path / "skopeo"
    script.write_text(FAKE_SKOPEO)
    script.chmod(0o755)
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_SKOPEO_RECORD", str(record))
    cadir = tmp_path / "pki"
    cadir.mkdir()
    (cadir / "ca.crt").write_text("CA")
    (cadir / "ca.key").write_text("KEY")  # must not reach skopeo's cert dir
    return str(script), record, str(cadir)


def test_push_passes_credentials_only_through_a_private_authfile(layout, fake_skopeo):
    path = layout[0]
    skopeo, record, cadir = fake_skopeo
    digest = image.push(str(path), "localhost:5100/myproject/app:v1", username="u",
                        password="s3cret-token", ca_dir=cadir, skopeo=skopeo)
    assert digest == "sha256:" + "ab" * 32
    seen = json.loads(record.read_text())
    assert "s3cret-token" not in " ".join(seen["argv"])
    assert seen["auth_mode"] == 0o600
    auth = seen["auth"]["auths"]["localhost:5100"]["auth"]
    assert base64.b64decode(auth).decode() == "u:s3cret-token"
    assert seen["certs"] == ["ca.crt"]
    assert seen["argv"][-2:] == [f"oci:{path}", "docker://localhost:5100/myproject/app:v1"]
    assert "copy" in seen["argv"] and "--policy" in seen["argv"]
    authfile = seen["argv"][seen["argv"].index("--dest-authfile") + 1]
    assert not os.path.exists(authfile)  # removed afterwards


def test_push_failure_does_not_leak_credentials(layout, fake_skopeo, monkeypatch):
    path = layout[0]
    skopeo, cadir = fake_skopeo[0], fake_skopeo[2]
    monkeypatch.setenv("FAKE_SKOPEO_FAIL", "1")
    with pytest.raises(image.PushError) as err:
        image.push(str(path), "localhost:5100/myproject/app:v1", username="u",
                   password="s3cret-token", ca_dir=cadir, skopeo=skopeo)
    text = str(err.value)
    assert "exit 1" in text and "s3cret-token" not in text
    assert base64.b64encode(b"u:s3cret-token").decode() not in text


def test_registry_host_and_auth_config():
    assert image.registry_host_of("localhost:5100/ns/app:v1") == "localhost:5100"
    assert image.registry_host_of("registry.example/ns/app") == "registry.example"
    for bad in ["ns/app", "app", "localhost:5100"]:
        with pytest.raises(ValueError):
            image.registry_host_of(bad)
    assert image.auth_config("h:1", "a", "b") == {
        "auths": {"h:1": {"auth": base64.b64encode(b"a:b").decode()}}}


# --- ImageStream status (ImageStreamMapping semantics) -----------------------------------------

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
HOST = "localhost:5100"


def _event(digest, gen=1, created="2026-01-01T00:00:00Z", host=HOST):
    return image.make_tag_event(host, "myproject", "app", digest, gen, created)


def test_make_tag_event():
    assert _event(D1, 3) == {"created": "2026-01-01T00:00:00Z",
                             "dockerImageReference": f"{HOST}/myproject/app@{D1}",
                             "image": D1, "generation": 3}


def test_add_tag_event_creates_entry_and_prepends():
    status, changed = image.add_tag_event(None, "v1", _event(D1))
    assert changed and status == {"tags": [{"tag": "v1", "items": [_event(D1)]}]}
    before = copy.deepcopy(status)
    newer, changed = image.add_tag_event(status, "v1", _event(D2, created="later"))
    assert changed
    assert [i["image"] for i in newer["tags"][0]["items"]] == [D2, D1]
    assert status == before  # input untouched
    other, changed = image.add_tag_event(newer, "v2", _event(D3))
    assert changed and [t["tag"] for t in other["tags"]] == ["v1", "v2"]
    assert other["tags"][0] == newer["tags"][0]


def test_add_tag_event_collapses_like_openshift():
    status = {"tags": [{"tag": "v1", "items": [_event(D1)],
                        "conditions": [{"type": "ImportSuccess", "status": "False"}]}]}
    same, changed = image.add_tag_event(status, "v1", _event(D1, created="later"))
    assert not changed and same == status
    regen, changed = image.add_tag_event(status, "v1", _event(D1, gen=2))
    assert changed and regen["tags"][0]["items"] == [{**_event(D1), "generation": 2}]
    assert "conditions" not in regen["tags"][0]
    moved, changed = image.add_tag_event(status, "v1", _event(D1, host="other:1"))
    assert changed and len(moved["tags"][0]["items"]) == 1
    assert moved["tags"][0]["items"][0]["dockerImageReference"].startswith("other:1/")
    prepended, changed = image.add_tag_event(status, "v1", _event(D2))
    assert changed and len(prepended["tags"][0]["items"]) == 2
    assert "conditions" not in prepended["tags"][0]


def test_add_tag_event_fills_an_empty_entry():
    status, changed = image.add_tag_event({"tags": [{"tag": "v1", "items": []}]}, "v1",
                                          _event(D1))
    assert changed and status["tags"] == [{"tag": "v1", "items": [_event(D1)]}]


def _stream(**status):
    return {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
            "metadata": {"name": "app", "namespace": "myproject", "generation": 4,
                         "resourceVersion": "77"},
            "spec": {"lookupPolicy": {"local": False},
                     "tags": [{"name": "v1", "annotations": {"environments": "test"},
                               "referencePolicy": {"type": "Source"}}]},
            "status": status}


def test_apply_push_touches_only_status():
    stream = _stream(dockerImageRepository="", tags=[{"tag": "v0", "items": [_event(D3)]}])
    before = copy.deepcopy(stream)
    new, changed = image.apply_push(stream, "v1", D1, HOST, "2026-02-02T00:00:00Z")
    assert changed and stream == before
    assert new["spec"] == stream["spec"] and new["metadata"] == stream["metadata"]
    assert new["status"]["dockerImageRepository"] == f"{HOST}/myproject/app"
    assert new["status"]["tags"][0] == stream["status"]["tags"][0]
    assert new["status"]["tags"][1] == {"tag": "v1", "items": [{
        "created": "2026-02-02T00:00:00Z", "dockerImageReference": f"{HOST}/myproject/app@{D1}",
        "image": D1, "generation": 4}]}
    again, changed = image.apply_push(new, "v1", D1, HOST, "2026-03-03T00:00:00Z")
    assert not changed and again == new


# --- record_push with a fake dynamic client ----------------------------------------------------

class _Instance:
    def __init__(self, obj):
        self._obj = copy.deepcopy(obj)

    def to_dict(self):
        return copy.deepcopy(self._obj)


class _FakeStatus:
    def __init__(self, owner):
        self.owner = owner

    def replace(self, body, namespace):
        store = self.owner.store
        if self.owner.conflicts:
            self.owner.conflicts -= 1
            store["metadata"]["resourceVersion"] = str(int(store["metadata"]["resourceVersion"]) + 1)
            raise self.owner.conflict_error()
        assert body["metadata"]["resourceVersion"] == store["metadata"]["resourceVersion"]
        assert namespace == "myproject"
        store["status"] = copy.deepcopy(body["status"])  # a status write ignores spec changes
        store["metadata"]["resourceVersion"] = str(int(store["metadata"]["resourceVersion"]) + 1)
        self.owner.writes.append(copy.deepcopy(body))
        return _Instance(store)


class _FakeResource:
    def __init__(self, store, conflicts=0):
        from kubernetes.client.rest import ApiException
        from kubernetes.dynamic.exceptions import ConflictError, NotFoundError
        self.store = store
        self.conflicts = conflicts
        self.writes = []
        self.created = []
        self.status = _FakeStatus(self)
        self.conflict_error = lambda: ConflictError(ApiException(status=409, reason="Conflict"))
        self.not_found = lambda: NotFoundError(ApiException(status=404, reason="NotFound"))

    def get(self, name, namespace):
        if self.store is None:
            raise self.not_found()
        return _Instance(self.store)

    def create(self, body, namespace):
        self.created.append(copy.deepcopy(body))
        self.store = {**copy.deepcopy(body), "metadata": {
            **body["metadata"], "generation": 1, "resourceVersion": "1"}}
        return _Instance(self.store)


def _fake_dynamic(resource):
    from kubernetes.dynamic import DynamicClient

    class FakeDynamic(DynamicClient):
        def __init__(self):  # no discovery
            pass

        @property
        def resources(self):
            class R:
                @staticmethod
                def get(api_version, kind):
                    assert (api_version, kind) == ("image.openshift.io/v1", "ImageStream")
                    return resource
            return R

    return FakeDynamic()


def test_record_push_creates_stream_and_writes_status():
    res = _FakeResource(None)
    stored = image.record_push(_fake_dynamic(res), "myproject", "app", "v1", D1, HOST,
                               now=lambda: "2026-01-01T00:00:00Z")
    assert res.created == [{"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
                            "metadata": {"name": "app", "namespace": "myproject"}, "spec": {}}]
    assert stored["spec"] == {}
    assert stored["status"]["tags"] == [{"tag": "v1", "items": [_event(D1)]}]
    assert stored["status"]["dockerImageRepository"] == f"{HOST}/myproject/app"


def test_record_push_retries_on_conflict_and_keeps_spec():
    res = _FakeResource(_stream(tags=[]), conflicts=2)
    slept = []
    stored = image.record_push(_fake_dynamic(res), "myproject", "app", "v2", D2, HOST,
                               now=lambda: "t", sleep=slept.append)
    assert len(slept) == 2 and len(res.writes) == 1
    assert stored["spec"] == _stream()["spec"]
    assert stored["status"]["tags"][0]["items"][0]["image"] == D2


def test_record_push_gives_up_after_bounded_conflicts():
    res = _FakeResource(_stream(tags=[]), conflicts=100)
    with pytest.raises(image.RecordError):
        image.record_push(_fake_dynamic(res), "myproject", "app", "v2", D2, HOST,
                          max_attempts=3, sleep=lambda s: None)


def test_record_push_rejects_bad_digest():
    with pytest.raises(ValueError):
        image.record_push(_fake_dynamic(_FakeResource(None)), "p", "a", "t", "latest", HOST)
