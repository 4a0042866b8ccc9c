#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)


DOCUMENTATION = r"""
module: validate_inventory
short_description: Check the segmented registry inventory and reach every managed cluster
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Checks the inventory of a segmented registry (one registry cluster hosting one registry per
    lifecycle environment, consumer clusters each assigned one environment) and reports every
    problem at once, each naming the inventory host, the variable, the bad value and the fix.
extends_documentation_fragment:
  - segmented.registry.inventory
  - segmented.registry.attributes
  - segmented.registry.attributes.READ_ONLY
  - segmented.registry.attributes.FACTS
  - segmented.registry.attributes.ACTION
options:
  check_reachable:
    description:
      - Whether to check that every managed cluster answers (C(GET /version), then who we are
        authenticated as, where the server supports it).
      - V(false) only checks the inventory, without any network access.
    type: bool
    default: true
  touch:
    description:
      - Which clusters the playbook that runs this check will touch.
      - V(all), for the site playbook, reaches every managed cluster, and no two of them may share
        credentials.
      - V(registry), for promote, demote, reconcile and audit, which only talk to the registry
        cluster, reaches the registry cluster alone; the consumer clusters may then be unreachable
        or rely on the same C(K8S_AUTH_*) environment (one AWX Kubernetes credential) without
        failing the job.
      - The inventory itself is checked in full either way.
    type: str
    choices: [all, registry]
    default: all
  unreachable_consumers:
    description:
      - What a consumer cluster that does not answer does to the check.
      - V(fail) fails it, naming every cluster that did not answer.
      - V(leave_out) leaves that consumer cluster out instead - it is named in RV(left_out), with why,
        and the check passes for the others - so a playbook can finish every other cluster and fail the
        left-out ones by name (C(segmented.registry.site) does).
      - An unreachable registry cluster fails the check either way; every stage needs it.
    type: str
    choices: [fail, leave_out]
    default: fail
    version_added: 0.1.0
  timeout:
    description:
      - Seconds to wait for each request to a cluster's API server.
    type: int
    default: 10
  pushers:
    description:
      - The promotion job's service accounts (C(namespace/name), the registry-cluster role's
        C(registry_cluster_pushers)). Each must be C(namespace/name) and, with I(token_server_namespace),
        not in that namespace - an admin there, who can read the token signing key, could mint their tokens.
    type: list
    elements: str
  token_server_namespace:
    description:
      - The token server's namespace (C(registry_cluster_token_server_namespace)), which holds the signing
        key; no identity of I(pushers) may be in it.
    type: str
  token_server_route_host:
    description:
      - The host name of the token server's Route (C(registry_cluster_token_server_route_host)), a
        lowercase DNS name that no environment uses as its C(route_host) - the registries send
        clients to C(https://<host>/token), which must reach the token server.
      - Not set - not checked.
    type: str
    version_added: 0.1.0
  role_variables:
    description:
      - The variables roles require without a default, checked for every inventory host the role
        runs for, together with the inventory (every problem at once, each naming the host and the
        variable). A variable that is not set, is empty, or uses an undefined variable is a problem.
      - C(segmented.registry.validate) (and so the site playbook) fills it from the
        C(required) options of the C(meta/argument_specs.yml) of the collection's roles.
      - Checked by the action plugin, on the controller, against the inventory's variables of each host
        (extra variables included).
    type: list
    elements: dict
    suboptions:
      role:
        description: The role, for the messages, like V(segmented.registry.registry_cluster).
        type: str
        required: true
      clusters:
        description:
          - The hosts the role runs for. V(registry) - the host with C(segmented_registry_role=registry).
            V(consumers) - every other host with an environment other than V(default).
        type: str
        required: true
        choices: [registry, consumers]
      variables:
        description: The names of the variables the role requires.
        type: list
        elements: str
        required: true
requirements:
  - python >= 3.9
  - kubernetes >= 30.1.0
notes:
  - Then checks that every managed cluster (the registry cluster and every consumer with an
    environment) answers, in parallel and with a timeout, and reports every unreachable one with
    its API server URL and the error.
  - Changes nothing. Every playbook of this collection runs it first (see C(segmented.registry.validate)).
  - Its action plugin gathers the variables from the inventory, so it is normally called without
    O(environments) and O(clusters). Run it in a play on V(localhost).
  - Not in the C(segmented.registry.cluster) action group on purpose; it takes one set of
    credentials per cluster, not the module-level ones that C(module_defaults) would set.
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
# In a play on localhost (gather_facts: false): it reads the inventory and asks each cluster's API.
- name: Check the inventory and every managed cluster
  segmented.registry.validate_inventory:
  register: inventory

- name: Show which cluster serves which environment
  ansible.builtin.debug:
    var: inventory.summary

- name: Only check the inventory, offline
  segmented.registry.validate_inventory:
    check_reachable: false

- name: Also check that every host has what the roles that run for it require
  segmented.registry.validate_inventory:
    role_variables:
      - role: segmented.registry.registry_cluster
        clusters: registry
        variables: [registry_cluster_token_server_image, registry_cluster_token_server_route_host]
      - role: segmented.registry.consumer_cluster
        clusters: consumers
        variables: [consumer_cluster_logical_registry]

- name: Check an inventory given explicitly, offline
  segmented.registry.validate_inventory:
    check_reachable: false
    environments:
      - name: test
        route_host: test-registry.apps.registry.example.com
      - name: prod
        route_host: prod-registry.apps.registry.example.com
        policy:
          after: test
    clusters:
      - name: registry-cluster
        role: registry
        k8s_auth:
          kubeconfig: ~/.kube/config
          context: registry
      - name: prod-east
        environment: prod
        k8s_auth:
          host: https://api.prod-east.example.com:6443
          api_key: "{{ vault_prod_east_token }}"
"""

RETURN = r"""
topology:
  description:
    - The validated inventory. It holds no secret; the credentials of each cluster are described
      by their source only (C(kubeconfig <path> context <name>), C(host <url>) or
      C(K8S_AUTH_* environment)).
    - Also set as the fact C(segmented_registry_topology).
  returned: success
  type: dict
  contains:
    environments:
      description:
        - The environments by name, in the order they are defined, with their consumers.
        - Every field is there, with its default when the inventory leaves it out (C(state),
          C(replicas), C(tls), C(storage) and C(storage.s3)'s fields, C(policy)); C(storage.s3) and
          C(policy.scan_gate) are null when not given.
        - An environment with C(state=absent) is listed (the registry-cluster role removes what it
          made for it) but is no promotion target and has no consumers.
      returned: success
      type: dict
      sample:
        test:
          name: test
          namespace: test
          state: present
          route_host: test-registry.apps.registry.example.com
          endpoint: test-registry.apps.registry.example.com
          ca_cert: null
          validate_certs: true
          replicas: 1
          tls: {termination: edge, serving_cert_secret: null}
          storage: {size: 100Gi, storage_class: null, claim_name: null, s3: null}
          policy: {after: null, scan_gate: null}
          consumers: [test-east]
        prod:
          name: prod
          namespace: prod
          state: present
          route_host: prod-registry.apps.registry.example.com
          endpoint: prod-registry.apps.registry.example.com
          ca_cert: null
          validate_certs: true
          replicas: 2
          tls: {termination: reencrypt, serving_cert_secret: null}
          storage:
            size: null
            storage_class: null
            claim_name: null
            s3: {bucket: acme-prod-registry, region: us-east-1, endpoint: null,
                 credentials_secret: prod-registry-s3, force_path_style: false, root_directory: null}
          policy: {after: test, scan_gate: null}
          consumers: [prod-east]
    promotion_order:
      description: The names of the environments images are promoted to (not C(state=absent)), each after
        the one its C(policy.after) names.
      returned: success
      type: list
      elements: str
      sample: [test, uat, prod]
    registry_cluster:
      description: The registry cluster.
      returned: success
      type: dict
      sample: {name: registry-cluster, role: registry, environment: null,
               auth: kubeconfig ~/.kube/config context registry, integrated_registry: null}
    consumer_clusters:
      description: The consumer clusters, each with its environment.
      returned: success
      type: list
      elements: dict
      sample: [{name: test-east, role: consumer, environment: test, auth: K8S_AUTH_* environment}]
    default_clusters:
      description: The inventory hosts without an environment (or with V(default)), left alone.
      returned: success
      type: list
      elements: str
      sample: [legacy-cluster]
    source_namespaces:
      description:
        - The namespaces images are promoted from (the build namespaces, C(builders), of every consumer),
          sorted; the registry-cluster role grants the promoter read access to their images there and nowhere
          else.
      returned: success
      type: list
      elements: str
      sample: [builds]
summary:
  description: Short lines telling which cluster serves which environment.
  returned: success
  type: list
  elements: str
  sample:
    - registry cluster registry-cluster (kubeconfig ~/.kube/config context registry) hosts test, prod
    - "test: registry test-registry.apps.registry.example.com in namespace test, consumers: test-east"
    - "left alone (no environment): legacy-cluster"
clusters:
  description:
    - What each managed cluster answered, by inventory host name.
    - Empty when O(check_reachable=false).
  returned: always
  type: dict
  sample:
    registry-cluster:
      reachable: true
      server: https://api.registry.example.com:6443
      version: v1.31.4
      user: system:serviceaccount:registry-admin:automation
left_out:
  description:
    - The consumer clusters left out because they did not answer, by inventory host name, each with
      why (the cluster, the variable and the error, like the problem that O(unreachable_consumers=fail)
      would have failed with).
    - Empty unless O(unreachable_consumers=leave_out).
  returned: success
  type: dict
  sample:
    uat: "uat: segmented_registry_k8s_auth: cannot reach the cluster at https://api.uat.example.com:6443
      (credentials from kubeconfig ~/.kube/config context uat): GET https://api.uat.example.com:6443/version failed: ...;
      check that the API server is up and that segmented_registry_k8s_auth points at it"
problems:
  description:
    - Every problem found, each naming the inventory host (or C(segmented_registry_environments[<i>])
      or C(inventory)), the field and what to do.
  returned: failure
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host, C(segmented_registry_environments[<i>] (<name>)) or C(inventory).
      type: str
      returned: failure
    field:
      description: The variable or key at fault.
      type: str
      returned: failure
    message:
      description: What is wrong and how to fix it.
      type: str
      returned: failure
    text:
      description: The three above in one line.
      type: str
      returned: failure
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.inventory import schema
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import TopologyError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.options import clusters_to_hosts
from ansible_collections.segmented.registry.plugins.module_utils.inventory.pushers import pusher_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.token_server import token_server_route_host_problems
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import (
    TOUCH_ALL,
    TOUCH_REGISTRY,
    build_topology,
)

try:
    from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import (
        UNREACHABLE_FAIL,
        UNREACHABLE_LEAVE_OUT,
        left_out_consumers,
        probe_all,
        unreachable_problems,
    )
    from ansible_collections.segmented.registry.plugins.module_utils.kube import (
        HAS_KUBERNETES,
        KUBERNETES_IMPORT_ERROR,
        auth_argument_spec,
    )
except ImportError:  # pragma: no cover - kubernetes.core's client layer missing its dependencies
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()


def argument_spec():
    return {
        "environments": schema.argument_spec(),
        "clusters": {
            "type": "list",
            "elements": "dict",
            "options": {
                "name": {"type": "str", "required": True},
                "role": {"type": "str", "choices": ["registry", "consumer"]},
                "environment": {"type": "raw"},
                "integrated_registry": {"type": "str"},
                "k8s_auth": {"type": "dict", "options": auth_argument_spec()},
                "credentials": {"type": "raw"},
            },
        },
        "check_reachable": {"type": "bool", "default": True},
        "touch": {"type": "str", "choices": [TOUCH_ALL, TOUCH_REGISTRY], "default": TOUCH_ALL},
        "unreachable_consumers": {"type": "str", "choices": [UNREACHABLE_FAIL, UNREACHABLE_LEAVE_OUT], "default": UNREACHABLE_FAIL},
        "timeout": {"type": "int", "default": 10},
        "pushers": {"type": "list", "elements": "str"},
        "token_server_namespace": {"type": "str", "no_log": False},
        "token_server_route_host": {"type": "str", "no_log": False},
        # checked by the action plugin, which has the inventory's variables; shape only here
        "role_variables": {
            "type": "list",
            "elements": "dict",
            "options": {
                "role": {"type": "str", "required": True},
                "clusters": {"type": "str", "required": True, "choices": ["registry", "consumers"]},
                "variables": {"type": "list", "elements": "str", "required": True},
            },
        },
    }


def fail(module, problems, **kwargs):
    """Fail with every problem (``msg`` lists them, ``problems`` holds them structured)."""
    with failing(module, **kwargs):
        raise TopologyError(problems)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)

    with failing(module, clusters={}):
        hosts = clusters_to_hosts(module.params["clusters"])
        topology = build_topology(module.params["environments"], hosts, touch=module.params["touch"])
    problems = pusher_problems(topology.registry.name, module.params["pushers"], module.params["token_server_namespace"])
    route_hosts = {name: environment.route_host for name, environment in topology.environments.items()}
    problems += token_server_route_host_problems(topology.registry.name, module.params["token_server_route_host"], route_hosts)
    if problems:
        fail(module, problems, clusters={})

    results, left_out = {}, {}
    if module.params["check_reachable"]:
        if not HAS_KUBERNETES:
            module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
        reached = topology.managed_clusters if module.params["touch"] == TOUCH_ALL else (topology.registry,)
        results = probe_all({cluster.name: cluster.auth.client_kwargs() for cluster in reached}, timeout=module.params["timeout"])
        problems, left_out = left_out_consumers(topology, unreachable_problems(topology, results), module.params["unreachable_consumers"])
        if problems:
            fail(module, problems, clusters=results)

    report = topology.to_dict()
    module.exit_json(
        changed=False,
        topology=report,
        summary=topology.summary(),
        clusters=results,
        left_out=left_out,
        ansible_facts={"segmented_registry_topology": report},
    )


if __name__ == "__main__":
    main()
