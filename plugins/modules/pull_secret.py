#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: pull_secret
short_description: Merge registry credentials into a cluster's global pull secret
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Merges C(auths) entries into a cluster's global pull secret C(openshift-config/pull-secret) (or another
    C(kubernetes.io/dockerconfigjson) Secret), taken from a Secret the credentials role wrote (I(from_secret))
    or given directly (I(auths)).
notes:
  - Nodes that pull through an C(ImageDigestMirrorSet) or C(ImageTagMirrorSet) authenticate to the
    mirror with the cluster's global pull secret; a namespace's pull secrets are not used for mirrors
    (unless a C(CRIOCredentialProviderConfig) lists the source registry).
  - Every other entry stays as it is. An entry for the same registry that this module did not
    write is an error, and nothing is written. Which entries are its own is kept on the Secret
    (annotation C(segmented.registry/added), registry names only); entries it wrote earlier and that
    are no longer given are removed, and O(state=absent) removes all of them. Before its first entry
    goes in, the Secret's value is kept byte for byte in C(<name>-segmented-registry-original) beside
    it; when the last entry goes out, that value is written back, so the Secret is exactly as it was.
  - The merged value is written only when it changes; credentials never appear in the result, the
    diff or an error message.
  - Nodes do not read the Secret itself; on OpenShift the machine-config operator writes it to every
    node (C(/var/lib/kubelet/config.json); its default node disruption policy applies that file without a
    drain or reboot), which takes seconds to minutes. With O(wait=true) (the default) the module returns only once every
    C(MachineConfigPool) reports that change rolled out (C(Updated=True) and C(updatedMachineCount)
    equal to C(machineCount) for an C(observedGeneration) newer than before the change), so a credential
    the nodes held before can be revoked after it. A cluster without the C(MachineConfigPool) API is not
    waited for (a warning says so).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.attributes
attributes:
  check_mode:
    support: full
    details:
      - The write is sent as a server-side dry run; nothing is waited for.
  diff_mode:
    support: full
    details:
      - The registries that have an entry, before and after (never a credential).
  idempotent:
    support: full
    details:
      - The Secret is written only when an entry changes; only a change waits for the nodes.
options:
  state:
    description: C(present) merges; C(absent) removes the entries this module wrote, and nothing else.
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace of the Secret to merge into.
    type: str
    default: openshift-config
  name:
    description: Name of the Secret to merge into.
    type: str
    default: pull-secret
  from_secret:
    description:
      - C(namespace/name) of a C(kubernetes.io/dockerconfigjson) Secret on the same cluster whose C(auths)
        entries are merged (the credentials role writes C(openshift-config/segmented-registry-pull)).
    type: str
  auths:
    description:
      - "The C(auths) entries to merge, registry to entry (C({auth: base64(user:password)}))."
    type: dict
  wait:
    description:
      - After a change of the Secret's content, wait until every C(MachineConfigPool) of the cluster has
        rolled it out to its nodes; fail naming the pools and their state after O(wait_timeout).
      - Only meaningful for the global pull secret (O(namespace)/O(name) C(openshift-config/pull-secret)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the nodes (the role's C(consumer_cluster_node_rollout_timeout)).
    type: int
    default: 900
"""

EXAMPLES = r"""
- name: Nodes of this cluster pull from its environment registry with the credential the credentials role wrote
  segmented.registry.pull_secret:
    context: prod
    from_secret: openshift-config/segmented-registry-pull
    wait_timeout: 1800

- name: Remove the entries again
  segmented.registry.pull_secret:
    context: prod
    state: absent
"""

RETURN = r"""
registries:
  description: The registries this module keeps an entry for, after the run.
  returned: success
  type: list
  elements: str
  sample: [prod-registry.apps.registry.example.com]
changed_registries:
  description: The registries whose entry was added, changed or removed.
  returned: success
  type: list
  elements: str
node_rollout:
  description: Each MachineConfigPool's state once the nodes had the change (no credential).
  returned: when the content changed, O(wait=true), not in check mode, and the cluster has MachineConfigPools
  type: list
  elements: str
  sample:
    - "worker: Updated=True, Updating=False, 3/3 machines updated, observedGeneration 7 of generation 7
      (before the change: 6), configuration rendered-worker-5f0c, wanted rendered-worker-5f0c"
"""

from ansible_collections.segmented.registry.plugins.module_utils.consumer.module import run
from ansible_collections.segmented.registry.plugins.module_utils.consumer.node_rollout import RolledOutEdit
from ansible_collections.segmented.registry.plugins.module_utils.consumer.pull_secret_edit import PullSecretEdit
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule, auth_argument_spec


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        namespace={"type": "str", "default": "openshift-config"},
        name={"type": "str", "default": "pull-secret"},
        from_secret={"type": "str", "no_log": False},
        auths={"type": "dict", "no_log": True},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 900},
    )
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True, mutually_exclusive=[("from_secret", "auths")])
    params = module.params
    run(
        module,
        lambda: RolledOutEdit(
            PullSecretEdit(params["namespace"], params["name"], params["from_secret"], params["auths"]),
            params["wait"] and not module.check_mode,
            params["wait_timeout"],
        ),
    )


if __name__ == "__main__":
    main()
