#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: reconcile
short_description: Make every environment registry hold exactly the approved images, by digest
version_added: 1.0.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Reads the environment whitelists of the image stream tags on the registry cluster (the
    annotation M(segmented.registry.tag_environments) edits) with one C(image.openshift.io/v1)
    ImageStream list call per namespace (or one cluster-wide call), reads what each environment
    registry holds, plans, and executes.
  - Every tag approved for an environment is copied, by digest, from the integrated registry
    (the C(default) environment, where builds push) into that environment's registry as
    C(<namespace>/<stream>:<tag>). The digest is the one in the ImageStream's status. The manifest
    bytes are copied unchanged, so the digest is preserved; for a manifest list or OCI index every
    platform is copied.
  - A tag that is in an environment registry but no longer approved there (or whose image stream
    or tag was deleted) is removed. A CNCF distribution registry deletes by digest, which takes every
    tag of that digest; when another tag of the same digest must stay, the removed tag is first
    pointed at a small placeholder manifest whose digest is then deleted, so the other tag is served
    all along. Each removal says which way it went and which tags it kept.
  - Fast. A tag whose destination already serves the digest is skipped (one manifest HEAD per tag
    and environment is all a run with nothing to do costs, plus one tag listing per repository).
    Every blob is HEADed before it is sent, mounted from another repository of the same registry when
    one has it, else streamed from the source a block at a time (never a whole layer in memory).
    Images and blobs are copied in parallel with bounded pools; connections are reused.
  - Safe. Blobs first, manifest last; the destination never serves a tag whose blobs are missing.
    If the source serves another digest under the tag than the ImageStream says (the tag moved
    between the plan and the copy), that tag is not copied and is reported as a failure
    (C(source moved)); a different digest is never tagged. Transient errors (connection errors,
    timeouts, 429, 5xx) are retried a bounded number of times with back-off. A failure of one tag
    does not stop the others; the module fails at the end if any tag failed.
  - Cosign signatures, attestations and SBOMs of an approved digest (tags C(sha256-<hex>.sig),
    C(.att), C(.sbom) in the source repository) are copied with it and removed with it.
  - 'Policies per environment (from the inventory): C(after) - the digest must already be in that
    environment''s registry (same repository), or be copied there earlier in the same run;
    C(scan_gate) - a scanner''s verdict for the digest, recorded in an ImageStream annotation whose
    value is a JSON object mapping digests to results, must equal the configured value. A gated tag is
    reported, not copied, and what the registry serves under that tag is left as it is.'
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the whitelists and every registry and returns the plan; nothing is written anywhere
        (the short-lived token is still minted, to read the registries).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A second run finds every approved tag in place and only skips.
options:
  environments:
    description:
      - The environments, exactly as the inventory variable C(segmented_registry_environments)
        (each with C(name), C(route_host), and optionally C(endpoint), C(ca_cert), C(validate_certs),
        C(policy)). See M(segmented.registry.validate_inventory) for the meaning of each key.
      - They are validated as the inventory is; every problem is reported at once.
    type: list
    elements: dict
    required: true
  integrated_registry:
    description:
      - C(host[:port]) of the registry cluster's integrated registry, the source of every copy
        (the inventory variable C(segmented_registry_integrated_registry)).
    type: str
    required: true
  integrated_ca_cert:
    description:
      - Path of the PEM bundle that signs the integrated registry's certificate, when the system
        trust store does not.
    type: path
  integrated_validate_certs:
    description:
      - Whether to verify the integrated registry's TLS certificate. V(false) is an explicit opt-out.
    type: bool
    default: true
  namespace:
    description:
      - Only these namespaces (projects). One ImageStream list call each.
      - When not given, the whole registry cluster is read with one cluster-wide list call, and every
        C(<namespace>/<stream>) repository of each environment registry is in scope (tags of deleted
        image streams are removed).
    type: list
    elements: str
  stream:
    description: Only this image stream (needs exactly one I(namespace)).
    type: str
  tag:
    description:
      - Only this tag of I(stream) (and its cosign artifacts).
      - A removal narrowed to one tag always uses the placeholder method, because the other tags of
        its digest are not read.
    type: str
  environment:
    description:
      - Only these environments. An environment they wait on (C(policy.after)) is still read, not changed.
    type: list
    elements: str
  service_account:
    description:
      - C(namespace/name) of the service account on the registry cluster whose short-lived
        TokenRequest token is the registry password (for the integrated registry and every environment
        registry). Minted with the module's Kubernetes credentials for each run; nothing long-lived is
        stored.
      - It needs C(registry-viewer) (list image streams, the catalog) and C(system:image-puller)
        cluster-wide, C(system:image-pusher) in each environment namespace, and C(delete) on
        C(images.image.openshift.io) cluster-wide to remove tags (see C(lab/promoter.yml)).
      - Mutually exclusive with I(registry_token); one of them is required.
    type: str
  token_duration:
    description: Lifetime in seconds of the minted token (at least 600, the TokenRequest API's minimum).
    type: int
    default: 900
  registry_token:
    description:
      - An API token of the registry cluster to use as the registry password instead of minting one.
    type: str
  annotation_key:
    description: The annotation that holds a tag's environments (see M(segmented.registry.tag_environments)).
    type: str
    default: segmented.registry/environments
  prune:
    description: Remove tags that are no longer approved. V(false) only copies.
    type: bool
    default: true
  parallel_images:
    description: How many images are copied at once.
    type: int
    default: 4
  parallel_blobs:
    description: How many blobs are copied at once (over all images).
    type: int
    default: 6
  retries:
    description: How many times a registry request is retried after a connection error, a timeout, 429 or 5xx.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for a registry to answer (read timeout; connecting waits at most 10 seconds).
    type: int
    default: 60
  report_file:
    description:
      - Also write the result (every action, the audit rows and the counters) as JSON to this file
        on the managed node (mode 0600). Written in check mode too.
    type: path
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
  - requests >= 2.32
notes:
  - Blob garbage collection is the registry's job. After removals, the manifests are unlinked but the
    blobs stay on storage until C(registry garbage-collect) runs; schedule it on the registry cluster,
    with the registry read-only or stopped, as the distribution documentation requires. Do not use
    C(--delete-untagged) with distribution 2.8.x, which also deletes the untagged platform manifests of
    multi-arch images (distribution issue 3178).
  - The auth options fall back to the C(K8S_AUTH_*) environment variables (AWX credentials).
seealso:
  - module: segmented.registry.tag_environments
  - module: segmented.registry.validate_inventory
"""

EXAMPLES = r"""
- name: Reconcile everything
  segmented.registry.reconcile:
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry/promoter
    kubeconfig: ~/.kube/registry-cluster
    report_file: /var/tmp/reconcile.json
  register: reconcile

- name: What would change for one tag (check mode returns the plan)
  segmented.registry.reconcile:
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: image-registry.apps.registry.example.com
    service_account: segmented-registry/promoter
    namespace: [myproject]
    stream: app
    tag: v1.2.3
  check_mode: true
"""

RETURN = r"""
changed:
  description: Whether anything was copied or removed (in check mode, whether something would be).
  returned: always
  type: bool
summary:
  description: Counts per result (C(copied), C(skipped), C(removed), C(gated), C(failed)); in check mode per planned action.
  returned: success
  type: dict
  sample: {copied: 2, skipped: 14, removed: 1}
copies:
  description:
    - Every copy, with C(environment), C(repository), C(tag), C(digest), C(current) (what was there before),
      C(result), C(bytes_sent), C(blobs_sent), C(blobs_mounted), C(blobs_present), C(manifests_put), C(seconds);
      C(artifact_of) for a cosign artifact; C(requires) when it waited for a copy into another environment.
  returned: success
  type: list
  elements: dict
skips:
  description: Every tag already in place (same digest), and approved tags without an image.
  returned: success
  type: list
  elements: dict
removals:
  description: Every removal, with C(method) (C(delete) or C(retarget)), C(keeps) (the tags of the same digest that stay) and C(reason).
  returned: success
  type: list
  elements: dict
gated:
  description: Every tag a policy held back, with the C(reason).
  returned: success
  type: list
  elements: dict
failures:
  description: Every tag that could not be planned or copied or removed, with the C(reason) or C(error).
  returned: always
  type: list
  elements: dict
bytes_moved:
  description: Bytes of blobs sent to the environment registries.
  returned: success
  type: int
audit:
  description: One row per tag (C(tag), C(digest), C(approved), C(present), C(drift)), as before the run.
  returned: success
  type: list
  elements: dict
table:
  description: The audit rows as text lines.
  returned: success
  type: list
  elements: str
unknown_environments:
  description: Environment names found in whitelists that the inventory does not define (ignored).
  returned: success
  type: list
  elements: str
stats:
  description: C(api_calls) to the registry cluster, C(registry_requests) (by method), C(token_requests), C(retries),
    C(blob_bytes_sent) (every blob byte sent, retried attempts included), C(seconds).
  returned: success
  type: dict
scope:
  description: What the run was narrowed to.
  returned: success
  type: dict
"""

import copy
import json
import os
import time

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.segmented.registry.plugins.module_utils import oci, sync
from ansible_collections.segmented.registry.plugins.module_utils.credentials import (
    MIN_TOKEN_SECONDS,
    CredentialsError,
    mint_token,
)
from ansible_collections.segmented.registry.plugins.module_utils.environments import (
    DEFAULT_ANNOTATION_KEY,
    EnvironmentsError,
    check_annotation_key,
)
from ansible_collections.segmented.registry.plugins.module_utils.imagestreams import (
    ImageStreamError,
    Registry,
    check_namespace,
    check_stream,
    check_tag,
    list_streams,
    tag_entries,
)
from ansible_collections.segmented.registry.plugins.module_utils.topology import (
    TopologyError,
    VAR_INTEGRATED_REGISTRY,
    VAR_ROLE,
    build_topology,
)


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        environments=dict(type="list", elements="dict", required=True),
        integrated_registry=dict(type="str", required=True),
        integrated_ca_cert=dict(type="path"),
        integrated_validate_certs=dict(type="bool", default=True),
        namespace=dict(type="list", elements="str"),
        stream=dict(type="str"),
        tag=dict(type="str"),
        environment=dict(type="list", elements="str"),
        service_account=dict(type="str"),
        token_duration=dict(type="int", default=900, no_log=False),
        registry_token=dict(type="str", no_log=True),
        annotation_key=dict(type="str", default=DEFAULT_ANNOTATION_KEY, no_log=False),
        prune=dict(type="bool", default=True),
        parallel_images=dict(type="int", default=4),
        parallel_blobs=dict(type="int", default=6),
        retries=dict(type="int", default=3),
        timeout=dict(type="int", default=60),
        report_file=dict(type="path"),
    )
    return spec


def build_scope(params, topology):
    namespaces = params["namespace"]
    if namespaces is not None:
        namespaces = sorted(set(check_namespace(name) for name in namespaces))
    stream = check_stream(params["stream"]) if params["stream"] is not None else None
    tag = check_tag(params["tag"]) if params["tag"] is not None else None
    if stream is not None and (not namespaces or len(namespaces) != 1):
        raise ValueError("stream needs exactly one namespace")
    if tag is not None and stream is None:
        raise ValueError("tag needs stream (and namespace)")
    environments = params["environment"]
    if environments is not None:
        unknown = sorted(set(environments) - set(topology.environments))
        if unknown:
            raise ValueError("environment: {0} not in environments (known: {1})".format(
                ", ".join(unknown), ", ".join(topology.environments)))
    return sync.Scope(namespaces=namespaces, stream=stream, tag=tag, environments=environments)


def read_whitelists(registry, namespaces, annotation_key):
    """(entries, stream annotations, list calls): one list call per namespace, or one in all."""
    entries, annotations = [], {}
    streams, calls = list_streams(registry, namespaces or None)
    for imagestream in streams:
        meta = imagestream.get("metadata") or {}
        annotations["{0}/{1}".format(meta.get("namespace"), meta.get("name"))] = meta.get("annotations") or {}
        entries.extend(tag_entries(imagestream, annotation_key))
    return entries, annotations, calls


def main():
    module = AnsibleK8SModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("service_account", "registry_token")],
        required_one_of=[("service_account", "registry_token")],
    )
    if not oci.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=oci.REQUESTS_IMPORT_ERROR)
    params = module.params
    started = time.monotonic()
    for name in ("parallel_images", "parallel_blobs", "timeout"):
        if params[name] < 1:
            module.fail_json(msg="{0} must be at least 1, not {1}".format(name, params[name]))
    if params["retries"] < 0:
        module.fail_json(msg="retries must not be negative")
    if params["token_duration"] < MIN_TOKEN_SECONDS:
        module.fail_json(msg="token_duration must be at least {0} seconds (the TokenRequest API's minimum), "
                             "not {1}".format(MIN_TOKEN_SECONDS, params["token_duration"]))
    try:
        topology = build_topology(params["environments"], {"registry cluster": {
            VAR_ROLE: "registry", VAR_INTEGRATED_REGISTRY: params["integrated_registry"]}})
        scope = build_scope(params, topology)
        key = check_annotation_key(params["annotation_key"])
        registry = Registry.connect(module)
        entries, annotations, list_calls = read_whitelists(registry, scope.namespaces, key)
        api_calls = list_calls
        token = params["registry_token"]
        if token is None:
            token = mint_token(registry.client.client.client, params["service_account"], params["token_duration"])
            module._module.no_log_values.add(token)  # (the AnsibleModule inside) masked wherever echoed
            api_calls += 1
    except TopologyError as exc:
        module.fail_json(msg=exc.text, problems=[problem.to_dict() for problem in exc.problems])
    except (ValueError, EnvironmentsError, ImageStreamError, CredentialsError) as exc:
        module.fail_json(msg=str(exc))

    stats = oci.Stats()
    timeout = (min(10.0, float(params["timeout"])), float(params["timeout"]))
    pool = params["parallel_images"] + params["parallel_blobs"] + 4

    def client(host, ca_cert, validate_certs, name):
        return oci.RegistryClient(host, password=token, ca_cert=ca_cert, validate_certs=validate_certs, name=name,
                                  timeout=timeout, retries=params["retries"], stats=stats, pool_size=pool)

    source = client(params["integrated_registry"], params["integrated_ca_cert"], params["integrated_validate_certs"],
                    "default (integrated registry)")
    destinations = dict((env.name, client(env.endpoint, env.ca_cert, env.validate_certs, env.name))
                        for env in topology.environments.values())
    policies = dict((env.name, {"after": env.after,
                                "scan_gate": env.scan_gate.to_dict() if env.scan_gate else None})
                    for env in topology.environments.values())
    try:
        outcome = sync.reconcile(entries, policies, source, destinations, scope=scope, prune=params["prune"],
                                 check_mode=module.check_mode, stream_annotations=annotations,
                                 image_workers=params["parallel_images"], blob_workers=params["parallel_blobs"])
    except oci.RegistryError as exc:
        module.fail_json(msg=str(exc))
    finally:
        for item in [source] + list(destinations.values()):
            item.close()

    actions = outcome["actions"]

    def pick(kind):
        return [a for a in actions if a["action"] == kind]

    failures = [a for a in actions if (a.get("result") or a["action"]) == sync.FAILED]
    changing = [a for a in actions if (a.get("result") in ("copied", "removed")) or
                (module.check_mode and a["action"] in (sync.COPY, sync.REMOVE))]
    registry_stats = stats.to_dict()
    result = dict(
        changed=bool(changing),
        summary=outcome["summary"],
        copies=pick(sync.COPY),
        skips=pick(sync.SKIP),
        removals=pick(sync.REMOVE),
        gated=[a for a in actions if (a.get("result") or a["action"]) == sync.GATED],
        failures=failures,
        bytes_moved=sum(a.get("bytes_sent") or 0 for a in actions),
        audit=outcome["audit"],
        table=sync.format_table(outcome["audit"]),
        unknown_environments=outcome["unknown_environments"],
        scope=scope.to_dict(),
        stats=dict(api_calls=api_calls, registry_requests=registry_stats["requests"],
                   registry_requests_by_method=registry_stats["by_method"],
                   token_requests=registry_stats["token_requests"], retries=registry_stats["retries"],
                   blob_bytes_sent=registry_stats["blob_bytes_sent"],
                   seconds=dict(outcome["seconds"], total=round(time.monotonic() - started, 3))),
    )
    for warning in outcome["warnings"]:
        module.warn(warning)
    if params["report_file"]:
        report = dict(result, check_mode=module.check_mode)
        try:
            fd = os.open(params["report_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(report, handle, indent=1, sort_keys=True)
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot write report_file {0}: {1}".format(params["report_file"], exc), **result)
    if failures:
        module.fail_json(msg="{0} tag{1} failed (the others went through): {2}".format(
            len(failures), "" if len(failures) == 1 else "s",
            "; ".join("{0} {1}:{2}: {3}".format(f.get("environment") or "-", f["repository"], f["tag"],
                                                f.get("error") or f.get("reason")) for f in failures[:5])
            + ("; ..." if len(failures) > 5 else "")), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
