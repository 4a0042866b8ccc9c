#!/usr/bin/python
# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: registry_credential
short_description: Mint a registry credential on the registry cluster and distribute it to a consumer cluster
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Mints registry credentials on the registry cluster and distributes each to its consumer cluster as a
    C(kubernetes.io/dockerconfigjson) Secret - one credential, or many in one call (O(credentials)).
attributes:
  check_mode:
    support: full
    details:
      - Reads both clusters and reports every write it would make in RV(changes); nothing is written and
        no token is minted.
      - A namespace or service account that is not there yet is a warning, not an error, so that a
        check run of a whole site (where the registry-cluster role or C(credentials_create_missing)
        would make it first) previews to the end; a real run fails on it and changes nothing.
  diff_mode:
    support: full
    details:
      - The generation, its expiry, the Secrets and their links before and after - never a token.
  idempotent:
    support: full
extends_documentation_fragment:
  - segmented.registry.attributes
  - segmented.registry.credential
notes:
  - On the registry cluster, an identity (the ServiceAccount
    C(segmented-<access>-<cluster_name>) in O(namespace)) bound to C(segmented-registry:environment-puller)
    (O(access=pull), the token server's own right to pull from that environment's registry, made by the
    registry-cluster role) or C(system:image-pusher) (O(access=push), OpenShift's, for the integrated
    registry) in O(grant_namespace) (default O(namespace)) only, and its token. On the consumer cluster, a
    C(kubernetes.io/dockerconfigjson) Secret O(secret_name) for
    the registry O(registry) in each namespace of O(targets), linked to the service accounts listed
    there (C(imagePullSecrets) for pull, C(secrets) for push), without disturbing their other entries.
  - A pull credential of environment C(test) is granted in namespace C(test) - the environment registry's
    token server grants pulls there and nowhere else; the credentials role keeps the identity itself in a
    namespace of its own (O(grant_namespace)). A push credential of a build namespace is minted
    in that namespace - the integrated registry grants pushes to that namespace only.
  - Tokens come from the TokenRequest API (O(token_type=bound)), bound to a Secret per credential
    generation on the registry cluster - deleting that Secret revokes the token. A pull credential's
    token is minted for the audience C(segmented.registry/token-server) - the environment registries'
    token server accepts it, the registry cluster's API refuses it (401); a push credential's is an API
    token, as the integrated registry wants. A generation minted for another audience (an earlier
    version's) is replaced and revoked by the next run. O(token_type=long_lived) uses a
    C(kubernetes.io/service-account-token) Secret instead (no expiry; deleting it revokes it) - push
    credentials only.
  - A Secret on the consumer cluster is this credential's when segmented.registry made it for this
    credential and either for this O(cluster_name) or for the same O(registry) through O(namespace) -
    so renaming the host in the inventory adopts its Secrets (the identity of the former name is
    removed by the credentials role). The token is read back only from such a Secret at a target's name.
  - Takes both clusters explicitly (O(registry_cluster), O(cluster)) and checks, before writing anything,
    that both answer, that the caller holds every right the run needs (SelfSubjectAccessReview), that
    every target namespace and service account exists and that no Secret of someone else's is in the way.
  - Idempotent. A generation far from expiry is kept and nothing is written; within O(renew_before) of
    its expiry, or when it expires later than O(duration) allows (the duration was shortened), a new
    generation replaces it (the old one stays valid until its own expiry, at most O(duration) from now,
    or until a run with O(revoke_retired)). What was made
    is tracked with labels and annotations on the objects themselves - never with state on the controller.
  - O(rotate=true) makes a new generation, writes it everywhere, and marks the old one for revocation after
    O(grace) seconds; a later run revokes it (playbooks/rotate_credentials.yml does both). With O(grace=0)
    the old generation is revoked as soon as the new one is written.
  - O(state=absent) revokes every generation and removes the identity; with O(cluster), also the Secrets
    of this identity on the consumer cluster, unlinked from every service account first.
  - Tokens never appear in the result, in diffs or in errors; every form of them (the token, its base64,
    the base64 of C(user:token)) is a no_log value.
  - The caller needs, on the registry cluster, rights on serviceaccounts, serviceaccounts/token and secrets
    in O(namespace), on rolebindings in O(grant_namespace) (and to grant the ClusterRole, for example by holding it); on the consumer
    cluster, rights on secrets and serviceaccounts in each target namespace and to list them cluster-wide.
    Missing rights are all reported at once, before anything is written.
  - Never copy an OpenShift C(<sa>-dockercfg-*) Secret to another cluster - since 4.16 it holds a bound
    token the cluster refreshes on its own.
seealso:
  - module: segmented.registry.validate_inventory
"""

EXAMPLES = r"""
- name: The pull credential of cluster prod, into two namespaces (one a spot for the global pull secret)
  segmented.registry.registry_credential:
    registry_cluster: "{{ hostvars['registry'].segmented_registry_k8s_auth }}"
    cluster: "{{ hostvars['prod'].segmented_registry_k8s_auth }}"
    cluster_name: prod
    access: pull
    namespace: segmented-registry-consumers
    grant_namespace: prod
    registry: "{{ (segmented_registry_environments | selectattr('name', '==', 'prod') | first).route_host }}"
    targets:
      - {namespace: shop, service_accounts: [default, deployer]}
      # the credentials role keeps openshift-config/segmented-registry-pull: another name beside it
      - {namespace: openshift-config, secret_name: shop-registry-pull}

- name: Rotate it, keeping the old token valid for 10 minutes
  segmented.registry.registry_credential:
    registry_cluster: "{{ hostvars['registry'].segmented_registry_k8s_auth }}"
    cluster: "{{ hostvars['prod'].segmented_registry_k8s_auth }}"
    cluster_name: prod
    access: pull
    namespace: segmented-registry-consumers
    grant_namespace: prod
    registry: "{{ (segmented_registry_environments | selectattr('name', '==', 'prod') | first).route_host }}"
    targets: [{namespace: shop, service_accounts: [default, deployer]}]
    rotate: true
    grace: 600

- name: Three credentials in one call, run at once (one of a cluster gone from the inventory)
  segmented.registry.registry_credential:
    registry_cluster: "{{ hostvars['registry'].segmented_registry_k8s_auth }}"
    credentials:
      - cluster: "{{ hostvars['prod'].segmented_registry_k8s_auth }}"
        cluster_name: prod
        access: pull
        namespace: segmented-registry-consumers
        grant_namespace: prod
        registry: "{{ (segmented_registry_environments | selectattr('name', '==', 'prod') | first).route_host }}"
        targets: [{namespace: shop, service_accounts: [default, deployer]}]
      - cluster: "{{ hostvars['test'].segmented_registry_k8s_auth }}"
        cluster_name: test
        access: push
        namespace: myproject
        registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
        targets: [{namespace: myproject, service_accounts: [builder]}]
      # a cluster gone from the inventory: its identity revoked on the registry cluster only
      - {cluster_name: old, access: pull, namespace: segmented-registry-consumers, grant_namespace: prod, state: absent}
    parallel: 8
  register: credentials_results
  # credentials_results.credentials[1].generation is test's push generation
"""

RETURN = r"""
credentials:
  description:
    - With O(credentials), the result of each element, in input order; the keys of one credential's result
      are then in its element only (and the top level has RV(credentials) and C(changed)).
    - A failed element has its naming keys, C(failed), C(msg), C(changed) and RV(credentials[].changes) (what it
      wrote before it failed) only.
  returned: with O(credentials)
  type: list
  elements: dict
  contains:
    cluster_name:
      description: The element's O(credentials[].cluster_name).
      returned: always
      type: str
    access:
      description: The element's O(credentials[].access).
      returned: always
      type: str
    namespace:
      description: The element's O(credentials[].namespace).
      returned: always
      type: str
    state:
      description: The element's O(credentials[].state).
      returned: always
      type: str
    failed:
      description: Whether this credential failed (the module then fails too, naming it).
      returned: always
      type: bool
    msg:
      description: Why it failed, prefixed with C(credentials[<index>]) and its cluster.
      returned: failed
      type: str
    <<: &result
      identity:
        description: The ServiceAccount on the registry cluster, C(namespace/name).
        returned: for each credential
        type: str
        sample: prod/segmented-pull-prod-east
      generation:
        description: The generation Secret the distributed token belongs to (null with O(state=absent)).
        returned: for each credential
        type: str
        sample: segmented-pull-prod-east-gen3
      new_generation:
        description: Whether this run made (or would make) a new generation.
        returned: for each credential with state present
        type: bool
      reason:
        description: Why a new generation was made; null when the current one was kept.
        returned: for each credential with state present
        type: str
      expires:
        description: When the distributed token expires (epoch seconds); null for a long-lived one or in check mode.
        returned: for each credential with state present
        type: int
      secrets:
        description: The Secrets on the consumer cluster, C(namespace/name).
        returned: for each credential
        type: list
        elements: str
      revoked:
        description: Generation Secrets deleted (their tokens revoked).
        returned: for each credential
        type: list
        elements: str
      retired:
        description: Generation Secrets marked for revocation after a grace period.
        returned: for each credential
        type: list
        elements: str
      changes:
        description: Every write, in order (what would be written, in check mode). Never a token.
        returned: for each credential
        type: list
        elements: str
<<: *result
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import STATE_ABSENT, STATE_PRESENT, spec_problems
from ansible_collections.segmented.registry.plugins.module_utils.errors import CredentialsError, failing

try:
    from ansible_collections.segmented.registry.plugins.module_utils.kube import (
        HAS_KUBERNETES,
        KUBERNETES_IMPORT_ERROR,
        auth_argument_spec,
    )
    from ansible_collections.segmented.registry.plugins.module_utils.credentials import runs
except ImportError:  # pragma: no cover - kubernetes.core's client layer missing its dependencies
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    def auth_argument_spec() -> dict[str, Any]:
        return {}


#: The options that name one credential: required in single mode, given in each element of credentials.
NAMING = ("cluster_name", "access", "namespace")


def credential_options(element):
    """The options of one credential: the module's own in single mode, or (``element``) those of an
    element of ``credentials``, where the naming options are required."""
    options = {
        "cluster": {"type": "dict", "options": auth_argument_spec()},
        "cluster_name": {"type": "str"},
        "access": {"type": "str", "choices": [labels.ACCESS_PULL, labels.ACCESS_PUSH]},
        "namespace": {"type": "str"},
        "grant_namespace": {"type": "str"},
        "registry": {"type": "str"},
        "secret_name": {"type": "str", "no_log": False},
        "targets": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "namespace": {"type": "str", "required": True},
                "service_accounts": {"type": "list", "elements": "str", "default": []},
                "secret_name": {"type": "str", "no_log": False},
            },
        },
        "token_type": {"type": "str", "choices": [labels.TOKEN_BOUND, labels.TOKEN_LONG_LIVED], "default": labels.TOKEN_BOUND, "no_log": False},
        "duration": {"type": "int", "default": 604800},
        "renew_before": {"type": "int", "default": 172800},
        "rotate": {"type": "bool", "default": False},
        "grace": {"type": "int", "default": 0},
        "revoke_retired": {"type": "bool", "default": False},
        "state": {"type": "str", "choices": [STATE_PRESENT, STATE_ABSENT], "default": STATE_PRESENT},
    }
    if element:
        for name in NAMING:
            options[name]["required"] = True
    return options


def argument_spec():
    element = {"type": "list", "elements": "dict", "options": credential_options(element=True)}
    element["required_if"] = [("state", STATE_PRESENT, ("cluster", "registry"))]
    return dict(
        registry_cluster={"type": "dict", "default": {}, "options": auth_argument_spec()},
        credentials=element,
        parallel={"type": "int", "default": 8},
        **credential_options(element=False),
    )


def module_of():
    """The module: single mode needs the naming options and, with state=present, both clusters' and
    the registry's; batch mode (credentials) takes none of one credential's options outside it."""
    return AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("credentials", name) for name in credential_options(element=False)],
        required_one_of=[(name, "credentials") for name in NAMING],
        required_if=[("state", STATE_PRESENT, ("cluster", "credentials"), True), ("state", STATE_PRESENT, ("registry", "credentials"), True)],
    )


def single(module):
    """One credential (the module's own options)."""
    run = runs.Run(runs.spec_of(module.params), module.params["registry_cluster"], module.params["cluster"])
    with failing(module, partial=run.so_far):
        problems = spec_problems(run.spec)
        if problems:
            raise CredentialsError("; ".join(problems) + ". Nothing was changed")
        result = run.go(module.check_mode, module.no_log_values.add)
    for warning in run.warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = run.credential.diff()
    module.exit_json(**result)


def element_result(run):
    """An element of the result's credentials: what names it, then its result (or why it failed)."""
    spec = run.spec
    named = {"cluster_name": spec.cluster, "access": spec.access, "namespace": spec.namespace, "state": spec.state, "failed": run.error is not None}
    if run.error is None:
        return dict(named, **run.result)
    named["changes"] = []
    named.update(run.so_far())
    named.update(run.error.result)
    named["msg"] = f"{run.name}: {run.error}"
    return named


def batch(module):
    """Many credentials (credentials), in threads."""
    params = module.params
    batch_runs = runs.batch_runs(params["registry_cluster"], params["credentials"])
    with failing(module, changed=False):
        problems = runs.batch_problems(params["credentials"], params["parallel"])
        if problems:
            raise CredentialsError("; ".join(problems) + ". Nothing was changed")
        runs.run_all(batch_runs, params["parallel"], module.check_mode, module.no_log_values.add)
    for run in batch_runs:
        for warning in run.warnings:
            module.warn(f"{run.name}: {warning}")
    result = {"changed": any(run.so_far()["changed"] for run in batch_runs), "credentials": [element_result(run) for run in batch_runs]}
    if module._diff:
        result["diff"] = [dict(run.credential.diff(), before_header=run.name, after_header=run.name) for run in batch_runs if run.credential is not None]
    failed = [run for run in batch_runs if run.error is not None]
    if failed:
        module.fail_json(
            msg=f"{len(failed)} of {len(batch_runs)} credentials failed (the others ran): " + "; ".join(f"{run.name}: {run.error}" for run in failed),
            **result,
        )
    module.exit_json(**result)


def main():
    module = module_of()
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    if module.params["credentials"] is None:
        single(module)
    else:
        batch(module)


if __name__ == "__main__":
    main()
