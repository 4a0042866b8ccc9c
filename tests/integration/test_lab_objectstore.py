"""The lab's S3 object store (lab/objectstore.py; labctl up runs it on the registry cluster's node)
holds what CNCF distribution's s3 storage driver writes.

A registry process on this machine (the lab's distribution binary) and a registry pod on the node,
each configured with the s3 driver against ``objectstore.ENDPOINT`` (the Service's fixed cluster IP,
which kube-proxy translates for this machine and for pods alike): push a multi-layer image whose
layers are larger than the 5 MiB chunk (multipart uploads, moved with UploadPartCopy), pull it
back, follow a presigned redirect, delete the manifest; and see with signed ListObjectsV2 calls
which objects landed in the bucket.
"""
import datetime
import hashlib
import json
import os
import subprocess
import time
import warnings

import pytest
import requests
import yaml
from kubernetes import client as kclient

from lab import image, node, objectstore
from tests.integration import promotion_lab as pl

MiB = 1 << 20
BUCKET = objectstore.bucket("test")
CHUNK = 5 * MiB  # the s3 driver's minimum chunksize (and S3's minimum part size)
V2 = "docker/registry/v2"
SELECTOR = ",".join(f"{key}={value}" for key, value in objectstore.LABELS.items())


@pytest.fixture(scope="module")
def bins(lab, lab_node):
    return lab.binaries()


@pytest.fixture(scope="module")
def store(lab, bins):
    """The object store answers on its Service's cluster IP (labctl up waited for it). Afterwards, a
    store that no longer answers (a test here replaces its pod) gets one more new pod, so that a
    failure here is reported here and not again by every later test that keeps images in it."""
    deadline = time.monotonic() + 60
    while not objectstore.healthy():
        assert time.monotonic() < deadline, f"the object store does not answer at {objectstore.ENDPOINT}"
        time.sleep(0.5)
    yield objectstore.ENDPOINT
    if not objectstore.healthy():
        core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
        core.delete_collection_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR)
        pl.wait_until(objectstore.healthy, 120, "the object store answering again", fail=False)


def _restart(lab):
    """A rollout of the store's Deployment, as ``kubectl rollout restart`` makes one: with its
    Recreate strategy the old pod is gone, and its bolt file closed, before the new one starts."""
    apps = kclient.AppsV1Api(lab.api_client(lab.layout.registry_cluster))
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    apps.patch_namespaced_deployment(objectstore.NAME, objectstore.NAMESPACE, {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})


# the store's health check at the address given as argv[1], as the kubelet's probe asks it: the
# status, or the error (connection refused, a timeout)
HEALTH_CHECK = f"""
import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://{{sys.argv[1]}}:{objectstore.PORT}{objectstore.HEALTH_PATH}", timeout=5).status)
except Exception as exc:
    print(repr(exc))
"""


def _store_story(lab, core, pod_ip):
    """pods_story, and what this machine sees of the store: the processes holding its bolt file open
    (with their state: D is a process the kernel cannot stop yet, and their network namespace), the
    network namespaces that hold the new pod's address (two mean an address handed out while an
    older pod still had it), what the store's health check answers from this machine (as the
    kubelet's probe asks) and from inside each holder's namespace, the host's neighbour entry for
    the address, and the kubelet's log lines about the pod."""
    path = os.path.join(lab.state, objectstore.DATA_DIR, "s3.db")
    stat = os.stat(path)
    holders, addresses = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:  # the file as the holder opened it: by device and inode (a pod sees it at /data/s3.db)
            if any(os.stat(f"/proc/{pid}/fd/{fd}")[1:3] == stat[1:3] for fd in os.listdir(f"/proc/{pid}/fd")):
                with open(f"/proc/{pid}/stat") as handle:
                    name, rest = handle.read().split("(", 1)[1].rsplit(")", 1)
                holders.append((pid, f"pid {pid} ({name}) state {rest.split()[0]} in {os.readlink(f'/proc/{pid}/ns/net')}"))
        except OSError:
            continue
    checks = []
    for pid, _holder in holders:
        inside = subprocess.run(["nsenter", "-t", pid, "-n", "python3", "-c", HEALTH_CHECK, "127.0.0.1"],
                                capture_output=True, text=True, check=False, timeout=20)
        checks.append(f"health check inside pid {pid}'s namespace: {(inside.stdout + inside.stderr).strip()}")
    if pod_ip:
        # a namespace by a process in it, or by a mount of it with no process left (a pod sandbox's
        # that outlived its pod: containerd keeps them as mounts under its state folder)
        entered = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                entered.setdefault(os.readlink(f"/proc/{pid}/ns/net"), (f"pid {pid}", f"/proc/{pid}/ns/net"))
            except OSError:
                continue
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                fields = line.split()
                if fields[fields.index("-") + 1] == "nsfs" and fields[3].startswith("net:["):
                    entered.setdefault(fields[3], (f"mount {fields[4]}", fields[4]))
        for namespace, (by, where) in sorted(entered.items()):
            shown = subprocess.run(["nsenter", f"--net={where}", "ip", "-4", "-o", "addr"], capture_output=True,
                                   text=True, check=False).stdout
            if f" {pod_ip}/" in shown:
                addresses.append(f"{namespace} ({by})")
        outside = subprocess.run(["python3", "-c", HEALTH_CHECK, pod_ip], capture_output=True, text=True,
                                 check=False, timeout=20)
        checks.append(f"health check from this machine: {(outside.stdout + outside.stderr).strip()}")
        neighbour = subprocess.run(["ip", "neigh", "show", pod_ip], capture_output=True, text=True, check=False)
        checks.append(f"neighbour entry: {neighbour.stdout.strip() or 'none'}")
    pods = core.list_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR).items
    names = [p.metadata.name for p in pods]
    try:
        with open(lab.procs.log_path("kubelet"), errors="replace") as handle:
            about = [line.strip()[:300] for line in handle if any(name in line for name in names)]
    except OSError as exc:
        about = [f"(no kubelet log: {exc})"]
    return (pl.pods_story(lab, core, objectstore.NAMESPACE, SELECTOR)
            + f"\nprocesses holding {path}: {', '.join(text for _pid, text in holders) or 'none'}"
            + f"\nnetwork namespaces holding {pod_ip}: {', '.join(addresses) or 'none'}"
            + "".join("\n" + line for line in checks)
            + "\nkubelet log lines about the pods (last 15):" + "".join("\n  " + line for line in about[-15:]))


def _registry_config(listen, rootdirectory, redirect=False):
    """A distribution configuration on the object store: no auth, plain HTTP (a test process)."""
    storage = objectstore.distribution_storage(BUCKET, rootdirectory, chunksize=CHUNK)
    # blobs over 5 MiB are moved from _uploads with UploadPartCopy, in 5 MiB parts
    storage["s3"].update(multipartcopythresholdsize=CHUNK, multipartcopychunksize=CHUNK)
    storage["redirect"]["disable"] = not redirect
    storage["cache"] = {"blobdescriptor": "inmemory"}
    return {"version": 0.1, "log": {"level": "info", "formatter": "text"}, "storage": storage,
            "http": {"addr": listen, "secret": "lab-objectstore-test"}}


class Registry:
    """A distribution process on this machine with a configuration of ``_registry_config``."""

    def __init__(self, binary, folder, rootdirectory, redirect=False):
        self.address = f"127.0.0.1:{pl.free_port()}"
        config = os.path.join(folder, f"config-{self.address.rsplit(':', 1)[1]}.yml")
        with open(config, "w") as handle:
            yaml.safe_dump(_registry_config(self.address, rootdirectory, redirect), handle)
        self.log_path = config + ".log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, OTEL_TRACES_EXPORTER="none",
                   REGISTRY_STORAGE_S3_ACCESSKEY=objectstore.ACCESS_KEY,
                   REGISTRY_STORAGE_S3_SECRETKEY=objectstore.SECRET_KEY)
        self.proc = subprocess.Popen([binary, "serve", config], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        pl.wait_until(self.answers, 30, f"the registry on {self.address} answering")

    def answers(self):
        assert self.proc.poll() is None, self.tail()
        try:
            return requests.get(f"http://{self.address}/v2/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def tail(self):
        self.log.flush()
        with open(self.log_path) as handle:
            return handle.read()[-4000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def registry_process(bins, store, tmp_path):
    started = []

    def start(rootdirectory, redirect=False):
        started.append(Registry(bins["distribution"], str(tmp_path), rootdirectory, redirect))
        return started[-1]

    yield start
    for registry in started:
        registry.stop()


def _skopeo(*args):
    return subprocess.run(["skopeo", "--command-timeout", "120s", *args], capture_output=True, text=True,
                          timeout=180, check=False)


def _layout_blobs(layout):
    """{digest: size} of every blob of the layout's image (config, layers), and its manifest digest."""
    digest, manifest = image.load_manifest(layout)
    blobs = {d["digest"]: d["size"] for d in [manifest["config"]] + manifest["layers"]}
    return digest, blobs


def _blob_key(root, digest):
    algorithm, hexdigest = digest.split(":")
    return f"{root}/{V2}/blobs/{algorithm}/{hexdigest[:2]}/{hexdigest}/data"


def test_store_answers_on_its_service_ip_and_accepts_only_its_signed_key_pair(lab, store):
    core = kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster))
    service = core.read_namespaced_service(objectstore.NAME, objectstore.NAMESPACE)
    assert service.spec.cluster_ip == objectstore.SERVICE_IP
    pods = core.list_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR)
    assert [p.spec.node_name for p in pods.items] == [node.NODE_NAME]
    # its bolt file is in the lab's state folder on this machine
    assert os.path.getsize(os.path.join(lab.state, objectstore.DATA_DIR, "s3.db")) > 0

    listing = objectstore.request("GET", store + "/")
    assert listing.status_code == 200, listing.text
    for name in objectstore.BUCKETS:
        assert f"<Name>{name}</Name>" in listing.text

    url = objectstore.object_url(BUCKET, query={"list-type": 2})
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    wrong_secret = objectstore.request("GET", url, secret_key=objectstore.SECRET_KEY + "x")
    assert wrong_secret.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in wrong_secret.text
    wrong_key = objectstore.request("GET", url, access_key="SOMEONE-ELSE")
    assert wrong_key.status_code == 403 and "<Code>InvalidAccessKeyId</Code>" in wrong_key.text

    key = f"selftest/{os.urandom(4).hex()}/object"
    body = os.urandom(1000)
    # a body that is not the one whose hash was signed is refused and not stored
    signed = objectstore.sign("PUT", objectstore.object_url(BUCKET, key), body=body,
                              payload_hash=hashlib.sha256(b"something else").hexdigest())
    signed.pop("host")
    tampered = requests.put(objectstore.object_url(BUCKET, key), data=body, headers=signed, timeout=10)
    assert tampered.status_code >= 400
    assert objectstore.request("HEAD", objectstore.object_url(BUCKET, key)).status_code == 404
    put = objectstore.request("PUT", objectstore.object_url(BUCKET, key), body=body)
    assert put.status_code == 200, put.text
    ranged = objectstore.request("GET", objectstore.object_url(BUCKET, key), headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    assert objectstore.list_objects(BUCKET, key) == {key: 1000}

    # the objects are on disk: a new pod (the Deployment's rollout) serves them
    old = pods.items[0].metadata.uid
    _restart(lab)

    def replaced():
        current = core.list_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR)
        return [p for p in current.items if p.metadata.uid != old and p.metadata.deletion_timestamp is None
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]

    # CI twice saw the new pod Running but never Ready (its probe refused at its address) while the
    # store served from it; the cause is not found yet. Such a pod is reported (a warning, with its
    # story) and replaced once more: the claim is that a new pod serves the objects kept on disk.
    stories = []
    for attempt in (1, 2):
        if pl.wait_until(replaced, 120, "a new Ready object store pod", fail=False):
            break
        current = core.list_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR).items
        pod_ip = next((p.status.pod_ip for p in current if p.metadata.uid != old), None)
        stories.append(f"no new Ready object store pod within 120 s (pod {attempt}):\n" + _store_story(lab, core, pod_ip))
        warnings.warn(stories[-1], stacklevel=1)
        if attempt == 2:
            pytest.fail("\n\n".join(stories))
        core.delete_collection_namespaced_pod(objectstore.NAMESPACE, label_selector=SELECTOR)
    pl.wait_until(objectstore.healthy, 30, "the new pod answering through the Service")
    assert objectstore.request("GET", objectstore.object_url(BUCKET, key)).content == body
    assert objectstore.request("DELETE", objectstore.object_url(BUCKET, key)).status_code == 204
    assert objectstore.list_objects(BUCKET, key) == {}


def test_distribution_process_pushes_pulls_redirects_and_deletes_on_the_object_store(registry_process, unique, tmp_path):
    root = f"selftest/process-{unique}"
    registry = registry_process("/" + root)
    layout = str(tmp_path / "oci")
    # three layers of 11 MiB each: parts of 5, 5 and 1 MiB, moved by UploadPartCopy; the config
    # blob is one small part, moved by CopyObject
    image.build_oci_layout(layout, layers=3, layer_size=11 * MiB, seed="objectstore-" + unique)
    digest, blobs = _layout_blobs(layout)
    assert sum(1 for size in blobs.values() if size > 2 * CHUNK) == 3
    reference = f"{registry.address}/lab/s3test:v1"

    pushed = _skopeo("copy", "--dest-tls-verify=false", "--digestfile", str(tmp_path / "pushed"),
                     "oci:" + layout, "docker://" + reference)
    assert pushed.returncode == 0, pushed.stderr + registry.tail()
    assert (tmp_path / "pushed").read_text().strip() == digest

    # (b) what landed in the bucket: every blob whole at its content address, the repository's
    # links, the manifest revision and tag; no upload left behind
    objects = objectstore.list_objects(BUCKET, root + "/")
    for blob, size in blobs.items():
        assert objects.get(_blob_key(root, blob)) == size, blob
        assert f"{root}/{V2}/repositories/lab/s3test/_layers/{blob.replace(':', '/')}/link" in objects
    manifest_hex = digest.split(":")[1]
    revision = f"{root}/{V2}/repositories/lab/s3test/_manifests/revisions/sha256/{manifest_hex}/link"
    assert revision in objects
    assert f"{root}/{V2}/repositories/lab/s3test/_manifests/tags/v1/current/link" in objects
    assert not [k for k in objects if "/_uploads/" in k]
    stored = objectstore.request("GET", objectstore.object_url(BUCKET, _blob_key(root, digest)))
    assert "sha256:" + hashlib.sha256(stored.content).hexdigest() == digest

    # pull it back (the registry reads every blob from the store): same digests
    pulled = _skopeo("copy", "--src-tls-verify=false", "docker://" + reference, "oci:" + str(tmp_path / "pulled"))
    assert pulled.returncode == 0, pulled.stderr + registry.tail()
    pulled_digest, pulled_blobs = _layout_blobs(str(tmp_path / "pulled"))
    assert (pulled_digest, pulled_blobs) == (digest, blobs)
    for blob in blobs:
        assert image.file_digest(os.path.join(tmp_path / "pulled", "blobs", *blob.split(":")))[0] == blob

    # with redirects on, a blob GET is a redirect to a URL presigned by the s3 driver
    redirecting = registry_process("/" + root, redirect=True)
    layer = max(blobs, key=blobs.get)
    answer = requests.get(f"http://{redirecting.address}/v2/lab/s3test/blobs/{layer}", allow_redirects=False,
                          timeout=30)
    assert answer.status_code == 307, answer.text
    location = answer.headers["Location"]
    assert location.startswith(f"{objectstore.ENDPOINT}/{BUCKET}/{root}/") and "X-Amz-Signature=" in location
    fetched = requests.get(location, timeout=60)
    assert fetched.status_code == 200 and "sha256:" + hashlib.sha256(fetched.content).hexdigest() == layer
    forged = requests.get(location.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=30)
    assert forged.status_code == 403

    # delete the manifest: the registry removes its revision and the tag from the bucket
    deleted = requests.delete(f"http://{registry.address}/v2/lab/s3test/manifests/{digest}", timeout=30)
    assert deleted.status_code == 202, deleted.text + registry.tail()
    gone = requests.head(f"http://{registry.address}/v2/lab/s3test/manifests/{digest}", timeout=30,
                         headers={"Accept": image.MEDIA_MANIFEST})
    assert gone.status_code == 404
    objects = objectstore.list_objects(BUCKET, root + "/")
    assert revision not in objects
    assert not [k for k in objects if "/_manifests/tags/v1/" in k]
    tags = requests.get(f"http://{registry.address}/v2/lab/s3test/tags/list", timeout=30)
    assert tags.status_code == 404 or not tags.json().get("tags"), tags.text
    for blob, size in blobs.items():  # blobs stay until garbage collection
        assert objects.get(_blob_key(root, blob)) == size


def test_registry_pod_on_the_node_stores_pushed_images_in_the_object_store(lab, bins, store, unique, tmp_path):
    """What the registry-cluster role will run: the lab's registry image in a pod, its key pair
    from a Secret in REGISTRY_STORAGE_S3_ACCESSKEY / _SECRETKEY, reaching the store at its cluster IP."""
    api = lab.api_client(lab.layout.registry_cluster)
    core, apps = kclient.CoreV1Api(api), kclient.AppsV1Api(api)
    namespace = "s3-" + unique
    root = f"selftest/pod-{unique}"
    refs = lab.image_references()
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        config = _registry_config(":5000", "/" + root)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "registry-config"},
                                                      "data": {"config.yml": yaml.safe_dump(config)}})
        core.create_namespaced_secret(namespace, {"metadata": {"name": "registry-s3"}, "stringData": {
            "accesskey": objectstore.ACCESS_KEY, "secretkey": objectstore.SECRET_KEY}})
        labels = {"app": "registry"}
        env = [{"name": "REGISTRY_STORAGE_S3_" + key.upper(),
                "valueFrom": {"secretKeyRef": {"name": "registry-s3", "key": key}}} for key in ("accesskey", "secretkey")]
        apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": "registry"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "registry", "image": refs["registry"], "env": env,
                    "ports": [{"containerPort": 5000}],
                    "readinessProbe": {"httpGet": {"path": "/v2/", "port": 5000}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/distribution"}]}],
                    "terminationGracePeriodSeconds": 5,
                    "volumes": [{"name": "config", "configMap": {"name": "registry-config"}}]}}}})
        service = core.create_namespaced_service(namespace, {
            "metadata": {"name": "registry"},
            "spec": {"selector": labels, "ports": [{"port": 5000, "targetPort": 5000}]}})
        address = f"{service.spec.cluster_ip}:5000"

        def answers():
            try:
                return requests.get(f"http://{address}/v2/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        pl.wait_until(answers, 120, "the registry pod answering through its Service")
        layout = str(tmp_path / "oci")
        image.build_oci_layout(layout, layers=2, layer_size=6 * MiB, seed="objectstore-pod-" + unique)
        digest, blobs = _layout_blobs(layout)
        pushed = _skopeo("copy", "--dest-tls-verify=false", "oci:" + layout, f"docker://{address}/lab/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        inspected = _skopeo("inspect", "--tls-verify=false", f"docker://{address}/lab/app:v1")
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["Digest"] == digest
        objects = objectstore.list_objects(BUCKET, root + "/")
        for blob, size in blobs.items():
            assert objects.get(_blob_key(root, blob)) == size, blob
    finally:
        core.delete_namespace(namespace)
