"""The lab's S3-compatible object store, a pod on the registry cluster's node.

Environment registries can keep their images in S3 (distribution's ``s3`` storage driver). The lab
gives them a real S3 server to do it against: ``s3server`` (``lab/build/s3server``: gofakes3 over
its bolt backend, built from the Go module proxy like the rest of the lab), in the image
``lab/s3:<version>`` (lab/images.py), run by ``labctl up`` as

* namespace ``lab-objectstore``: a Secret with the one key pair the server accepts (it checks
  every request's AWS Signature Version 4, header or presigned), a Deployment of one pod
  (``Recreate``: the bolt file takes one writer) keeping every object in ``<lab state>/objectstore/
  s3.db`` on this machine (a hostPath: it survives ``labctl down`` and goes with ``down --purge``),
  and a Service with the fixed cluster IP ``SERVICE_IP``;
* the buckets ``BUCKETS`` (one per environment of inventories/lab), created at start when missing.

The lab has no cluster DNS: a registry pod, like this machine, reaches the store at ``ENDPOINT``
(kube-proxy translates the cluster IP to the pod). Path-style addressing only (distribution:
``forcepathstyle: true``); ``distribution_storage`` is the storage section that works.

``sign``, ``request`` and ``list_objects``: a small Signature Version 4 client for checks from this
machine (what the tests use to see which objects landed).
"""
import base64
import datetime
import hashlib
import hmac
import os
import urllib.parse
import xml.etree.ElementTree as ET

import requests
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

NAMESPACE = "lab-objectstore"
NAME = "s3"
PORT = 9000
# In the static band of labctl.SERVICE_CIDR (10.96.0.0/16): its first 256 addresses, which the API
# server hands out on its own only once the rest of the range is used up; 10.96.0.1 is `kubernetes`.
SERVICE_IP = "10.96.0.20"
ENDPOINT = f"http://{SERVICE_IP}:{PORT}"
REGION = "us-east-1"  # any region name works (the server signs with the one in the request's scope)
# Lab-only credentials: the one key pair the server accepts.
ACCESS_KEY = "LABOBJECTSTORE00001"
SECRET_KEY = "lab-objectstore-secret-key-not-for-production"
ENVIRONMENTS = ("test", "uat", "prod")
BUCKETS = tuple(f"{env}-registry" for env in ENVIRONMENTS)
HEALTH_PATH = "/-/healthy"  # answered without credentials
LABELS = {"app.kubernetes.io/name": "lab-objectstore"}
DATA_DIR = "objectstore"  # under the lab's state folder
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def bucket(environment):
    """The bucket of an environment's registry."""
    return f"{environment}-registry"


def distribution_storage(bucket_name, rootdirectory=None, endpoint=ENDPOINT, chunksize=None):
    """The ``storage`` section of a distribution configuration that keeps a registry's data in the
    lab's object store. The key pair is left out: distribution reads it from
    REGISTRY_STORAGE_S3_ACCESSKEY and REGISTRY_STORAGE_S3_SECRETKEY. Blob GETs are served by the
    registry (``redirect: disable``): a client outside the cluster cannot reach ``endpoint``."""
    s3 = {"bucket": bucket_name, "region": REGION, "regionendpoint": endpoint, "forcepathstyle": True,
          "secure": endpoint.startswith("https://"), "v4auth": True}
    if rootdirectory:
        s3["rootdirectory"] = rootdirectory
    if chunksize:
        s3["chunksize"] = int(chunksize)
    return {"s3": s3, "redirect": {"disable": True}, "delete": {"enabled": True}}


def manifests(image, data_dir):
    """The objects ``apply`` makes: Namespace, Secret, Deployment, Service (in that order).
    ``image``: the lab/s3 reference; ``data_dir``: the folder on this machine for the bolt file."""
    meta = {"namespace": NAMESPACE, "labels": LABELS}

    def b64(text):
        return base64.b64encode(text.encode()).decode()

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": LABELS}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": dict(meta, name=NAME + "-credentials"),
         "data": {"accesskey": b64(ACCESS_KEY), "secretkey": b64(SECRET_KEY)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta, name=NAME),
         "spec": {
             "replicas": 1, "strategy": {"type": "Recreate"},
             "selector": {"matchLabels": LABELS},
             "template": {"metadata": {"labels": LABELS}, "spec": {
                 "containers": [{
                     "name": NAME, "image": image,
                     "args": ["-listen", f":{int(PORT)}", "-db", "/data/s3.db", "-bucket", ",".join(BUCKETS),
                              "-quiet"],
                     "env": [{"name": "S3SERVER_ACCESS_KEY",
                              "valueFrom": {"secretKeyRef": {"name": NAME + "-credentials", "key": "accesskey"}}},
                             {"name": "S3SERVER_SECRET_KEY",
                              "valueFrom": {"secretKeyRef": {"name": NAME + "-credentials", "key": "secretkey"}}}],
                     "ports": [{"name": "s3", "containerPort": PORT}],
                     "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": PORT}, "periodSeconds": 2},
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "terminationGracePeriodSeconds": 15,
                 "volumes": [{"name": "data", "hostPath": {"path": data_dir, "type": "DirectoryOrCreate"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta, name=NAME),
         "spec": {"clusterIP": SERVICE_IP, "selector": LABELS,
                  "ports": [{"name": "s3", "port": PORT, "targetPort": PORT, "protocol": "TCP"}]}},
    ]


def healthy(endpoint=ENDPOINT):
    try:
        return requests.get(endpoint + HEALTH_PATH, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def apply(lab, image, wait_for, timeout=180):
    """Apply ``manifests`` on the registry cluster (server-side apply: a second run changes nothing)
    and wait until the Deployment has rolled out (a new image replaces the pod) and the store
    answers at ``ENDPOINT`` from this machine."""
    data_dir = os.path.join(lab.state, DATA_DIR)
    api = lab.api_client(lab.layout.registry_cluster)
    dyn = DynamicClient(api)
    for doc in manifests(image, data_dir):
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        resource.server_side_apply(body=doc, namespace=doc["metadata"].get("namespace"),
                                   field_manager="labctl", force_conflicts=True)
    apps = kclient.AppsV1Api(api)

    def rolled_out():
        deployment = apps.read_namespaced_deployment(NAME, NAMESPACE)
        status = deployment.status
        return ((status.observed_generation or 0) >= deployment.metadata.generation
                and status.replicas == status.updated_replicas == status.ready_replicas == 1 and healthy())

    wait_for(f"object store (Deployment {NAMESPACE}/{NAME}, {ENDPOINT}{HEALTH_PATH})", rolled_out, timeout=timeout)
    return {"endpoint": ENDPOINT, "buckets": list(BUCKETS)}


# -- Signature Version 4, for checks from this machine -----------------------------------------
def _uri_encode(text, safe=""):
    return urllib.parse.quote(text, safe="-_.~" + safe)


def sign(method, url, headers=None, body=b"", access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
         now=None, payload_hash=None):
    """The headers that sign a request to ``url`` (path and query already URI-encoded as they will
    be sent) with AWS Signature Version 4 for S3: ``headers`` plus host, x-amz-date,
    x-amz-content-sha256 and Authorization. ``payload_hash``: what to claim instead of the body's."""
    parts = urllib.parse.urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    out = dict(headers or {})
    out["host"] = parts.netloc
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = payload_hash or hashlib.sha256(body).hexdigest()
    canonical_headers = {k.lower(): " ".join(str(v).split()) for k, v in out.items()}
    names = sorted(canonical_headers)
    query = sorted(
        f"{_uri_encode(k)}={_uri_encode(v)}"
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join([
        method, parts.path or "/", "&".join(query),
        "".join(f"{n}:{canonical_headers[n]}\n" for n in names), ";".join(names), out["x-amz-content-sha256"]])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def object_url(bucket_name, key="", query=None, endpoint=ENDPOINT):
    """Path-style URL of a bucket or object, encoded as ``sign`` expects."""
    url = f"{endpoint}/{_uri_encode(bucket_name)}"
    if key:
        url += "/" + _uri_encode(key, safe="/")
    if query:
        url += "?" + "&".join(f"{_uri_encode(k)}={_uri_encode(str(v))}" for k, v in query.items())
    return url


def request(method, url, body=b"", headers=None, timeout=30, **signing):
    """A signed request (``signing``: ``sign``'s keyword arguments); returns the response."""
    signed = sign(method, url, headers=headers, body=body, **signing)
    signed.pop("host")  # requests sends the same Host itself
    return requests.request(method, url, data=body or None, headers=signed, timeout=timeout)


def list_objects(bucket_name, prefix="", endpoint=ENDPOINT, page_size=1000, **signing):
    """Every object under ``prefix`` as {key: size} (ListObjectsV2, following continuation tokens)."""
    found, token = {}, None
    while True:
        query = {"list-type": "2", "max-keys": page_size, "prefix": prefix}
        if token:
            query["continuation-token"] = token
        response = request("GET", object_url(bucket_name, query=query, endpoint=endpoint), **signing)
        if response.status_code != 200:
            raise requests.HTTPError(f"ListObjectsV2 {bucket_name}/{prefix}: {response.status_code} {response.text}",
                                     response=response)
        root = ET.fromstring(response.content)
        for item in root.findall(S3_NS + "Contents"):
            found[item.findtext(S3_NS + "Key")] = int(item.findtext(S3_NS + "Size"))
        if root.findtext(S3_NS + "IsTruncated") != "true":
            return found
        token = root.findtext(S3_NS + "NextContinuationToken")

