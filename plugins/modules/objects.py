#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The documentation of the action plugin plugins/action/objects.py, which does all the work (it runs
# kubernetes.core.k8s): this file has no code, as ansible.utils' fact_diff.

DOCUMENTATION = r"""
module: objects
short_description: Apply or remove a list of Kubernetes objects in one run, each change shown under --diff
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Runs M(kubernetes.core.k8s) once for a list of objects and returns each object's change in RV(diff), headed with its kind, namespace and name.
notes:
  - Given a list, M(kubernetes.core.k8s) keeps each object's diff inside RV(result.results), where no callback prints it;
    this action lifts them into RV(diff), one entry per object that changed, in the order of O(definition), so that
    C(--diff) shows every change of a single task (instead of one task per object).
  - An object created or removed is named in RV(diff) (C(Kind/namespace/name) on the side where it exists), never shown
    in full. An object changed in place is shown as M(kubernetes.core.k8s) shows it (its changed fields);
    O(hidden_fields) hides fields, and a task with C(no_log) hides the whole result.
  - A Secret's values never appear in the result (which C(-vvv) prints and an AWX job keeps in its events) - not in
    RV(diff), not in the objects answered (RV(result)), not in M(kubernetes.core.k8s)'s own diffs, not in the
    C(kubectl.kubernetes.io/last-applied-configuration) annotation, not in the definition echoed in C(invocation). Each
    value of its C(data) and C(stringData) reads C((hidden)), its key kept; a key changed in place reads
    C((hidden, changed)) on the side after, as C(kubectl diff) shows it.
  - The options are those of M(kubernetes.core.k8s) it passes on; any other is refused, by name, before anything runs.
  - The action is a member of the C(segmented.registry.cluster) action group, and the C(module_defaults) of
    M(kubernetes.core.k8s) (C(group/kubernetes.core.k8s) and C(kubernetes.core.k8s)) reach the run too; the task's own
    options win.
  - A kubeconfig path is looked for, and decrypted when vaulted, as M(kubernetes.core.k8s)'s action plugin does.
  - An empty O(definition) changes nothing and does not reach the cluster.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.attributes
  - segmented.registry.attributes.ACTION
attributes:
  check_mode:
    support: full
    details:
      - M(kubernetes.core.k8s)'s check mode (server-side dry runs); RV(diff) says what would change.
  diff_mode:
    support: full
    details:
      - One entry per object that changed, headed C(Kind/namespace/name); an object created or removed is named only.
  idempotent:
    support: full
    details:
      - As M(kubernetes.core.k8s) - a second run with the same objects changes nothing.
options:
  definition:
    description:
      - The objects - a list of object definitions, one definition, or a YAML string of one or more documents; a
        C(*List) kind stands for its items.
      - Passed to M(kubernetes.core.k8s) as its C(resource_definition).
    type: raw
    required: true
  state:
    description:
      - V(present) creates or updates each object, V(absent) deletes it, V(patched) patches each one that exists.
    type: str
    choices: [present, absent, patched]
    default: present
  apply:
    description:
      - Compare each object with the definition last applied (C(kubectl apply)), ignoring what the server fills in.
    type: bool
    default: false
  server_side_apply:
    description:
      - With O(apply=true), apply on the server, with this field manager.
    type: dict
    suboptions:
      field_manager:
        description:
          - Name of the manager that owns the fields applied.
        type: str
        required: true
      force_conflicts:
        description:
          - Take over fields another manager owns.
        type: bool
        default: false
  force:
    description:
      - With O(state=present), replace each existing object instead of patching it.
    type: bool
    default: false
  wait:
    description:
      - Wait for each object to reach the state asked for (see M(kubernetes.core.k8s)'s C(wait)).
    type: bool
    default: false
  wait_sleep:
    description:
      - Seconds between checks, with O(wait=true).
    type: int
    default: 5
  wait_timeout:
    description:
      - Seconds to wait for each object, with O(wait=true).
    type: int
    default: 120
  wait_condition:
    description:
      - A status condition to wait for, with O(wait=true).
    type: dict
    suboptions:
      type:
        description:
          - The type of the condition, for example C(Ready).
        type: str
      status:
        description:
          - The status of the condition.
        type: str
        choices: ["True", "False", "Unknown"]
        default: "True"
      reason:
        description:
          - The reason of the condition.
        type: str
  hidden_fields:
    description:
      - Fields left out of the result and the diff, for example V(metadata.managedFields).
    type: list
    elements: str
  continue_on_error:
    description:
      - Go on with the other objects when one fails (its entry of RV(result.results) then has an C(error)).
    type: bool
    default: false
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: A ConfigMap and a ServiceAccount in one kubernetes.core.k8s run (under --diff, each change)
  segmented.registry.objects:
    context: registry
    apply: true
    definition:
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: app-settings
          namespace: myproject
        data:
          LOG_LEVEL: info
      - apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: app
          namespace: myproject

- name: Remove them again, and wait until they are gone
  segmented.registry.objects:
    context: registry
    state: absent
    wait: true
    definition:
      - {apiVersion: v1, kind: ConfigMap, metadata: {name: app-settings, namespace: myproject}}
      - {apiVersion: v1, kind: ServiceAccount, metadata: {name: app, namespace: myproject}}
"""

RETURN = r"""
diff:
  description:
    - One entry per object that changed (or, in check mode, would), in the order of O(definition); an object created
      or removed is named on the side where it exists, never shown; a Secret's values read C((hidden)), or
      C((hidden, changed)) after for a key changed in place.
  returned: in diff mode
  type: list
  elements: dict
  contains:
    before_header:
      description: C(Kind/namespace/name) of the object (C(Kind/name) when it is cluster-scoped).
      type: str
    after_header:
      description: The same as RV(diff[].before_header).
      type: str
    before:
      description: The object's changed fields before (kubernetes.core.k8s's diff); its name alone when it was removed,
        empty when it was created.
      type: raw
    after:
      description: The object's changed fields after; its name alone when it was created, empty when it was removed.
      type: raw
  sample:
    - before_header: ConfigMap/myproject/app-settings
      after_header: ConfigMap/myproject/app-settings
      before: {data: {LOG_LEVEL: info}}
      after: {data: {LOG_LEVEL: debug}}
    - before_header: ServiceAccount/myproject/app
      after_header: ServiceAccount/myproject/app
      before: ""
      after: "ServiceAccount/myproject/app\n"
result:
  description:
    - M(kubernetes.core.k8s)'s result - for one object, the object as the server returned it; for several, RV(result.results).
      A Secret's values read C((hidden)).
  returned: success
  type: dict
  contains:
    results:
      description: For several objects, M(kubernetes.core.k8s)'s result for each, in the order of O(definition)
        (C(changed), C(method), C(result), in diff mode C(diff), and C(error) with O(continue_on_error=true)).
      returned: when O(definition) has more than one object
      type: list
      elements: dict
method:
  description: For one object, what was done (C(create), C(update), C(replace), C(apply), C(delete)).
  returned: when O(definition) has one object
  type: str
  sample: create
duration:
  description: For one object, the seconds waited, with O(wait=true).
  returned: when O(definition) has one object and O(wait=true)
  type: int
"""
