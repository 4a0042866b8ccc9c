#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: promote
short_description: Promote or demote one image tag and bring the environment registries in line, in one step
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Promotes or demotes one image stream tag of the registry cluster in one step - edits its approval list as
    M(segmented.registry.tag_environments) does, then reconciles that tag as M(segmented.registry.reconcile)
    does, so the image is copied by digest into (or removed from) the environment registries before the
    module returns.
notes:
  - I(state=present) adds the environments of I(environment) to the tag's approval list (promote);
    I(state=absent) removes them (demote).
  - One module process, one connection to the registry cluster, one short-lived registry token;
    the job an AWX promote or demote template runs.
  - In check mode the approval list is edited with a server-side dry run, and the reconcile step
    plans against the list as it would be stored, so the preview shows which digest would be copied
    or removed where, how many bytes at most, and what a policy would hold back.
  - Environments to add must be environments of the inventory (I(environments)) without C(state=absent);
    adding one with C(state=absent) is an error that says so. A name to remove may be one the inventory
    no longer has, or has with C(state=absent) (a retired environment the tag still carries).
attributes:
  check_mode:
    support: full
    details:
      - The edit is a server-side dry run; the reconcile step only plans (see description).
  diff_mode:
    support: full
    details:
      - The approval list before and after.
  idempotent:
    support: full
    details:
      - A second run finds the environment on the list and the image in place.
options:
  environment:
    description: The environments to add (promote) or remove (demote), for example V([uat]).
    type: list
    elements: str
    required: true
  state:
    description: V(present) promotes (adds), V(absent) demotes (removes).
    type: str
    choices: [present, absent]
    default: present
  reconcile:
    description: V(false) only edits the approval list (a later M(segmented.registry.reconcile) run copies).
    type: bool
    default: true
seealso:
  - module: segmented.registry.tag_environments
  - module: segmented.registry.reconcile
extends_documentation_fragment:
  - segmented.registry.attributes
  - segmented.registry.tag
  - segmented.registry.tag.edit
  - segmented.registry.promotion
  - segmented.registry.query
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
"""

EXAMPLES = r"""
- name: Promote app:v1.2.3 to uat, copying it into the uat registry
  segmented.registry.promote:
    namespace: myproject
    name: app:v1.2.3
    environment: [uat]
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]

- name: Demote it from prod, removing it from the prod registry
  segmented.registry.promote:
    namespace: myproject
    name: app:v1.2.3
    environment: [prod]
    state: absent
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]
"""

RETURN = r"""
query_results:
  description: The answer of each I(query) expression, by name.
  returned: when I(query) is given
  type: dict
  sample: {drifted: ["myproject/app:v2"]}
changed:
  description:
    - Whether the approval list or a registry changed (or would, in check mode).
    - True also when the module fails after the approval list was written (a copy or removal
      failed, the registry token could not be had); its message then starts with the edit.
  returned: always
  type: bool
environments_before:
  description:
    - The tag's approval list (the environments it is approved for) before the edit; C(["default"]) when it had none.
    - Here and in I(environments_after) and the diff, C(environments) means a tag's approved environments, not the
      inventory's environment definitions that the option I(environments) takes.
  returned: success
  type: list
  elements: str
environments_after:
  description: The tag's approval list after the edit (as it would be, in check mode).
  returned: success
  type: list
  elements: str
digest:
  description: The tag's current image, or null when nothing was pushed yet.
  returned: success
  type: str
attempts:
  description: How many read-compute-write rounds the edit took.
  returned: success
  type: int
namespace:
  description: The project of the image stream, as checked.
  type: str
  returned: success
stream:
  description: The image stream, as checked.
  type: str
  returned: success
tag:
  description: The tag, as checked.
  type: str
  returned: success
annotation_key:
  description: Where the approval list is kept.
  type: str
  returned: success
annotation_value:
  description: The approval list as stored after the edit (null once the tag is back in C(default)).
  type: str
  returned: success
reconcile:
  description:
    - What the reconcile step of this tag did (or would do, in check mode), with the same fields
      as M(segmented.registry.reconcile) returns (C(copies), C(removals), C(gated), C(failures),
      C(bytes_moved), C(bytes_planned), C(audit), C(table), C(stats), C(history_written), ...).
  returned: when I(reconcile=true)
  type: dict
failures:
  description: Every tag the reconcile step could not copy or remove, with the reason.
  returned: always
  type: list
  elements: dict
diff:
  description: The list before and after.
  returned: in diff mode
  type: dict
"""

import time

#: The module's clock starts here, before its imports (kubernetes.core and the kubernetes client
#: beneath it take about a third of a second): stats.seconds.total is everything this module costs.
STARTED = time.monotonic()

from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import (
    TAG_MUTUALLY_EXCLUSIVE,
    TAG_REQUIRED_TOGETHER,
    TagEdit,
    edit_argument_spec,
    tag_argument_spec,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule
from ansible_collections.segmented.registry.plugins.module_utils.promotion import job
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope


def argument_spec():
    spec = job.argument_spec()
    spec.update(tag_argument_spec())
    spec.update(edit_argument_spec())
    spec.update(
        environment={"type": "list", "elements": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        reconcile={"type": "bool", "default": True},
    )
    return spec


def announce_the_edit(module, result):
    """Once the approval list is written (or would be, in check mode), whatever fails after it
    (the registry token, a copy, a removal) fails with ``changed: true`` and a message that
    starts with the edit: the list stays as written, and the scheduled reconcile copies or
    removes what it says later."""
    edit = "{namespace}/{stream}:{tag}: the approval list {verb} ({before} -> {after})".format(
        verb="would change" if module.check_mode else "changed and stays so",
        before=",".join(result["environments_before"]),
        after=",".join(result["environments_after"]),
        **result,
    )
    fields = {key: value for key, value in result.items() if key != "failures"}
    fail_json = module.fail_json

    def fail_after_the_edit(msg, **kwargs):
        reported = dict(fields)
        reported.update(kwargs, changed=True)
        fail_json(msg=f"{edit}; then the registries could not follow: {msg}", **reported)

    module.fail_json = fail_after_the_edit


def main():
    module = AnsibleK8SModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=job.MODULE_KWARGS["mutually_exclusive"] + TAG_MUTUALLY_EXCLUSIVE,
        required_one_of=job.MODULE_KWARGS["required_one_of"],
        required_together=TAG_REQUIRED_TOGETHER,
    )
    params = module.params
    run = job.Job(module, started=STARTED)
    promote = params["state"] == "present"
    with failing(module):
        edit = TagEdit(
            params["namespace"],
            params["name"],
            params["stream"],
            params["tag"],
            add=params["environment"] if promote else None,
            remove=None if promote else params["environment"],
            known=list(run.targets),
            absent=run.absent,
            annotation_key=params["annotation_key"],
            max_attempts=params["max_attempts"],
        )
        if params["reconcile"]:
            run.check_source()
        outcome = edit.apply(run.connect())
    for warning in edit.warnings(outcome):
        module.warn(warning)
    result = edit.result(outcome, diff=module._diff)
    result["failures"] = []
    if result["changed"]:
        announce_the_edit(module, result)
    if params["reconcile"]:
        # The ImageStream as stored (or, in check mode, as the dry run says it would be stored):
        # the reconcile step plans against the edited list.
        entries, annotations = job.approvals_of([outcome["imagestream"]], edit.annotation_key)
        scope = Scope(namespaces=[edit.namespace], stream=edit.stream, tag=edit.tag)
        reconciled = run.run(entries, annotations, scope, module.check_mode)
        result["reconcile"] = reconciled
        result["failures"] = reconciled["failures"]
        result["changed"] = result["changed"] or reconciled["changed"]
    run.finish(result)


if __name__ == "__main__":
    main()
