#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: cluster_image_config
short_description: Merge registries into what a cluster's nodes may pull from and whom they trust
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Merges registries into the C(config.openshift.io/v1) C(Image) named C(cluster), so that every node of
    the cluster pulls from the registries in I(allow), never from those in I(deny), and trusts the CAs in I(trusted_ca).
notes:
  - OpenShift's machine-config operator renders the C(Image) into every node's C(/etc/containers/policy.json)
    and C(registries.conf). Optionally the module also lists registries in the cluster-wide
    C(config.openshift.io/v1alpha1) C(CRIOCredentialProviderConfig) (I(credential_provider_registries)).
  - "It merges: the administrator's entries stay where they are. With
    C(spec.registrySources.allowedRegistries) (the default reject policy), the I(allow) registries
    are appended. A cluster with neither C(allowedRegistries) nor C(blockedRegistries) would lose
    every other registry the moment a first entry is added, so it gets I(platform_registries) too
    (the integrated registry's service, the release and the operator registries). With
    C(blockedRegistries) the I(deny) registries are blocked instead (OpenShift refuses both lists)."
  - An entry of the administrator that allows a registry of I(deny) (a wildcard such as
    C(*.apps.registry.example.com)), or blocks one of I(allow), is an error and nothing is written.
  - "With I(import_registries), C(spec.allowedRegistriesForImport) (where ImageStreams may import
    from) allows those registries too: added when the administrator's list is not empty and no
    entry covers them yet. An empty or unset list allows every registry already, and is left so
    (one entry would forbid every other registry)."
  - The CA certificates go into the ConfigMap in C(openshift-config) that C(spec.additionalTrustedCA)
    names, one key per registry (C(host), C(host..port)); a cluster without one gets
    I(trusted_ca_configmap), made and labelled by this module.
  - What the module added (list entries, ConfigMap keys, the values it replaced, the ConfigMap name
    it set) is kept on the cluster, in the annotation C(segmented.registry/added) of each object it
    edited. O(state=absent) takes out exactly that, so the objects are as they were before the
    first run, and a run with other I(allow) or I(deny) removes what is no longer wanted.
  - Every write carries the resourceVersion it read; an edit that lands in between makes the module
    read again and recompute.
  - A change of these objects makes the machine-config operator roll the new files out to every
    node (a drain and reboot per node for registry sources on most OpenShift releases); run it in a
    maintenance window, and change it rarely.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.attributes
attributes:
  check_mode:
    support: full
    details:
      - Writes are sent as server-side dry runs; the result and diff say what would change.
  diff_mode:
    support: full
    details:
      - The Image's C(spec), the CA ConfigMap's keys (certificates are public) and C(matchImages), before and after.
  idempotent:
    support: full
    details:
      - A second run with the same arguments finds every entry in place and writes nothing.
options:
  state:
    description:
      - C(present) merges; C(absent) removes what this module added earlier, and nothing else.
    type: str
    choices: [present, absent]
    default: present
  allow:
    description:
      - Registry scopes (C(host[:port][/namespace...]) or C(*.domain)) the nodes must be able to pull from,
        for example V([prod-registry.apps.registry.example.com]).
    type: list
    elements: str
    default: []
  deny:
    description:
      - Registry scopes the nodes must never pull from (the other environments' registries), for example
        V([test-registry.apps.registry.example.com]).
    type: list
    elements: str
    default: []
  platform_registries:
    description:
      - Allowed together with I(allow) when the cluster has no registry sources yet, so that the
        platform keeps pulling its own images. Add the registries your cluster's workloads already
        pull from.
    type: list
    elements: str
    default:
      - image-registry.openshift-image-registry.svc:5000
      - image-registry.openshift-image-registry.svc.cluster.local:5000
      - quay.io/openshift-release-dev
      - registry.redhat.io
      - registry.access.redhat.com
      - registry.connect.redhat.com
  trusted_ca:
    description:
      - CA certificates the nodes trust for a registry.
    type: list
    elements: dict
    default: []
    suboptions:
      registry:
        description: The registry's C(host[:port]), for example V(prod-registry.apps.registry.example.com).
        type: str
        required: true
      ca:
        description: PEM certificate(s).
        type: str
        required: true
  trusted_ca_configmap:
    description:
      - Name of the ConfigMap in C(openshift-config) made when the Image names none.
    type: str
    default: segmented-registry-trusted-ca
  credential_provider_registries:
    description:
      - Registry scopes to list in the C(CRIOCredentialProviderConfig) named C(cluster) (OpenShift
        4.21 and later with the C(TechPreviewNoUpgrade) feature set until it is GA), so that nodes
        use a pod's namespace pull secrets for pulls through mirror sets of these registries.
      - Omitted, the object is not touched (with O(state=absent), what was added earlier is removed).
    type: list
    elements: str
  import_registries:
    description:
      - Registries (C(host[:port])) that ImageStreams on the cluster import from, such as the
        logical registry name that M(segmented.registry.image_streams) writes tags from, to allow in
        C(spec.allowedRegistriesForImport) (as C(insecure=false) entries).
      - Empty, what was added earlier is taken out.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The prod cluster pulls from the prod registry and never from test or uat
  segmented.registry.cluster_image_config:
    context: prod
    allow: [registry.apps.example.com, prod-registry.apps.registry.example.com]
    deny: [test-registry.apps.registry.example.com, uat-registry.apps.registry.example.com]
    trusted_ca:
      - registry: prod-registry.apps.registry.example.com
        ca: "{{ lookup('file', 'registry-ca.crt') }}"

- name: Take it all out again
  segmented.registry.cluster_image_config:
    context: prod
    state: absent
"""

RETURN = r"""
registry_sources:
  description: C(spec.registrySources) of the Image C(cluster) after the run.
  returned: success
  type: dict
  sample: {allowedRegistries: [registry.redhat.io, prod-registry.apps.registry.example.com]}
trusted_ca_configmap:
  description: The ConfigMap in C(openshift-config) holding the CAs, or null.
  returned: success
  type: str
trusted_ca_keys:
  description: The keys this module keeps in it.
  returned: success
  type: list
  elements: str
match_images:
  description: C(spec.matchImages) of the C(CRIOCredentialProviderConfig) after the run, or null when not touched.
  returned: success
  type: list
  elements: str
import_registries:
  description: C(spec.allowedRegistriesForImport) of the Image C(cluster) after the run (empty when unset).
  returned: success
  type: list
  elements: dict
  sample: [{domainName: registry.apps.example.com, insecure: false}]
changed_objects:
  description: The objects written (or, in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: [ConfigMap openshift-config/segmented-registry-trusted-ca, Image cluster]
"""

from ansible_collections.segmented.registry.plugins.module_utils.consumer.module import run
from ansible_collections.segmented.registry.plugins.module_utils.consumer.node_config import NodeImageConfig
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule, auth_argument_spec


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        allow={"type": "list", "elements": "str", "default": []},
        deny={"type": "list", "elements": "str", "default": []},
        platform_registries={"type": "list", "elements": "str", "default": list(NodeImageConfig.PLATFORM_REGISTRIES)},
        trusted_ca={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {"registry": {"type": "str", "required": True}, "ca": {"type": "str", "required": True}},
        },
        trusted_ca_configmap={"type": "str", "default": "segmented-registry-trusted-ca"},
        credential_provider_registries={"type": "list", "elements": "str"},
        import_registries={"type": "list", "elements": "str", "default": []},
    )
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    run(
        module,
        lambda: NodeImageConfig(
            params["allow"],
            params["deny"],
            params["platform_registries"],
            params["trusted_ca"],
            params["trusted_ca_configmap"],
            params["credential_provider_registries"],
            params["import_registries"],
        ),
    )


if __name__ == "__main__":
    main()
