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
options:
  registry_cluster:
    description:
      - How to reach the registry cluster - kubernetes.core's authentication options. Empty - the
        C(K8S_AUTH_*) environment variables.
    type: dict
    default: {}
    suboptions: &k8s_auth
      kubeconfig:
        description:
          - Path to a kubeconfig file, or an inline kubeconfig (a mapping).
        type: raw
      context:
        description:
          - The name of a context in the kubeconfig.
        type: str
      host:
        description:
          - The URL of the API server, such as C(https://api.cluster.example.com:6443).
        type: str
      api_key:
        description:
          - A token to authenticate with the API. Keep it in a vault.
        type: str
      username:
        description:
          - A user name for HTTP basic authentication (rarely enabled on OpenShift).
        type: str
      password:
        description:
          - The password for C(username).
        type: str
      validate_certs:
        description:
          - Whether to verify the API server's TLS certificate.
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description:
          - Path to the CA bundle that signs the API server's certificate.
        type: path
        aliases: [ssl_ca_cert]
      client_cert:
        description:
          - Path to a client certificate to authenticate with the API.
        type: path
        aliases: [cert_file]
      client_key:
        description:
          - Path to the key of C(client_cert).
        type: path
        aliases: [key_file]
      proxy:
        description:
          - URL of an HTTP proxy to reach the API server through.
        type: str
      no_proxy:
        description:
          - Comma-separated hosts, domains and networks not to reach through C(proxy).
        type: str
      proxy_headers:
        description:
          - Headers for the proxy.
        type: dict
        suboptions:
          proxy_basic_auth:
            description:
              - Colon-separated C(username:password) for proxy basic authentication.
            type: str
          basic_auth:
            description:
              - Colon-separated C(username:password) for basic authentication.
            type: str
          user_agent:
            description:
              - The user agent to send.
            type: str
      persist_config:
        description:
          - Whether to save refreshed kubeconfig tokens back to the kubeconfig file.
        type: bool
      impersonate_user:
        description:
          - A user name to impersonate.
        type: str
      impersonate_groups:
        description:
          - Groups to impersonate.
        type: list
        elements: str
  credentials:
    description:
      - Many credentials in one call (a batch) - a list of elements, each taking the options of one credential
        (every option but O(registry_cluster), which they share, and O(parallel)) with the same meaning, choices,
        defaults and requirements; in the descriptions of the elements, O(cluster_name) and the others mean the
        element's own option.
      - Every element is checked before any cluster is reached; a bad one (any the module would refuse in
        single mode) is refused with a message naming it, C(credentials[<index>]) and its cluster, and
        nothing is changed.
      - The elements then run in threads, O(parallel) at a time; one failing does not stop the others. The
        module fails if any failed, naming each; RV(credentials) lists every element, in input order.
      - Without it, O(cluster_name), O(access) and O(namespace) are required; with it, they and the other
        options of one credential are refused outside the elements.
    type: list
    elements: dict
    suboptions:
      <<: &credential
        cluster:
          description:
            - How to reach the consumer cluster - kubernetes.core's authentication options.
            - Required with O(state=present). With O(state=absent) and without it, only the registry side is
              revoked (the consumer cluster left the inventory); its Secrets then hold a dead token.
          type: dict
          suboptions: *k8s_auth
        grant_namespace:
          description:
            - The namespace on the registry cluster where the identity gets its access (its RoleBinding, named
              C(segmented-<access>-<cluster_name>.<namespace>), with the ServiceAccount of O(namespace) as
              subject), when the identity lives in another namespace O(namespace). Default - O(namespace).
            - The credentials role keeps the consumers' pull identities in a namespace of their own
              (C(credentials_pull_namespace)) and grants them in the environment's namespace, so that an
              editor of the environment's namespace cannot mint tokens for them.
          type: str
        registry:
          description:
            - The C(host[:port]) the credential is for - the key of the dockerconfigjson entry (the environment
              registry's endpoint, or the integrated registry's), for example V(prod-registry.apps.registry.example.com).
              Required with O(state=present).
          type: str
        secret_name:
          description:
            - The name of the Secret on the consumer cluster.
            - Default C(segmented-registry-pull) or C(segmented-registry-push).
          type: str
        targets:
          description:
            - The namespaces of the consumer cluster that get the Secret. A Secret of this credential in a
              namespace no longer listed is unlinked and deleted.
          type: list
          elements: dict
          default: []
          suboptions:
            namespace:
              description: The namespace.
              type: str
              required: true
            service_accounts:
              description:
                - Service accounts of that namespace to link the Secret to. Each must exist. One that was
                  linked by an earlier run and is no longer listed is unlinked.
              type: list
              elements: str
              default: []
            secret_name:
              description:
                - The Secret's name in this namespace. Default O(secret_name).
              type: str
        token_type:
          description:
            - V(bound) - a TokenRequest token of O(duration) seconds, bound to its generation Secret.
            - V(long_lived) - a C(kubernetes.io/service-account-token) Secret (no expiry). OpenShift 4.11+ no
              longer makes these on its own but still honours them; prefer V(bound). Refused with O(access=pull) -
              such a Secret holds an API token, which the environment registries' token server does not accept.
          type: str
          choices: [bound, long_lived]
          default: bound
        duration:
          description:
            - The lifetime of a bound token in seconds (at least 600; the API server may cap it, and the
              expiry it grants is the one recorded).
          type: int
          default: 604800
        renew_before:
          description:
            - A bound token within this many seconds of its expiry is replaced by a normal run.
          type: int
          default: 172800
        rotate:
          description:
            - Make a new generation even when the current one is valid, and mark the old one for revocation
              after O(grace) seconds.
          type: bool
          default: false
        grace:
          description:
            - Seconds the replaced generation stays valid after a rotation. V(0) revokes it as soon as the new
              one is written everywhere.
          type: int
          default: 0
        revoke_retired:
          description:
            - Revoke now every generation an earlier run replaced and left valid (a rotation's grace period, a
              renewed generation until its expiry), instead of when its time is up. Set it once every holder
              has the current generation - playbooks/rotate_credentials.yml and playbooks/credentials.yml do,
              after the consumers' nodes report the new global pull secret. A generation this run replaces is
              not affected.
          type: bool
          default: false
        state:
          description:
            - V(present) - the credential exists and is distributed. V(absent) - revoked and removed.
          type: str
          choices: [present, absent]
          default: present
      cluster_name:
        description: &cluster_name
          - The consumer cluster's inventory host name, for example V(prod); it names the identity and labels
            every object. A lowercase DNS label of at most 40 characters. Renamed, it takes over the Secrets of the same
            O(registry) and O(namespace) made under the former name.
        type: str
        required: true
      access:
        description: &access
          - V(pull) - pull from the registry of the environment O(namespace); V(push) - push to the build
            namespace O(namespace) of the integrated registry.
        type: str
        choices: [pull, push]
        required: true
      namespace:
        description: &namespace
          - The namespace on the registry cluster where the identity (its ServiceAccount and generation
            Secrets) lives and, without O(grant_namespace), gets its access - the environment's namespace
            (pull) or the build namespace (push). It must exist.
        type: str
        required: true
  parallel:
    description:
      - How many elements of O(credentials) run at once (at least 1).
    type: int
    default: 8
  <<: *credential
  cluster_name:
    description: *cluster_name
    type: str
  access:
    description: *access
    type: str
    choices: [pull, push]
  namespace:
    description: *namespace
    type: str
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
