#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: image_streams
short_description: ImageStream tags on a consumer cluster for the images its environment holds
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Writes, on one consumer cluster, an ImageStream tag for each approved tag of its environment in I(namespaces).
notes:
  - The tags are C(image.openshift.io/v1) ImageStream tags in the same namespace as on the registry
    cluster, so that C(oc get istag), C(oc describe is) and image-change triggers there see the
    promoted image.
  - Each tag is C(from) the logical registry name by digest
    (C(DockerImage <registry>/<namespace>/<stream>@<digest>)), with C(referencePolicy.type=Local)
    and C(importPolicy.scheduled) as I(scheduled_import) says. The consumer's mirror sets send that
    name to its environment's registry.
  - "One call reconciles every namespace of the cluster (one list call per namespace): tags added,
    moved to a new digest, and removed when no longer approved (a demotion). An ImageStream left
    without tags is deleted."
  - "Only what this collection wrote is changed: the ImageStreams it creates carry the label
    C(app.kubernetes.io/managed-by=segmented.registry), each tag it writes the same key as an
    annotation. An ImageStream of the administrator's with the same name is left alone and
    reported in RV(conflicts) (and as a warning); tags someone else added to one of this
    collection's ImageStreams stay."
  - O(state=absent) removes this collection's tags (and its ImageStreams) from I(namespaces).
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
      - This collection's tags per namespace and stream (C(from) names), before and after.
  idempotent:
    support: full
    details:
      - A second run with the same arguments finds every tag in place and writes nothing.
options:
  state:
    description:
      - C(present) writes the tags of I(tags); C(absent) removes every tag this collection wrote in I(namespaces).
    type: str
    choices: [present, absent]
    default: present
  namespaces:
    description:
      - The namespaces of the consumer cluster that get ImageStreams (each must exist there when a
        tag goes into it). Approved tags of other namespaces are not written; what this collection
        wrote in a namespace no longer listed is not touched (run once with O(state=absent) first).
    type: list
    elements: str
    required: true
  tags:
    description:
      - The approved tags of the cluster's environment, as M(segmented.registry.tag_environments_info)
        lists them with I(environment) set (the keys below; other keys are ignored). A tag without
        a digest (no image yet) is skipped.
    type: list
    elements: dict
    default: []
  registry:
    description:
      - The logical registry name (C(host[:port])), the same as the consumer cluster role's
        C(consumer_cluster_logical_registry).
    type: str
    required: true
  scheduled_import:
    description:
      - Set C(importPolicy.scheduled) on each tag, so that OpenShift's image import controller
        re-imports its metadata periodically. The digest does not change (the tag names the image by digest).
    type: bool
    default: false
seealso:
  - module: segmented.registry.tag_environments_info
  - module: segmented.registry.cluster_image_config
"""

EXAMPLES = r"""
- name: What prod holds, read once from the registry cluster
  segmented.registry.tag_environments_info:
    context: registry
    namespace: [myproject]
    environment: prod
  register: prod_tags

- name: ImageStream tags for it on the prod cluster
  segmented.registry.image_streams:
    context: prod
    namespaces: [myproject]
    tags: "{{ prod_tags.tags }}"
    registry: registry.apps.example.com

- name: Take them out again
  segmented.registry.image_streams:
    context: prod
    namespaces: [myproject]
    registry: registry.apps.example.com
    state: absent
"""

RETURN = r"""
actions:
  description: The tags added, updated or removed (or, in check mode, that would be).
  returned: success
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the ImageStream.
      type: str
    stream:
      description: Name of the ImageStream.
      type: str
    tag:
      description: Name of the tag.
      type: str
    action:
      description: C(add), C(update) or C(remove).
      type: str
    from:
      description: The tag's C(from.name), the logical registry name by digest (for C(remove), the one removed).
      type: str
  sample:
    - namespace: myproject
      stream: app
      tag: v1
      action: add
      from: registry.apps.example.com/myproject/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
conflicts:
  description: ImageStreams of the administrator's that approved tags would go into; nothing was written to them.
  returned: success
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the ImageStream.
      type: str
    stream:
      description: Name of the ImageStream.
      type: str
    tags:
      description: The approved tags that were not written.
      type: list
      elements: str
    message:
      description: What was found and the fix.
      type: str
namespaces:
  description: The namespaces reconciled.
  returned: success
  type: list
  elements: str
changed_objects:
  description: The ImageStreams written (or, in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: [ImageStream myproject/app]
"""

from ansible_collections.segmented.registry.plugins.module_utils.consumer.image_stream_sync import ImageStreamTags
from ansible_collections.segmented.registry.plugins.module_utils.consumer.module import run
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule, auth_argument_spec


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        namespaces={"type": "list", "elements": "str", "required": True},
        tags={"type": "list", "elements": "dict", "default": []},
        registry={"type": "str", "required": True},
        scheduled_import={"type": "bool", "default": False},
    )
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    run(module, lambda: ImageStreamTags(params["tags"], params["namespaces"], params["registry"], params["scheduled_import"]))


if __name__ == "__main__":
    main()
