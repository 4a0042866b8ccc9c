#!/usr/bin/env python3
"""Build a real multi-layer OCI image, push it with skopeo, and record the push like OpenShift.

* ``build_oci_layout`` writes an OCI image layout (``oci-layout``, ``index.json``,
  ``blobs/sha256/...``) with N gzip-compressed tar layers of deterministic pseudo-random content
  (same seed, same digests), an OCI image config and an OCI image manifest. Layer data is
  streamed to disk while both digests (compressed blob, uncompressed diff_id) are computed.
* ``push`` copies the layout to a registry with ``skopeo copy``; the credentials go through a
  temporary 0600 auth file (never argv, logs or exception texts).
* ``record_push`` does what OpenShift's registry does after a push (an ImageStreamMapping):
  create the ImageStream if needed, then prepend a TagEvent to ``status.tags[<tag>].items``
  through the status subresource, conditional on resourceVersion, retrying on 409. ``spec.tags``
  is never touched, so a pushed tag exists only in status, as on OpenShift.

CLI::

    python -m lab.image push --kubeconfig K --context registry --registry localhost:5100 \\
        --ca-dir DIR --namespace myproject --stream app --tag v1 --layers 3 \\
        --layer-size 1048576 --token-file F
    python -m lab.image build --out DIR [--layers N] [--layer-size BYTES] [--seed TEXT]
"""

from __future__ import annotations

import argparse
import base64
import copy
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from datetime import datetime, timezone
from typing import Callable
from collections.abc import Iterable

from ansible_collections.segmented.registry.plugins.module_utils.retry import backoff

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"
MiB = 1024 * 1024
DEFAULT_SEED = "segmented-registry-lab"
CHUNK = 64 * 1024
MAX_FILE_SIZE = MiB  # a layer's payload is split into files of at most this size
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

IMAGESTREAM_API_VERSION = "image.openshift.io/v1"
IMAGESTREAM_KIND = "ImageStream"

# ---------------------------------------------------------------------------------------------
# OCI layout
# ---------------------------------------------------------------------------------------------


class PseudoRandomReader:
    """A file-like ``read(n)`` over ``size`` deterministic bytes: SHAKE-256 of (label, counter),
    produced a chunk at a time so arbitrarily large files never sit in memory."""

    def __init__(self, label: str, size: int):
        self._label = label.encode("utf-8")
        self._remaining = size
        self._counter = 0
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._remaining + len(self._buf)
        out = []
        while n > 0 and (self._buf or self._remaining > 0):
            if not self._buf:
                take = min(CHUNK, self._remaining)
                self._buf = hashlib.shake_256(
                    self._label + b"\0" + str(self._counter).encode()).digest(take)
                self._counter += 1
                self._remaining -= take
            piece, self._buf = self._buf[:n], self._buf[n:]
            out.append(piece)
            n -= len(piece)
        return b"".join(out)


class _HashingWriter:
    """Passes writes through to ``raw`` while hashing and counting them."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def _blob_path(layout: str, digest: str) -> str:
    algo, hexpart = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexpart)


def _canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _put_blob(layout: str, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _write_atomic(_blob_path(layout, digest), data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _tarinfo(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


def layer_files(index: int, layer_size: int) -> list[tuple[str, int]]:
    """The payload files of layer ``index`` (1-based): (path in the image, size)."""
    files = []
    remaining, part = layer_size, 0
    while remaining > 0:
        size = min(MAX_FILE_SIZE, remaining)
        files.append((f"app/layer-{index:02d}/part-{part:04d}.bin", size))
        remaining -= size
        part += 1
    return files


def _write_layer(layout: str, seed: str, index: int, count: int, layer_size: int):
    """Stream one layer (tar -> gzip -> file) and return (descriptor, diff_id)."""
    blob_dir = os.path.join(layout, "blobs", "sha256")
    fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=blob_dir)
    try:
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=1,
                               mtime=0) as gz:
                uncompressed = _HashingWriter(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|",
                                  format=tarfile.PAX_FORMAT) as tar:
                    tar.addfile(_tarinfo("app", directory=True))
                    tar.addfile(_tarinfo(f"app/layer-{index:02d}", directory=True))
                    readme = (f"segmented.registry lab image\nseed: {seed}\n"
                              f"layer: {index}/{count}\nbytes: {layer_size}\n").encode()
                    tar.addfile(_tarinfo(f"app/layer-{index:02d}/README", len(readme)),
                                _BytesReader(readme))
                    for name, size in layer_files(index, layer_size):
                        tar.addfile(_tarinfo(name, size),
                                    PseudoRandomReader(f"{seed}\0{index}\0{name}", size))
        digest = compressed.digest
        os.chmod(tmp, 0o644)
        os.replace(tmp, _blob_path(layout, digest))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    descriptor = {"mediaType": MEDIA_LAYER_GZIP, "digest": digest, "size": compressed.size}
    return descriptor, uncompressed.digest


class _BytesReader:
    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._pos + n
        piece = self._data[self._pos:end]
        self._pos += len(piece)
        return piece


def build_oci_layout(path: str, *, layers: int = 3, layer_size: int = MiB,
                     seed: str = DEFAULT_SEED, ref_name: str = "latest") -> str:
    """Write an OCI image layout at ``path`` and return its manifest digest.

    Each of the ``layers`` layers holds ``app/layer-NN/README`` and ``layer_size`` bytes of
    pseudo-random data derived from ``seed`` (split into files of at most 1 MiB), as a tar with
    mtime 0 compressed with gzip (mtime 0, no file name), so the same arguments give the same
    digests. ``index.json`` lists the one manifest, annotated with ``ref_name``.
    """
    if layers < 1:
        raise ValueError("an image needs at least one layer")
    if layer_size < 0:
        raise ValueError("layer_size must not be negative")
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    _write_atomic(os.path.join(path, "oci-layout"), _canonical_json({"imageLayoutVersion": "1.0.0"}))

    layer_descriptors, diff_ids, history = [], [], []
    for i in range(1, layers + 1):
        descriptor, diff_id = _write_layer(path, seed, i, layers, layer_size)
        layer_descriptors.append(descriptor)
        diff_ids.append(diff_id)
        history.append({"created": EPOCH,
                        "created_by": f"segmented.registry lab/image.py layer {i}/{layers} "
                                      f"({layer_size} bytes)"})
    config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/app",
            "Labels": {"io.segmented-registry.lab.seed": seed},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_descriptor = _put_blob(path, _canonical_json(config), MEDIA_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_descriptor,
        "layers": layer_descriptors,
    }
    manifest_descriptor = _put_blob(path, _canonical_json(manifest), MEDIA_MANIFEST)
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{**manifest_descriptor, "annotations": {REF_NAME_ANNOTATION: ref_name}}],
    }
    _write_atomic(os.path.join(path, "index.json"), _canonical_json(index))
    return manifest_descriptor["digest"]


def file_digest(path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
            size += len(block)
    return "sha256:" + h.hexdigest(), size


def load_manifest(layout: str, ref_name: str | None = None) -> tuple[str, dict]:
    """(digest, manifest) of the layout's manifest (the only one, or the one named
    ``ref_name``); checks the manifest blob against its digest."""
    with open(os.path.join(layout, "index.json"), "rb") as fh:
        index = json.load(fh)
    entries = index.get("manifests") or []
    if ref_name is not None:
        entries = [e for e in entries
                   if (e.get("annotations") or {}).get(REF_NAME_ANNOTATION) == ref_name]
    if len(entries) != 1:
        raise ValueError(f"{layout}: expected one manifest, found {len(entries)}")
    entry = entries[0]
    with open(_blob_path(layout, entry["digest"]), "rb") as fh:
        data = fh.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != entry["digest"] or len(data) != entry["size"]:
        raise ValueError(f"{layout}: manifest blob does not match {entry['digest']}")
    return entry["digest"], json.loads(data)


def verify_layout(layout: str) -> list[str]:
    """Problems found in an OCI layout (empty when consistent): every blob matches its name,
    index -> manifest -> config and layers exist with matching sizes and digests, and the
    config's diff_ids are the sha256 of the decompressed layers."""
    problems = []
    for blob in sorted(glob.glob(os.path.join(layout, "blobs", "sha256", "*"))):
        digest, _ = file_digest(blob)
        if digest != "sha256:" + os.path.basename(blob):
            problems.append(f"blob {os.path.basename(blob)} has digest {digest}")
    try:
        _, manifest = load_manifest(layout)
    except (OSError, ValueError, KeyError) as exc:
        return problems + [str(exc)]
    descriptors = [manifest.get("config", {})] + list(manifest.get("layers", []))
    for d in descriptors:
        path = _blob_path(layout, d.get("digest", "sha256:missing"))
        if not os.path.exists(path):
            problems.append(f"missing blob {d.get('digest')}")
        elif os.path.getsize(path) != d.get("size"):
            problems.append(f"size of {d['digest']} is not {d.get('size')}")
    if problems:
        return problems
    with open(_blob_path(layout, manifest["config"]["digest"]), "rb") as fh:
        config = json.load(fh)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest["layers"]):
        problems.append("config diff_ids and manifest layers differ in number")
    for layer, diff_id in zip(manifest["layers"], diff_ids):
        h = hashlib.sha256()
        try:
            with gzip.open(_blob_path(layout, layer["digest"]), "rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    h.update(block)
        except (OSError, EOFError, zlib.error) as exc:
            problems.append(f"layer {layer['digest']} is not valid gzip: {exc}")
            continue
        if "sha256:" + h.hexdigest() != diff_id:
            problems.append(f"layer {layer['digest']} does not decompress to {diff_id}")
    return problems


def image_summary(layout: str) -> dict:
    """Digest, layers and total blob bytes (layers + config) of a layout's image."""
    digest, manifest = load_manifest(layout)
    layers = [{"digest": d["digest"], "size": d["size"]} for d in manifest["layers"]]
    total = sum(d["size"] for d in layers) + manifest["config"]["size"]
    return {"digest": digest, "config": manifest["config"]["digest"], "layers": layers,
            "bytes": total}


# ---------------------------------------------------------------------------------------------
# Push with skopeo
# ---------------------------------------------------------------------------------------------


class PushError(RuntimeError):
    """skopeo failed; the message never contains the credentials."""


def registry_host_of(ref: str) -> str:
    host, sep, rest = ref.partition("/")
    if not sep or not rest or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(f"{ref!r} does not start with a registry host")
    return host


def auth_config(registry_host: str, username: str, password: str) -> dict:
    """A containers-auth.json / docker config.json document for one registry."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"auths": {registry_host: {"auth": auth}}}


def _scrub(text: str, secrets_: Iterable[str]) -> str:
    for s in secrets_:
        if s:
            text = text.replace(s, "***")
    return text


def _copy_ca_files(ca_dir: str, dest: str) -> None:
    """containers/image reads every ``*.crt`` in a cert dir as a CA, but treats ``*.key`` as a
    client key that needs a ``*.cert``: copy only the CA certificates (a lab PKI folder also
    holds ca.key). ``ca_dir`` may also be a single PEM file."""
    os.makedirs(dest, mode=0o700)
    if os.path.isfile(ca_dir):
        shutil.copyfile(ca_dir, os.path.join(dest, "ca.crt"))
        return
    found = sorted(glob.glob(os.path.join(ca_dir, "*.crt")))
    if not found:
        raise PushError(f"no *.crt CA certificate in {ca_dir}")
    for crt in found:
        shutil.copyfile(crt, os.path.join(dest, os.path.basename(crt)))


def push(layout: str, dest_ref: str, *, ca_dir: str, username: str | None = None,
         password: str | None = None, skopeo: str = "skopeo", timeout: float = 900,
         extra_args: Iterable[str] = ()) -> str:
    """``skopeo copy oci:<layout> docker://<dest_ref>``; returns the pushed manifest digest.

    Credentials go through a temporary auth file (mode 0600 inside a 0700 directory, removed
    afterwards) so they appear neither on the command line (visible in ps) nor in errors.
    Without ``password`` the push is anonymous (the lab's mirror registry).
    """
    layout = os.path.abspath(layout)
    if ":" in layout:
        raise ValueError("the layout path must not contain ':' (skopeo's oci: syntax)")
    host = registry_host_of(dest_ref)
    secrets_ = [password, auth_config(host, username, password)["auths"][host]["auth"]] if password else []
    with tempfile.TemporaryDirectory(prefix="lab-image-push-") as tmp:
        if password:
            authfile = os.path.join(tmp, "auth.json")
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(auth_config(host, username, password), fh)
            auth_args = ["--dest-authfile", authfile]
        else:
            auth_args = ["--dest-no-creds"]
        policy = os.path.join(tmp, "policy.json")
        with open(policy, "w") as fh:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, fh)
        certs = os.path.join(tmp, "certs")
        _copy_ca_files(ca_dir, certs)
        digestfile = os.path.join(tmp, "digest")
        cmd = [skopeo, "--policy", policy, "copy", "--quiet",
               *auth_args, "--dest-cert-dir", certs,
               "--digestfile", digestfile, *extra_args,
               f"oci:{layout}", f"docker://{dest_ref}"]
        env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            raise PushError(f"skopeo copy to {dest_ref} timed out after {timeout}s") from None
        except OSError as exc:
            raise PushError(f"cannot run {skopeo}: {exc}") from None
        if proc.returncode != 0:
            detail = _scrub((proc.stderr or proc.stdout).strip(), secrets_)[-2000:]
            raise PushError(f"skopeo copy to {dest_ref} failed (exit {proc.returncode}): "
                            f"{detail}")
        with open(digestfile) as fh:
            digest = fh.read().strip()
    if not DIGEST_RE.match(digest):
        raise PushError(f"skopeo wrote an unexpected digest {digest!r}")
    return digest


# ---------------------------------------------------------------------------------------------
# ImageStream status like an ImageStreamMapping (pure part)
# ---------------------------------------------------------------------------------------------


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_tag_event(registry_host: str, namespace: str, stream: str, digest: str,
                   generation: int, created: str) -> dict:
    return {
        "created": created,
        "dockerImageReference": f"{registry_host}/{namespace}/{stream}@{digest}",
        "image": digest,
        "generation": int(generation),
    }


def add_tag_event(status: dict | None, tag: str, event: dict) -> tuple[dict, bool]:
    """OpenShift's AddTagEventToImageStream on the v1 shape (``status.tags`` is a list of
    ``{tag, items, conditions}``). Returns (new status, changed); the input is not modified.

    No entry for the tag: a new one with the event. Otherwise, compared with the newest item:
    same reference, image and generation -> no change; same reference and image -> generation
    updated; same reference -> image updated; same image -> reference updated; else the event is
    prepended. Any change clears the tag's conditions.
    """
    new = copy.deepcopy(status) if status else {}
    tags = new.setdefault("tags", None) or []
    new["tags"] = tags
    entry = next((t for t in tags if t.get("tag") == tag), None)
    if entry is None or not entry.get("items"):
        if entry is None:
            tags.append({"tag": tag, "items": [dict(event)]})
        else:
            entry["items"] = [dict(event)]
            entry.pop("conditions", None)
        return new, True
    previous = entry["items"][0]
    same_ref = previous.get("dockerImageReference") == event["dockerImageReference"]
    same_image = previous.get("image") == event["image"]
    same_gen = previous.get("generation") == event["generation"]
    if same_ref and same_image and same_gen:
        return new, False
    if same_ref and same_image:
        pass
    elif same_ref:
        previous["image"] = event["image"]
    elif same_image:
        previous["dockerImageReference"] = event["dockerImageReference"]
    else:
        entry["items"] = [dict(event)] + entry["items"]
        entry.pop("conditions", None)
        return new, True
    previous["generation"] = event["generation"]
    entry.pop("conditions", None)
    return new, True


def apply_push(imagestream: dict, tag: str, digest: str, registry_host: str,
               created: str) -> tuple[dict, bool]:
    """A copy of ``imagestream`` with the push recorded in its status (spec untouched):
    the TagEvent (generation = metadata.generation) and ``status.dockerImageRepository``."""
    meta = imagestream.get("metadata") or {}
    namespace, stream = meta["namespace"], meta["name"]
    event = make_tag_event(registry_host, namespace, stream, digest,
                           meta.get("generation") or 1, created)
    status, changed = add_tag_event(imagestream.get("status"), tag, event)
    repository = f"{registry_host}/{namespace}/{stream}"
    if status.get("dockerImageRepository") != repository:
        status["dockerImageRepository"] = repository
        changed = True
    new = copy.deepcopy(imagestream)
    new["status"] = status
    return new, changed


# ---------------------------------------------------------------------------------------------
# ImageStream status (I/O)
# ---------------------------------------------------------------------------------------------


class RecordError(RuntimeError):
    pass


def record_push(api_client, namespace: str, stream: str, tag: str, digest: str,
                registry_host: str, *, max_attempts: int = 6,
                now: Callable[[], str] = rfc3339_now,
                sleep: Callable[[float], None] = time.sleep) -> dict:
    """Record a pushed image in ImageStream ``namespace/stream`` (created with an empty spec if
    missing) and return the ImageStream as stored. ``api_client`` is a kubernetes ApiClient or a
    ``kubernetes.dynamic.DynamicClient``. The status write carries the resourceVersion that was
    read; a 409 leads to a fresh read and another try, at most ``max_attempts`` in all."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

    if not DIGEST_RE.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    dyn = api_client if isinstance(api_client, DynamicClient) else DynamicClient(api_client)
    resource = dyn.resources.get(api_version=IMAGESTREAM_API_VERSION, kind=IMAGESTREAM_KIND)
    for attempt in range(max_attempts):
        try:
            current = resource.get(name=stream, namespace=namespace).to_dict()
        except NotFoundError:
            body = {"apiVersion": IMAGESTREAM_API_VERSION, "kind": IMAGESTREAM_KIND,
                    "metadata": {"name": stream, "namespace": namespace}, "spec": {}}
            try:
                current = resource.create(body=body, namespace=namespace).to_dict()
            except ConflictError:  # created meanwhile by someone else: read it again
                continue
        updated, changed = apply_push(current, tag, digest, registry_host, now())
        if not changed:
            return current
        try:
            return resource.status.replace(body=updated, namespace=namespace).to_dict()
        except ConflictError:
            sleep(backoff(attempt + 1, 0.1, 2.0))
    raise RecordError(f"imagestream {namespace}/{stream}: status update still conflicting "
                      f"after {max_attempts} attempts")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _read_token(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        token = fh.read().strip()
    if not token:
        raise SystemExit(f"token file {path} is empty")
    return token


def _cmd_build(args) -> int:
    digest = build_oci_layout(args.out, layers=args.layers, layer_size=args.layer_size,
                              seed=args.seed)
    summary = image_summary(args.out)
    assert summary["digest"] == digest
    print(json.dumps({**summary, "layout": os.path.abspath(args.out)}))
    return 0


def _cmd_push(args) -> int:
    token = _read_token(args.token_file)
    seed = args.seed or f"{args.namespace}/{args.stream}:{args.tag}"
    dest = f"{args.registry}/{args.namespace}/{args.stream}:{args.tag}"
    with tempfile.TemporaryDirectory(prefix="lab-image-") as tmp:
        layout = args.layout or os.path.join(tmp, "layout")
        build_oci_layout(layout, layers=args.layers, layer_size=args.layer_size, seed=seed,
                         ref_name=args.tag)
        summary = image_summary(layout)
        try:
            digest = push(layout, dest, username=args.username, password=token,
                          ca_dir=args.ca_dir, skopeo=args.skopeo)
        except PushError as exc:
            print(f"push failed: {exc}", file=sys.stderr)
            return 1
    result = {
        "digest": digest,
        "reference": f"{args.registry}/{args.namespace}/{args.stream}@{digest}",
        "layers": summary["layers"],
        "bytes": summary["bytes"],
        "pushed": dest,
    }
    if not args.no_record:
        import kubernetes.config

        api_client = kubernetes.config.new_client_from_config(
            config_file=args.kubeconfig, context=args.context, persist_config=False)
        stored = record_push(api_client, args.namespace, args.stream, args.tag, digest,
                             args.registry_host or args.registry)
        result["imagestream"] = {
            "resourceVersion": stored["metadata"].get("resourceVersion"),
            "dockerImageRepository": stored.get("status", {}).get("dockerImageRepository"),
        }
    print(json.dumps(result))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build, push and record lab images.")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="write an OCI layout and print its summary")
    b.add_argument("--out", required=True)
    b.add_argument("--layers", type=int, default=3)
    b.add_argument("--layer-size", type=int, default=MiB)
    b.add_argument("--seed", default=DEFAULT_SEED)
    b.set_defaults(func=_cmd_build)

    p = sub.add_parser("push", help="build, push with skopeo, record in the ImageStream")
    p.add_argument("--kubeconfig")
    p.add_argument("--context", default="registry")
    p.add_argument("--registry", required=True, help="registry host[:port] to push to")
    p.add_argument("--registry-host",
                   help="host recorded in the ImageStream (default: --registry)")
    p.add_argument("--ca-dir", required=True,
                   help="folder with the registry's CA as *.crt (or one PEM file)")
    p.add_argument("--namespace", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--layer-size", type=int, default=MiB)
    p.add_argument("--seed", help="content seed (default: <namespace>/<stream>:<tag>)")
    p.add_argument("--layout", help="keep the OCI layout in this folder")
    p.add_argument("--token-file", required=True,
                   help="file holding the registry cluster API token used as password")
    p.add_argument("--username", default="unused", help="ignored by OpenShift-style auth")
    p.add_argument("--skopeo", default="skopeo")
    p.add_argument("--no-record", action="store_true",
                   help="push only; do not touch the ImageStream")
    p.set_defaults(func=_cmd_push)

    args = parser.parse_args(argv)
    if args.command == "push" and not args.no_record and not args.kubeconfig:
        parser.error("--kubeconfig is required unless --no-record")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
