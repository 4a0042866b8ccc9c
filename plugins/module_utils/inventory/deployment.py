# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the registry-cluster role deploys for an environment entry (pure): its ``state``,
``replicas``, ``tls`` and ``storage`` (a claim, an existing claim, or ``storage.s3``), checked
field by field. Each parser takes the entry's label (``where``), the raw value and a collector
with ``add(where, field, message)``, and returns the model object (``None`` when absent or bad).
``validate`` calls them for every entry of ``segmented_registry_environments``."""

import re
from collections.abc import Mapping

from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import (
    is_quantity,
    s3_bucket_problem,
    split_url,
    to_bool,
    to_int,
    type_name,
    unknown_key_message,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import S3Storage, Storage, Tls
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import (
    REPLICAS_DEFAULT,
    REPLICAS_MAX,
    S3_KEYS,
    S3_REGION_DEFAULT,
    STATE_PRESENT,
    STATES,
    STORAGE_KEYS,
    TERMINATION_EDGE,
    TERMINATION_PASSTHROUGH,
    TERMINATIONS,
    TLS_KEYS,
)
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

# An S3 region: us-east-1, eu-west-3, or what an S3-compatible server calls its own.
_S3_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_state(where, value, out):
    if value is None:
        return STATE_PRESENT
    if value not in STATES:
        out.add(where, "state", "{} is not a state; use present (the default: the environment's registry is "
                "deployed and images are promoted to it) or absent (its registry is removed and it is no longer a "
                "promotion target)".format(show(value)))
        return STATE_PRESENT
    return value


def parse_replicas(where, value, raw_storage, out):
    if value is None:
        return REPLICAS_DEFAULT
    try:
        replicas = to_int(value)
    except ValueError:
        replicas = None
    if replicas is None or not 1 <= replicas <= REPLICAS_MAX:
        out.add(where, "replicas", f"{show(value)} is not a number of registry pods; write a whole number from 1 to "
                f"{REPLICAS_MAX} (default {REPLICAS_DEFAULT})")
        return REPLICAS_DEFAULT
    has_s3 = isinstance(raw_storage, Mapping) and raw_storage.get("s3") is not None
    if replicas > 1 and not has_s3:
        out.add(where, "replicas", f"{replicas} registry pods need object storage: filesystem storage on one volume "
                "serves one replica; use storage.s3 (a bucket) for more than one, or set replicas: 1")
    return replicas


def parse_tls(where, value, namespace, out):
    if value is None:
        return Tls()
    if not isinstance(value, Mapping):
        out.add(where, "tls", "must be a mapping like {{termination: reencrypt}}, not {} {}".format(
            type_name(value), show(value)))
        return Tls()
    for key in value:
        if key not in TLS_KEYS:
            out.add(where, f"tls.{key}", unknown_key_message(key, TLS_KEYS))
    termination = value.get("termination")
    if termination is None:
        termination = TERMINATION_EDGE
    elif termination not in TERMINATIONS:
        out.add(where, "tls.termination", "{} is not a Route termination; use edge (the default: the router ends "
                "TLS and talks plain HTTP to the registry pod), reencrypt (the router ends TLS and opens a new TLS "
                "connection to the pod) or passthrough (the pod ends TLS itself)".format(show(termination)))
        termination = None
    secret = value.get("serving_cert_secret")
    example = f"{namespace}-registry-tls"
    if secret is not None and not is_dns1123_subdomain(secret):
        out.add(where, "tls.serving_cert_secret", "{} is not a Secret name; name a kubernetes.io/tls Secret in "
                "namespace {}, like {}".format(show(secret), namespace, example))
    elif secret is not None and termination == TERMINATION_EDGE:
        out.add(where, "tls.serving_cert_secret", "is not used with termination edge: the router ends TLS and talks "
                "plain HTTP to the registry pod; remove serving_cert_secret, or set tls.termination to reencrypt or "
                "passthrough")
    elif secret is None and termination == TERMINATION_PASSTHROUGH:
        out.add(where, "tls.serving_cert_secret", "is required with termination passthrough (the router passes TLS "
                "through and the registry pod serves its own certificate): name a kubernetes.io/tls Secret in "
                "namespace {}, like {}, or use termination reencrypt (OpenShift's service CA then issues the pod's "
                "certificate)".format(namespace, example))
    return Tls(termination=termination or TERMINATION_EDGE, serving_cert_secret=secret)


def parse_s3(where, value, namespace, out):
    if not isinstance(value, Mapping):
        out.add(where, "storage.s3", "must be a mapping like {{bucket: acme-{0}-registry, credentials_secret: "
                "{0}-registry-s3}}, not {1} {2}".format(namespace, type_name(value), show(value)))
        return None
    for key in value:
        if key not in S3_KEYS:
            out.add(where, f"storage.s3.{key}", unknown_key_message(key, S3_KEYS))
    ok = True
    bucket = value.get("bucket")
    if bucket is None:
        out.add(where, "storage.s3.bucket", f"is required: the bucket that holds this registry's images, like acme-{namespace}-registry")
        ok = False
    else:
        problem = s3_bucket_problem(bucket)
        if problem:
            out.add(where, "storage.s3.bucket", "{} is not an S3 bucket name: {}; use 3 to 63 lowercase letters, "
                    "digits, '.' and '-', starting and ending with a letter or digit, like acme-{}-registry".format(
                        show(bucket), problem, namespace))
            ok = False
    region = value.get("region")
    if region is None:
        region = S3_REGION_DEFAULT
    elif not isinstance(region, str) or not _S3_REGION.match(region):
        out.add(where, "storage.s3.region", f"{show(region)} is not a region name; write one like {S3_REGION_DEFAULT} (the default) or eu-west-1")
        ok = False
    endpoint = value.get("endpoint")
    if endpoint is not None:
        try:
            split_url(endpoint)
        except ValueError as err:
            out.add(where, "storage.s3.endpoint", "{} is not an http(s)://host[:port] URL of an S3-compatible "
                    "server: {}; leave it out for AWS S3".format(show(endpoint), err))
            ok = False
    secret = value.get("credentials_secret")
    if secret is None:
        out.add(where, "storage.s3.credentials_secret", "is required with a bucket: name a Secret in namespace {0} "
                "with the keys access_key and secret_key (the bucket's credentials), like {0}-registry-s3".format(
                    namespace))
        ok = False
    elif not is_dns1123_subdomain(secret):
        out.add(where, "storage.s3.credentials_secret", "{0} is not a Secret name; name a Secret in namespace {1} with "
                "the keys access_key and secret_key, like {1}-registry-s3".format(show(secret), namespace))
        ok = False
    force_path_style = value.get("force_path_style")
    if force_path_style is None:
        force_path_style = False
    else:
        try:
            force_path_style = to_bool(force_path_style)
        except ValueError:
            out.add(where, "storage.s3.force_path_style", f"{show(force_path_style)} is not a boolean; write false (the default) or true")
            ok = False
    root_directory = value.get("root_directory")
    if root_directory is not None and (not isinstance(root_directory, str) or not root_directory.startswith("/")):
        out.add(where, "storage.s3.root_directory", f"{show(root_directory)} is not an absolute path; write the prefix "
                "in the bucket starting with /, like /registry")
        ok = False
    if not ok:
        return None
    return S3Storage(bucket=bucket, credentials_secret=secret, region=region, endpoint=endpoint,
                     force_path_style=force_path_style, root_directory=root_directory)


def parse_storage(where, value, namespace, out):
    if value is None:
        return Storage()
    if not isinstance(value, Mapping):
        out.add(where, "storage", "must be a mapping with size and storage_class, claim_name, or s3, not {} {}".format(
            type_name(value), show(value)))
        return Storage()
    for key in value:
        if key not in STORAGE_KEYS:
            out.add(where, f"storage.{key}", unknown_key_message(key, STORAGE_KEYS))
    size, storage_class, claim_name = value.get("size"), value.get("storage_class"), value.get("claim_name")
    if isinstance(size, int) and not isinstance(size, bool):
        size = str(size)
    if size is not None and not is_quantity(size):
        out.add(where, "storage.size", f"{show(size)} is not a Kubernetes quantity; write a positive size like 100Gi or 500G")
    if storage_class is not None and not is_dns1123_subdomain(storage_class):
        out.add(where, "storage.storage_class", "{} is not a StorageClass name; use a lowercase DNS name like "
                "gp3-csi, or leave it out for the cluster's default StorageClass".format(show(storage_class)))
    if claim_name is not None:
        if not is_dns1123_subdomain(claim_name):
            out.add(where, "storage.claim_name", f"{show(claim_name)} is not a PersistentVolumeClaim name; use a lowercase DNS name like registry-storage")
        if size is not None or storage_class is not None:
            out.add(where, "storage.claim_name", "claim_name (an existing PersistentVolumeClaim) excludes size and "
                    "storage_class, which describe a claim to create; keep one or the other")
    s3 = None
    if value.get("s3") is not None:
        volume = [key for key in ("size", "storage_class", "claim_name") if value.get(key) is not None]
        if volume:
            out.add(where, "storage.s3", "a bucket excludes {} (a volume: size and storage_class describe a claim to "
                    "create, claim_name an existing one); keep s3 or the volume settings, not both".format(
                        " and ".join(f"storage.{key}" for key in volume)))
        s3 = parse_s3(where, value.get("s3"), namespace, out)
    return Storage(size=size, storage_class=storage_class, claim_name=claim_name, s3=s3)
