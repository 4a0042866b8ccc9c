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
  - Mints one registry credential of one consumer cluster on the registry cluster and distributes it to
    that consumer cluster as a C(kubernetes.io/dockerconfigjson) Secret.
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
  cluster:
    description:
      - How to reach the consumer cluster - kubernetes.core's authentication options.
      - Required with O(state=present). With O(state=absent) and without it, only the registry side is
        revoked (the consumer cluster left the inventory); its Secrets then hold a dead token.
    type: dict
    suboptions: *k8s_auth
  cluster_name:
    description:
      - The consumer cluster's inventory host name, for example V(prod); it names the identity and labels
        every object. A lowercase DNS label of at most 40 characters. Renamed, it takes over the Secrets of the same
        O(registry) and O(namespace) made under the former name.
    type: str
    required: true
  access:
    description:
      - V(pull) - pull from the registry of the environment O(namespace); V(push) - push to the build
        namespace O(namespace) of the integrated registry.
    type: str
    choices: [pull, push]
    required: true
  namespace:
    description:
      - The namespace on the registry cluster where the identity (its ServiceAccount and generation
        Secrets) lives and, without O(grant_namespace), gets its access - the environment's namespace
        (pull) or the build namespace (push). It must exist.
    type: str
    required: true
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
"""

RETURN = r"""
identity:
  description: The ServiceAccount on the registry cluster, C(namespace/name).
  returned: always
  type: str
  sample: prod/segmented-pull-prod-east
generation:
  description: The generation Secret the distributed token belongs to (null with O(state=absent)).
  returned: always
  type: str
  sample: segmented-pull-prod-east-gen3
new_generation:
  description: Whether this run made (or would make) a new generation.
  returned: state is present
  type: bool
reason:
  description: Why a new generation was made; null when the current one was kept.
  returned: state is present
  type: str
expires:
  description: When the distributed token expires (epoch seconds); null for a long-lived one or in check mode.
  returned: state is present
  type: int
secrets:
  description: The Secrets on the consumer cluster, C(namespace/name).
  returned: always
  type: list
  elements: str
revoked:
  description: Generation Secrets deleted (their tokens revoked).
  returned: always
  type: list
  elements: str
retired:
  description: Generation Secrets marked for revocation after a grace period.
  returned: always
  type: list
  elements: str
changes:
  description: Every write, in order (what would be written, in check mode). Never a token.
  returned: always
  type: list
  elements: str
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.distribute import Credential
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import (
    STATE_ABSENT,
    STATE_PRESENT,
    Spec,
    Target,
    spec_problems,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, CredentialsError, failing

try:
    from ansible_collections.segmented.registry.plugins.module_utils.kube import (
        HAS_KUBERNETES,
        KUBERNETES_IMPORT_ERROR,
        auth_argument_spec,
    )
    from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
    from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import (
        ClusterUnreachable,
        probe,
    )
except ImportError:  # pragma: no cover - kubernetes.core's client layer missing its dependencies
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    def auth_argument_spec() -> dict[str, Any]:
        return {}


DEFAULT_SECRETS = {labels.ACCESS_PULL: "segmented-registry-pull", labels.ACCESS_PUSH: "segmented-registry-push"}


def argument_spec():
    return {
        "registry_cluster": {"type": "dict", "default": {}, "options": auth_argument_spec()},
        "cluster": {"type": "dict", "options": auth_argument_spec()},
        "cluster_name": {"type": "str", "required": True},
        "access": {"type": "str", "choices": [labels.ACCESS_PULL, labels.ACCESS_PUSH], "required": True},
        "namespace": {"type": "str", "required": True},
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


def connect(option, auth, where):
    """One of the two clusters (named ``where`` in messages), after a bounded probe (a
    ``ClusterError`` naming the option when the cluster does not answer or refuses the credentials)."""
    auth = {key: value for key, value in (auth or {}).items() if value is not None}
    try:
        probe(auth)
    except ClusterUnreachable as error:
        raise ClusterError(
            f"{option}: cannot use the cluster: {error}. Check {option} (an expired or revoked api_key is refused with 401); nothing was changed", field=option
        )
    return Cluster.of_auth(auth, where)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, required_if=[("state", STATE_PRESENT, ("cluster", "registry"))])
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    params = module.params
    spec = Spec(
        cluster=params["cluster_name"],
        access=params["access"],
        namespace=params["namespace"],
        registry=params["registry"],
        secret_name=params["secret_name"] or DEFAULT_SECRETS[params["access"]],
        targets=[Target(item["namespace"], list(item["service_accounts"] or ()), item.get("secret_name")) for item in params["targets"]],
        token_type=params["token_type"],
        duration=params["duration"],
        renew_before=params["renew_before"],
        rotate=params["rotate"],
        grace=params["grace"],
        revoke_retired=params["revoke_retired"],
        state=params["state"],
        grant_namespace=params["grant_namespace"],
    )
    problems = spec_problems(spec)
    credential = None  # set once both clusters answered

    def so_far():
        """What a failure reports: nothing changed before the Credential runs, else its changes."""
        if credential is None:
            return {"changed": False}
        return {"changed": bool(credential.changes), "changes": credential.changes}

    with failing(module, partial=so_far):
        if problems:
            raise CredentialsError("; ".join(problems) + ". Nothing was changed")
        registry = connect("registry_cluster", params["registry_cluster"], "the registry cluster")
        consumer = connect("cluster", params["cluster"], f"cluster {spec.cluster}") if params["cluster"] is not None else None
        credential = Credential(spec, registry, consumer, check_mode=module.check_mode, mask=module.no_log_values.add)
        result = credential.run()
    for warning in credential.warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = credential.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
