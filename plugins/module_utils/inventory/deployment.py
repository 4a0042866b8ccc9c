# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the registry-cluster role deploys for an environment entry (pure): its ``replicas``,
``tls`` and ``storage`` (a claim, an existing claim, or ``storage.s3``), checked for what their
shape (``shape.check`` against ``schema.ENVIRONMENT``) does not say: names, sizes, and the fields
that exclude or need each other. Each parser takes the entry's label (``where``), the value as
the shape check returned it (types converted, defaults filled in, None where it found a problem)
and a collector with ``add(where, field, message)``, and returns the model object. ``validate``
calls them for every entry of ``segmented_registry_environments``."""

from __future__ import annotations

import re
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import (
    is_quantity,
    s3_bucket_problem,
    split_url,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import S3Storage, Storage, Tls
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    REPLICAS_DEFAULT,
    REPLICAS_MAX,
    TERMINATION_EDGE,
    TERMINATION_PASSTHROUGH,
)
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

# An S3 region: us-east-1, eu-west-3, or what an S3-compatible server calls its own.
_S3_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_replicas(where: str, value: Optional[int], storage: Optional[dict], out: Any) -> int:
    if value is None:
        return REPLICAS_DEFAULT
    if isinstance(value, bool) or not 1 <= value <= REPLICAS_MAX:
        out.add(
            where, "replicas", f"{show(value)} is not a number of registry pods; write a whole number from 1 to {REPLICAS_MAX} (default {REPLICAS_DEFAULT})"
        )
        return REPLICAS_DEFAULT
    if value > 1 and not (storage or {}).get("s3"):
        out.add(
            where,
            "replicas",
            f"{value} registry pods need object storage: filesystem storage on one volume "
            "serves one replica; use storage.s3 (a bucket) for more than one, or set replicas: 1",
        )
    return value


def parse_tls(where: str, value: Optional[dict], namespace: str, out: Any) -> Tls:
    if value is None:
        return Tls()
    termination = value["termination"]
    secret = value["serving_cert_secret"]
    example = f"{namespace}-registry-tls"
    if secret is not None and not is_dns1123_subdomain(secret):
        out.add(
            where,
            "tls.serving_cert_secret",
            "{} is not a Secret name; name a kubernetes.io/tls Secret in namespace {}, like {}".format(show(secret), namespace, example),
        )
    elif secret is not None and termination == TERMINATION_EDGE:
        out.add(
            where,
            "tls.serving_cert_secret",
            "is not used with termination edge: the router ends TLS and talks "
            "plain HTTP to the registry pod; remove serving_cert_secret, or set tls.termination to reencrypt or "
            "passthrough",
        )
    elif secret is None and termination == TERMINATION_PASSTHROUGH:
        out.add(
            where,
            "tls.serving_cert_secret",
            "is required with termination passthrough (the router passes TLS "
            "through and the registry pod serves its own certificate): name a kubernetes.io/tls Secret in "
            "namespace {}, like {}, or use termination reencrypt (OpenShift's service CA then issues the pod's "
            "certificate)".format(namespace, example),
        )
    return Tls(termination=termination or TERMINATION_EDGE, serving_cert_secret=secret)


def parse_s3(where: str, value: dict, namespace: str, out: Any) -> Optional[S3Storage]:
    bucket, region, endpoint = value["bucket"], value["region"], value["endpoint"]
    secret, root_directory = value["credentials_secret"], value["root_directory"]
    ok = None not in (bucket, secret, region, value["force_path_style"])  # else: a problem of its shape
    problem = s3_bucket_problem(bucket) if bucket is not None else None
    if problem:
        out.add(
            where,
            "storage.s3.bucket",
            "{} is not an S3 bucket name: {}; use 3 to 63 lowercase letters, "
            "digits, '.' and '-', starting and ending with a letter or digit, like acme-{}-registry".format(show(bucket), problem, namespace),
        )
        ok = False
    if region is not None and not _S3_REGION.match(region):
        out.add(where, "storage.s3.region", f"{show(region)} is not a region name; write one like us-east-1 (the default) or eu-west-1")
        ok = False
    if endpoint is not None:
        try:
            split_url(endpoint)
        except ValueError as err:
            out.add(
                where,
                "storage.s3.endpoint",
                "{} is not an http(s)://host[:port] URL of an S3-compatible server: {}; leave it out for AWS S3".format(show(endpoint), err),
            )
            ok = False
    if secret is not None and not is_dns1123_subdomain(secret):
        out.add(
            where,
            "storage.s3.credentials_secret",
            "{0} is not a Secret name; name a Secret in namespace {1} with the keys access_key and secret_key, like {1}-registry-s3".format(
                show(secret), namespace
            ),
        )
        ok = False
    if root_directory is not None and not root_directory.startswith("/"):
        out.add(
            where,
            "storage.s3.root_directory",
            f"{show(root_directory)} is not an absolute path; write the prefix in the bucket starting with /, like /registry",
        )
        ok = False
    if not ok:
        return None
    return S3Storage(
        bucket=bucket, credentials_secret=secret, region=region, endpoint=endpoint, force_path_style=value["force_path_style"], root_directory=root_directory
    )


def parse_storage(where: str, value: Optional[dict], namespace: str, out: Any) -> Storage:
    if value is None:
        return Storage()
    size, storage_class, claim_name = value["size"], value["storage_class"], value["claim_name"]
    if size is not None and not is_quantity(size):
        out.add(where, "storage.size", f"{show(size)} is not a Kubernetes quantity; write a positive size like 100Gi or 500G")
    if storage_class is not None and not is_dns1123_subdomain(storage_class):
        out.add(
            where,
            "storage.storage_class",
            "{} is not a StorageClass name; use a lowercase DNS name like gp3-csi, or leave it out for the cluster's default StorageClass".format(
                show(storage_class)
            ),
        )
    if claim_name is not None:
        if not is_dns1123_subdomain(claim_name):
            out.add(where, "storage.claim_name", f"{show(claim_name)} is not a PersistentVolumeClaim name; use a lowercase DNS name like registry-storage")
        if size is not None or storage_class is not None:
            out.add(
                where,
                "storage.claim_name",
                "claim_name (an existing PersistentVolumeClaim) excludes size and storage_class, which describe a claim to create; keep one or the other",
            )
    s3 = None
    if value["s3"] is not None:
        volume = [key for key in ("size", "storage_class", "claim_name") if value[key] is not None]
        if volume:
            out.add(
                where,
                "storage.s3",
                "a bucket excludes {} (a volume: size and storage_class describe a claim to "
                "create, claim_name an existing one); keep s3 or the volume settings, not both".format(" and ".join(f"storage.{key}" for key in volume)),
            )
        s3 = parse_s3(where, value["s3"], namespace, out)
    return Storage(size=size, storage_class=storage_class, claim_name=claim_name, s3=s3)
