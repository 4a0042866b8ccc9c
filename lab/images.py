"""The OCI images the lab's pods run, built here, and the mirror registry the node pulls them from.

No image comes from outside: as a disconnected OpenShift pulls from its mirror registry, the node
pulls from the lab's ``mirror`` registry (127.0.0.1:5104, TLS from the lab CA, read by the node
through containerd's ``certs.d``). Images, each one gzip layer written deterministically (same
inputs, same digests):

* ``lab/registry:<distribution version>``: CNCF distribution v3 built ``CGO_ENABLED=0`` by
  ``lab/build/build-binaries.sh``, with distribution's default configuration at
  ``/etc/distribution/config.yml`` (a Deployment mounts its own over it);
* ``lab/pause:<busybox version>``: Debian's static busybox and its applets, running
  ``sleep infinity``: the pod sandbox image;
* ``lab/kubectl:<kubernetes version>``: kubectl (built with the control plane) and the same
  busybox: a shell and an in-cluster client that verifies the API server's certificate;
* ``segmented-registry/token-server:<source hash>``: the collection's registry token server
  (``components/token-server``) built ``CGO_ENABLED=0`` by ``lab/build/build-binaries.sh``, the
  one file ``/token-server``, run as user 1001 with ``--config /etc/token-server/config.json``
  (what its ``Containerfile`` builds); ``token_server_reference()`` names it.
* ``segmented-registry/copier:<source hash>``: the collection's promotion copier
  (``components/copier``), built the same way, the one file ``/copier`` run as user 1001 (its
  ``Containerfile``'s image; a Job gives it ``--plan <file>``); ``copier_reference()`` names it.
* ``lab/s3:<gofakes3 version>-<hash of its main.go>``: the lab's S3-compatible object store
  (``lab/build/s3server``, built ``CGO_ENABLED=0``), alone; ``lab/objectstore.py`` runs it.

Tags carry the version of what is inside and are never rewritten: an image whose tag the mirror
already serves is not built again. ``publish`` also gives every image pinned by digest
(``pinned``: ``<repository>@sha256:...``, the manifest digest the mirror serves for the tag), what
roles/registry_cluster requires of the images its garbage collection job runs.
"""
import gzip
import os
import subprocess
import tarfile
import tempfile

import requests

from lab import image

MIRROR_PORT = 5104
MIRROR_HOST = f"localhost:{int(MIRROR_PORT)}"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# distribution's own default configuration (cmd/registry/config-example.yml in its repository)
REGISTRY_DEFAULT_CONFIG = """version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
BUILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "build-binaries.sh")
TOKEN_SERVER_REPOSITORY = "segmented-registry/token-server"
TOKEN_SERVER_IMAGE_CONFIG = {  # as components/token-server/Containerfile
    "Entrypoint": ["/token-server", "--config", "/etc/token-server/config.json"],
    "User": "1001",
    "ExposedPorts": {"8080/tcp": {}},
}
COPIER_REPOSITORY = "segmented-registry/copier"
COPIER_IMAGE_CONFIG = {  # as components/copier/Containerfile
    "Entrypoint": ["/copier"],
    "User": "1001",
}
MIRROR_CONFIG = """version: 0.1
log:
  level: warn
  fields:
    service: registry
    environment: mirror
storage:
  filesystem:
    rootdirectory: {storage}
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {cert}
    key: {key}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def _entry(name, *, data=None, source=None, mode=0o644, directory=False, link=None):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
    else:
        info.mode = mode
        info.size = len(data) if data is not None else os.path.getsize(source)
    return info, data, source


def write_image(layout, entries, config, ref_name):
    """Write an OCI layout at ``layout`` holding one image: one gzip layer made of ``entries``
    (from ``_entry``) and the runtime ``config`` (Entrypoint, Cmd, ...); returns its digest."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    image._write_atomic(os.path.join(layout, "oci-layout"), image._canonical_json({"imageLayoutVersion": "1.0.0"}))
    fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=os.path.join(layout, "blobs", "sha256"))
    with os.fdopen(fd, "wb") as raw:
        compressed = image._HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=6, mtime=0) as gz:
            uncompressed = image._HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for info, data, source in entries:
                    if data is not None:
                        tar.addfile(info, image._BytesReader(data))
                    elif source is not None:
                        with open(source, "rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
    os.chmod(tmp, 0o644)
    os.replace(tmp, image._blob_path(layout, compressed.digest))
    layer = {"mediaType": image.MEDIA_LAYER_GZIP, "digest": compressed.digest, "size": compressed.size}
    config_blob = image._put_blob(layout, image._canonical_json({
        "created": image.EPOCH, "architecture": "amd64", "os": "linux",
        "config": dict({"Env": [PATH_ENV]}, **config),
        "rootfs": {"type": "layers", "diff_ids": [uncompressed.digest]},
        "history": [{"created": image.EPOCH, "created_by": "segmented.registry lab/images.py"}],
    }), image.MEDIA_CONFIG)
    manifest = image._put_blob(layout, image._canonical_json({
        "schemaVersion": 2, "mediaType": image.MEDIA_MANIFEST, "config": config_blob, "layers": [layer],
    }), image.MEDIA_MANIFEST)
    image._write_atomic(os.path.join(layout, "index.json"), image._canonical_json({
        "schemaVersion": 2, "mediaType": image.MEDIA_INDEX,
        "manifests": [dict(manifest, annotations={image.REF_NAME_ANNOTATION: ref_name})],
    }))
    return manifest["digest"]


def busybox_version():
    out = subprocess.run([BUSYBOX], capture_output=True, text=True).stdout
    return out.split()[1].lstrip("v")  # "BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) multi-call binary."


def busybox_entries():
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    folders = sorted({os.path.dirname(a) for a in applets} | {"bin", "tmp", "etc"})
    entries = [_entry(f, directory=True) for f in folders]
    entries[folders.index("tmp")][0].mode = 0o1777
    entries.append(_entry("bin/busybox", source=BUSYBOX, mode=0o755))
    entries += [_entry(a, link="/bin/busybox") for a in sorted(applets) if a != "bin/busybox"]
    entries.append(_entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"))
    entries.append(_entry("etc/group", data=b"root:x:0:\nnobody:x:65534:\n"))
    return entries


def registry_entries(binary):
    return [
        _entry("bin", directory=True), _entry("etc", directory=True), _entry("tmp", directory=True),
        _entry("etc/distribution", directory=True), _entry("var", directory=True),
        _entry("var/lib", directory=True), _entry("var/lib/registry", directory=True),
        _entry("bin/registry", source=binary, mode=0o755),
        _entry("etc/distribution/config.yml", data=REGISTRY_DEFAULT_CONFIG.encode()),
    ]


def token_server_entries(binary):
    return [_entry("token-server", source=binary, mode=0o755)]


def token_server_reference(version=None):
    """The lab mirror's reference of the token server image,
    ``localhost:5104/segmented-registry/token-server:<version>``; ``version`` defaults to the one
    build-binaries.sh gives the current sources (12 hex digits of their sha256)."""
    if version is None:
        version = subprocess.run(["bash", BUILD_SCRIPT, "token-server-version"], check=True, capture_output=True,
                                 text=True).stdout.strip()
    return f"{MIRROR_HOST}/{TOKEN_SERVER_REPOSITORY}:{version}"


def copier_entries(binary):
    return [_entry("copier", source=binary, mode=0o755)]


def copier_reference(version=None):
    """The lab mirror's reference of the copier image,
    ``localhost:5104/segmented-registry/copier:<version>``; ``version`` defaults to the one
    build-binaries.sh gives the current sources (12 hex digits of their sha256)."""
    if version is None:
        version = subprocess.run(["bash", BUILD_SCRIPT, "copier-version"], check=True, capture_output=True,
                                 text=True).stdout.strip()
    return f"{MIRROR_HOST}/{COPIER_REPOSITORY}:{version}"


def s3server_entries(binary):
    return [
        _entry("bin", directory=True), _entry("tmp", directory=True), _entry("data", directory=True),
        _entry("bin/s3server", source=binary, mode=0o755),
    ]


def references(distribution_version, kubernetes_version, token_server_version, s3server_version=None, copier_version=None):
    busybox = busybox_version()
    refs = {
        "registry": f"{MIRROR_HOST}/lab/registry:{distribution_version}",
        "pause": f"{MIRROR_HOST}/lab/pause:{busybox}",
        "kubectl": f"{MIRROR_HOST}/lab/kubectl:{kubernetes_version}",
        "token-server": token_server_reference(token_server_version),
    }
    if s3server_version:
        refs["s3"] = f"{MIRROR_HOST}/lab/s3:{s3server_version}"
    if copier_version:
        refs["copier"] = copier_reference(copier_version)
    return refs


def start_mirror(lab):
    folder = os.path.join(lab.state, "registries", "mirror")
    os.makedirs(os.path.join(folder, "storage"), exist_ok=True)
    cert, key = lab.ca.issue("registry-mirror", "registry-mirror", hosts=("127.0.0.1", "localhost"), server=True)
    config = os.path.join(folder, "config.yml")
    with open(config, "w") as handle:
        handle.write(MIRROR_CONFIG.format(storage=os.path.join(folder, "storage"), port=MIRROR_PORT,
                                          cert=cert, key=key))
    lab.procs.start("registry-mirror", ["docker-registry", "serve", config])


def mirror_digest(lab, reference):
    """The manifest digest the mirror serves for ``reference``'s tag, None when it has none."""
    repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
    response = requests.head(f"https://{MIRROR_HOST}/v2/{repository}/manifests/{tag}",
                             headers={"Accept": image.MEDIA_MANIFEST}, verify=lab.ca.cert_path, timeout=10)
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def publish(lab, bins):
    """Build the lab's images the mirror does not serve yet and push them; returns the references
    by name. ``bins``: labctl's binaries (distribution, kubectl, the token server, s3server, the copier
    and their versions), and under ``pinned`` the same images by digest."""
    refs = references(bins["distribution-version"], bins["kubernetes-version"], bins["token-server-version"],
                      bins["s3server-version"], bins["copier-version"])
    contents = {
        "registry": (lambda: registry_entries(bins["distribution"]),
                     {"Entrypoint": ["/bin/registry"], "Cmd": ["serve", "/etc/distribution/config.yml"],
                      # v3 exports OpenTelemetry traces to localhost:4318 unless told not to
                      "Env": [PATH_ENV, "OTEL_TRACES_EXPORTER=none"],
                      "ExposedPorts": {"5000/tcp": {}}, "Volumes": {"/var/lib/registry": {}}}),
        "pause": (busybox_entries, {"Entrypoint": ["/bin/sleep", "infinity"]}),
        "kubectl": (lambda: busybox_entries() + [_entry("bin/kubectl", source=bins["kubectl"], mode=0o755)],
                    {"Env": [PATH_ENV, "HOME=/tmp"], "Entrypoint": ["/bin/kubectl"]}),
        "token-server": (lambda: token_server_entries(bins["token-server"]), TOKEN_SERVER_IMAGE_CONFIG),
        "copier": (lambda: copier_entries(bins["copier"]), COPIER_IMAGE_CONFIG),
        "s3": (lambda: s3server_entries(bins["s3server"]),
               {"Entrypoint": ["/bin/s3server"], "Cmd": ["-listen", ":9000", "-db", "/data/s3.db"],
                "ExposedPorts": {"9000/tcp": {}}, "Volumes": {"/data": {}}}),
    }
    pinned = {}
    with tempfile.TemporaryDirectory(prefix="lab-images-") as tmp:
        for name, (entries, config) in contents.items():
            digest = mirror_digest(lab, refs[name])
            if digest is None:
                layout = os.path.join(tmp, name)
                write_image(layout, entries(), config, refs[name].rsplit(":", 1)[1])
                digest = image.push(layout, refs[name], ca_dir=lab.trust_dir)
            pinned[name] = refs[name].rsplit(":", 1)[0] + "@" + digest
    return dict(refs, pinned=pinned)
