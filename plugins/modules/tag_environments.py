#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: tag_environments
short_description: Promote or demote an image tag by editing its approval list
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Edits the list of lifecycle environments (for example V(test), V(uat), V(prod)) that one image stream
    tag on the registry cluster is approved for - adds an environment (promote), removes one (demote), or
    sets the exact list.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.tag
  - segmented.registry.tag.edit
  - segmented.registry.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; the update is sent as a server-side dry run, so permissions and
        validation are checked, and the result says what would change.
  diff_mode:
    support: full
    details:
      - The environment list before and after.
  idempotent:
    support: full
options:
  add:
    description:
      - Environments to add to the tag's list (promote), for example V([uat]).
      - Each must be a DNS-1123 label, not C(default), and one of I(known_environments) when that is given.
    type: list
    elements: str
  remove:
    description:
      - Environments to remove from the tag's list (demote). Removing an environment the tag does
        not have changes nothing. Removing the last one sends the tag back to C(default).
      - With I(known_environments), a name that is neither known nor on the tag is an error.
    type: list
    elements: str
  approved:
    description:
      - The exact approval list, the environments the tag is approved for. C([]) removes the annotation
        (the tag is back in C(default)).
      - Mutually exclusive with I(add) and I(remove).
      - This is also how to repair an annotation that cannot be read. The exact list replaces the
        unreadable value (with a warning that shows it), where I(add) and I(remove) fail.
      - The alias I(environments) is deprecated and will be removed in version 2.0.0 of this collection; in
        M(segmented.registry.promote) and M(segmented.registry.reconcile), I(environments) is the inventory's
        environment definitions (C(segmented_registry_environments)), not an approval list.
    type: list
    elements: str
    aliases: [environments]
  known_environments:
    description:
      - The environments that exist (playbooks pass the names of the inventory's
        C(segmented_registry_environments)). Adding or setting an environment outside this list
        is an error that lists the known ones.
      - When not given, any valid name is accepted.
      - Leave out the environments with C(state=absent), which are no promotion target (give them in
        I(absent_environments)).
    type: list
    elements: str
  absent_environments:
    description:
      - The inventory's environments with C(state=absent) (their registries are removed; playbooks pass
        the names whose C(state) is V(absent) in the fact C(segmented_registry_topology.environments)).
      - Adding one, or setting a list with one, is an error that says it is C(state=absent); removing
        one from a tag that still carries it is allowed.
    type: list
    elements: str
  annotation_key:
    description:
      - The annotation that holds the list.
      - The default is this collection's C(segmented.registry/environments). The design
        proposal's plain C(environment) key is also supported; any valid annotation key is accepted.
      - Use the same key everywhere (the info module and the promotion jobs read it).
    type: str
    default: segmented.registry/environments
notes:
  - The list is an annotation of the ImageStreamTag. OpenShift stores a tag's annotations only
    in C(ImageStream.spec.tags[<tag>].annotations), so the module reads the
    C(image.openshift.io/v1) ImageStream and writes a JSON patch that changes only that one
    annotation of that one tag; every other tag, field and annotation is kept.
  - A tag that was only pushed (it has a C(status.tags) entry and no spec tag) gets a spec tag
    with its name, the annotation and C(referencePolicy.type=Source), without C(from), which is
    what OpenShift itself requires to annotate it.
  - The stored value has one canonical form, the environment names sorted and joined by commas
    without spaces (C(prod,test,uat)), easy to read and to edit by hand. Reading tolerates what
    people write by hand (spaces, newlines, any order, duplicates, a JSON or YAML list such as
    C(["test", "uat"]) or C([test, uat])). A value that cannot be read (C(test;uat), C(Test),
    C(te st)) is an error that shows the value; it is never taken as empty. The annotation is
    rewritten only when the list changes.
  - The C(default) environment. A tag without the annotation lives only in C(default), the
    integrated registry of the registry cluster, where builds push; it is reported as
    C(["default"]). The stored list never contains C(default), and giving C(default) in I(add),
    I(remove) or I(approved) is an error. A tag leaves C(default) when it gets its first
    environment; when its last environment is removed the annotation is deleted and the tag is
    back in C(default) only.
  - Safe under concurrency. The patch tests, on the API server, that the tag's entry and the
    annotation still hold what was read, and carries no resourceVersion, so pushes and imports (to
    any tag) and edits of other tags of the stream never make it retry. When another edit of the
    same tag lands between the read and the write, the test fails and the module reads the
    ImageStream again, recomputes the list and retries, waiting in between with exponential
    back-off and jitter (0.25 seconds at first, or the refused attempt's own duration when the API
    server is slower, doubling up to 8 seconds). Such a lost race does not count against
    I(max_attempts), because the tag moved forward; N promotions of one tag racing each lose at most
    N - 1 times, and all land.
  - The registry itself never reads the annotation. What an environment may pull is enforced by
    what is copied into its registry, by RBAC and by the clusters' allowed registries.
  - Needs C(get) and C(patch) on C(imagestreams) (C(image.openshift.io)) in the namespace, for
    example the C(registry-editor) role.
  - The auth options fall back to the C(K8S_AUTH_*) environment variables, which AWX's
    OpenShift or Kubernetes API Bearer Token credential sets.
  - C(oc tag) to an existing tag replaces the destination's annotations, environment list included.
seealso:
  - module: segmented.registry.tag_environments_info
"""

EXAMPLES = r"""
- name: Promote app:v1.2.3 to uat
  segmented.registry.tag_environments:
    namespace: myproject
    name: app:v1.2.3
    add: [uat]
    known_environments: [test, uat, prod]

- name: Demote it from prod (with the auth AWX injects as K8S_AUTH_*)
  segmented.registry.tag_environments:
    namespace: myproject
    stream: app
    tag: v1.2.3
    remove: [prod]

- name: Set the exact list, on the design proposal's annotation key
  segmented.registry.tag_environments:
    namespace: myproject
    name: app:v1.2.3
    approved: [test, uat]
    annotation_key: environment

- name: Send a tag back to default (no environment at all)
  segmented.registry.tag_environments:
    namespace: myproject
    name: app:v1.2.3
    approved: []
"""

RETURN = r"""
changed:
  description: Whether the environment list changed (or would change, in check mode).
  returned: always
  type: bool
environments_before:
  description:
    - The tag's approval list (the environments it is approved for) before the edit; C(["default"]) when the tag had none.
    - In this key, in I(environments_after) and in the diff, C(environments) means the environments a tag is approved
      for, not the inventory's environment definitions (the I(environments) option of M(segmented.registry.promote)
      and M(segmented.registry.reconcile)).
    - Null when the old value could not be read and I(approved) replaced it (a warning shows the old value).
  returned: success
  type: list
  elements: str
  sample: [test]
environments_after:
  description: The tag's approval list after the edit (what it would be, in check mode); C(["default"]) when none is left.
  returned: success
  type: list
  elements: str
  sample: [test, uat]
digest:
  description: The tag's current image (C(status.tags[<tag>].items[0].image)), or null when nothing was pushed or imported yet.
  returned: success
  type: str
  sample: sha256:4a5f1b0a0c3d2e...
attempts:
  description: How many read-compute-write rounds it took (more than 1 when the ImageStream changed meanwhile).
  returned: success
  type: int
  sample: 1
namespace:
  description: Namespace of the image stream.
  returned: success
  type: str
stream:
  description: Name of the image stream.
  returned: success
  type: str
tag:
  description: Name of the tag.
  returned: success
  type: str
annotation_key:
  description: The annotation that holds the list.
  returned: success
  type: str
annotation_value:
  description: The annotation's value after the edit; null when the annotation is absent (the tag is in C(default)).
  returned: success
  type: str
  sample: test,uat
diff:
  description: The list before and after.
  returned: in diff mode
  type: dict
  contains:
    before:
      description: The approval list before, under the key C(environments).
      type: dict
      sample: {environments: [test]}
    after:
      description: The approval list after, under the key C(environments).
      type: dict
      sample: {environments: [test, uat]}
"""

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import DEFAULT_ANNOTATION_KEY
from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import (
    TAG_MUTUALLY_EXCLUSIVE,
    TAG_REQUIRED_TOGETHER,
    TagEdit,
    edit_argument_spec,
    tag_argument_spec,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule, auth_argument_spec


def argument_spec():
    spec = auth_argument_spec()
    spec.update(tag_argument_spec())
    spec.update(edit_argument_spec())
    spec.update(
        add={"type": "list", "elements": "str"},
        remove={"type": "list", "elements": "str"},
        approved={
            "type": "list",
            "elements": "str",
            "aliases": ["environments"],
            "deprecated_aliases": [{"name": "environments", "version": "2.0.0", "collection_name": "segmented.registry"}],
        },
        known_environments={"type": "list", "elements": "str"},
        absent_environments={"type": "list", "elements": "str"},
        annotation_key={"type": "str", "default": DEFAULT_ANNOTATION_KEY, "no_log": False},
    )
    return spec


def main():
    module = AnsibleK8SModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=TAG_MUTUALLY_EXCLUSIVE,
        required_together=TAG_REQUIRED_TOGETHER,
    )
    params = module.params
    with failing(module):
        edit = TagEdit(
            params["namespace"],
            params["name"],
            params["stream"],
            params["tag"],
            add=params["add"],
            remove=params["remove"],
            exact=params["approved"],
            known=params["known_environments"],
            annotation_key=params["annotation_key"],
            max_attempts=params["max_attempts"],
            absent=params["absent_environments"],
        )
        outcome = edit.apply(ImageStreamAPI.connect(module))
    for warning in edit.warnings(outcome):
        module.warn(warning)
    module.exit_json(**edit.result(outcome, diff=module._diff))


if __name__ == "__main__":
    main()
