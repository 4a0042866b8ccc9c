#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: reconcile
short_description: Make every environment registry hold exactly the approved images, by digest
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Makes every environment registry hold exactly the image tags approved for its environment, copied by
    digest from the integrated registry, and removes the tags no longer approved there.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.promotion
  - segmented.registry.query
  - segmented.registry.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the approval lists and every registry and returns the plan, each copy with the bytes it
        would send at most (C(bytes_planned)); nothing is written anywhere (the short-lived token is
        still minted, to read the registries).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A second run finds every approved tag in place and only skips.
options:
  namespace:
    description:
      - Only these namespaces (projects), for example V([team-a]). One ImageStream list call each.
      - When not given, the whole registry cluster is read with one cluster-wide list call, and every
        C(<namespace>/<stream>) repository of each environment registry is in scope (tags of deleted
        image streams are removed).
    type: list
    elements: str
  stream:
    description: Only this image stream (needs exactly one I(namespace)), for example V(app).
    type: str
  tag:
    description:
      - Only this tag of I(stream) (and its cosign artifacts), for example V(v1.2.3).
      - A removal narrowed to one tag always uses the placeholder method, because the other tags of
        its digest are not read.
    type: str
  environment:
    description:
      - Only these environments, for example V([uat, prod]). An environment they wait on (C(policy.after))
        is still read, not changed.
      - An environment with C(state=absent) cannot be named (an error that says so).
    type: list
    elements: str
notes:
  - Reads the approval lists (environment lists) of the image stream tags on the registry cluster (the
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
  - Every copy and removal carried out (or failed) is recorded in the promotion history on the registry
    cluster (see I(history_limit)). A tag that M(segmented.registry.rollback) rolled back in an
    environment keeps the digest it was rolled back to there while the source tag serves the digest it
    was rolled back from (the history says so; one ConfigMap list per namespace in scope reads it).
  - An environment with C(state=absent) in I(environments) is no promotion target. Its registry is
    never read, planned, written or audited, even when approval lists still name it (they are reported
    in C(absent_environments), with a warning).
  - 'Policies per environment (from the inventory): C(after) - the digest must already be in that
    environment''s registry (same repository), or be copied there earlier in the same run;
    C(scan_gate) - a scanner''s verdict for the digest, recorded in an ImageStream annotation whose
    value is a JSON object mapping digests to results, must equal the configured value. A gated tag is
    reported, not copied, and what the registry serves under that tag is left as it is.'
  - Blob garbage collection is the registry's job. After removals, the manifests are unlinked but the
    blobs stay on storage until C(registry garbage-collect) runs; schedule it on the registry cluster,
    with the registry read-only or stopped, as the distribution documentation requires. Do not use
    C(--delete-untagged) with distribution 2.8.x, which also deletes the untagged platform manifests of
    multi-arch images (distribution issue 3178).
seealso:
  - module: segmented.registry.promote
  - module: segmented.registry.tag_environments
  - module: segmented.registry.validate_inventory
"""

EXAMPLES = r"""
- name: Reconcile everything
  segmented.registry.reconcile:
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]
    report_file: /var/tmp/reconcile.json
  register: reconcile

- name: What would change for one tag (check mode returns the plan)
  segmented.registry.reconcile:
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]
    namespace: [myproject]
    stream: app
    tag: v1.2.3
  check_mode: true

- name: Which tags drift, and which does a policy hold back (JMESPath over the result)
  segmented.registry.reconcile:
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]
    query:
      drifted: "audit[?length(drift) > `0`].tag"
      held_back: "gated[].{tag: join(':', [repository, tag]), environment: environment, reason: reason}"
  check_mode: true
  register: audit

- name: Show the drifting tags and those a policy holds back
  ansible.builtin.debug:
    msg: "drifting: {{ audit.query_results.drifted }}; held back: {{ audit.query_results.held_back }}"
"""

RETURN = r"""
query_results:
  description: The answer of each I(query) expression, by name.
  returned: when I(query) is given
  type: dict
  sample: {drifted: ["myproject/app:v2"]}
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
  description:
    - Every tag already in place (same digest), and approved tags without an image.
    - Empty with I(details=changes) (C(summary) counts them).
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
bytes_planned:
  description:
    - In check mode, the bytes of blobs the planned copies refer to (each copy has its own
      C(bytes_planned)); an upper bound, since blobs a registry already has are mounted or skipped.
  returned: check mode
  type: int
audit:
  description:
    - One row per tag (C(tag), C(digest), C(approved), C(present), C(drift)), as before the run.
    - With I(details=changes), only the rows with drift.
  returned: success
  type: list
  elements: dict
table:
  description: The audit rows as text lines.
  returned: success
  type: list
  elements: str
unknown_environments:
  description:
    - Environment names found in approval lists that the inventory does not define (ignored, with a warning).
    - Each tag naming one gets a failed entry under that environment's key in the promotion history (see I(history_limit)).
  returned: success
  type: list
  elements: str
absent_environments:
  description:
    - Environment names found in approval lists that the inventory has with C(state=absent) (ignored, with a
      warning). They are no promotion target; their registries are never read, written or audited.
  returned: success
  type: list
  elements: str
stats:
  description: C(api_calls) to the registry cluster, C(registry_requests) (by method), C(token_requests), C(retries),
    C(blob_bytes_sent) (every blob byte sent, retried attempts included), C(seconds) (C(startup) from the
    module's first line to its job's start, its imports and argument checks; C(read) the state read; C(total) all of it).
  returned: success
  type: dict
history_written:
  description:
    - C(namespace/name) of each promotion-history ConfigMap the run wrote (see I(history_limit)).
  returned: when not in check mode
  type: list
  elements: str
  sample: [myproject/segmented-registry-history-app]
history:
  description:
    - The recorded promotion history of the ImageStreams in scope (narrowed to I(stream), I(tag) and
      I(environment) when given), newest first, after this run's entries were added.
    - Each entry has C(namespace), C(stream), C(tag), C(environment), C(time) (UTC, ISO 8601), C(action)
      (C(promote), C(demote) or C(rollback)), C(digest_before), C(digest_after), C(by), C(result)
      (C(ok) or C(failed)) and C(message).
  returned: when I(show_history=true)
  type: list
  elements: dict
scope:
  description: What the run was narrowed to.
  returned: success
  type: dict
"""


import time

#: The module's clock starts here, before its imports (kubernetes.core and the kubernetes client
#: beneath it take about a third of a second): stats.seconds.total is everything this module costs.
STARTED = time.monotonic()

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import (
    check_namespace,
    check_stream,
    check_tag,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import promotion_targets
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule
from ansible_collections.segmented.registry.plugins.module_utils.promotion import job
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope, ScopeError


def argument_spec():
    spec = job.argument_spec()
    spec.update(
        namespace={"type": "list", "elements": "str"},
        stream={"type": "str"},
        tag={"type": "str"},
        environment={"type": "list", "elements": "str"},
    )
    return spec


def build_scope(params, environments):
    """The run's ``Scope``; ``environments`` is the inventory's ``{name: Environment}``, and only
    those without ``state: absent`` can be named in ``environment``."""
    namespaces = params["namespace"]
    if namespaces is not None:
        namespaces = sorted({check_namespace(name) for name in namespaces})
    stream = check_stream(params["stream"]) if params["stream"] is not None else None
    tag = check_tag(params["tag"]) if params["tag"] is not None else None
    if stream is not None and (not namespaces or len(namespaces) != 1):
        raise ScopeError("stream needs exactly one namespace")
    if tag is not None and stream is None:
        raise ScopeError("tag needs stream (and namespace)")
    names = params["environment"]
    if names is not None:
        targets = promotion_targets(environments)
        unknown = sorted(set(names) - set(environments))
        if unknown:
            raise ScopeError(f"environment: {', '.join(unknown)} not in environments (known: {', '.join(targets)})")
        absent = sorted(set(names) - set(targets))
        if absent:
            raise ScopeError(
                f"environment: {', '.join(absent)} {'has' if len(absent) == 1 else 'have'} state: absent in "
                f"environments, so {'it is' if len(absent) == 1 else 'they are'} no promotion target and "
                f"never reconciled (promotion targets: {', '.join(targets)})"
            )
    return Scope(namespaces=namespaces, stream=stream, tag=tag, environments=names)


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, **job.MODULE_KWARGS)
    run = job.Job(module, started=STARTED)
    with failing(module):
        scope = build_scope(module.params, run.environments)
        run.check_source()
        run.connect()
        entries, annotations = run.read_approvals(scope.namespaces)
    run.finish(run.run(entries, annotations, scope, module.check_mode))


if __name__ == "__main__":
    main()
