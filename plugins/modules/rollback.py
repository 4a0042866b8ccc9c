#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: rollback
short_description: Put back the digest an environment served before a tag's last promotion, and keep it there
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Puts back into one environment's registry the digest it served before a tag's last promotion, and
    keeps it there.
notes:
  - Reads the promotion history of one image stream tag in one environment (the ConfigMap
    C(segmented-registry-history-<stream>) in the image stream's namespace on the registry cluster, see
    I(history_limit)), finds its last successful promotion, and copies the digest the environment
    served before it back into that environment's registry, by digest from the integrated registry,
    with the engine of M(segmented.registry.reconcile).
  - The rollback is recorded in the history (action C(rollback), C(digest_before) the digest rolled back
    from, C(digest_after) the digest put back) and pins the tag there. M(segmented.registry.reconcile) and
    M(segmented.registry.promote) keep the pinned digest in that environment for as long as the source tag
    serves the digest rolled back from. The pin ends with the tag's next promotion to that environment -
    the source tag moves to another digest, or the environment is removed from the tag's approval list
    (a demotion) and added again.
  - Refused, with nothing changed, when there is no history, when the last promotion brought the first
    digest there, when the source tag no longer serves the digest of the last promotion, when the tag is
    not approved for the environment, when the digest to put back is no longer in the integrated
    registry, and when the module's Kubernetes credentials may not read the history (C(list) on
    C(configmaps) in the namespace; the message names the fix).
  - The copy passes the environment's policies (C(after), C(scan_gate)) like any other; one that holds
    it back fails the rollback, naming the policy, with nothing changed. With C(after), roll the earlier
    environment back first.
attributes:
  check_mode:
    support: full
    details:
      - Plans only; the preview shows the copy, its digest before and after, and how many bytes at most.
  diff_mode:
    support: full
    details:
      - The digest the environment serves before and after.
  idempotent:
    support: full
    details:
      - A second run finds the digest in place and the pin recorded.
options:
  environment:
    description: The environment to roll back, one of I(environments) without C(state=absent), for example V(uat).
    type: str
    required: true
seealso:
  - module: segmented.registry.promote
  - module: segmented.registry.reconcile
extends_documentation_fragment:
  - segmented.registry.attributes
  - segmented.registry.tag
  - segmented.registry.promotion
  - segmented.registry.query
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
"""

EXAMPLES = r"""
- name: Put back in uat the digest app:v1.2.3 had there before its last promotion
  segmented.registry.rollback:
    namespace: myproject
    name: app:v1.2.3
    environment: uat
    environments: "{{ segmented_registry_environments }}"
    integrated_registry: "{{ hostvars['registry'].segmented_registry_integrated_registry }}"
    service_account: segmented-registry-promotion/promoter
    token_realm_hosts: ["{{ hostvars['registry'].registry_cluster_token_server_route_host }}"]
    requester: "{{ awx_user_name | default(omit) }}"
"""

RETURN = r"""
query_results:
  description: The answer of each I(query) expression, by name.
  returned: when I(query) is given
  type: dict
changed:
  description: Whether the environment registry changed (or would, in check mode), or the pin was recorded.
  returned: always
  type: bool
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
environment:
  description: The environment rolled back.
  type: str
  returned: success
digest_before:
  description: The digest the environment's registry served under the tag before the run (null when none).
  type: str
  returned: success
digest_after:
  description: The digest it serves after the run (in check mode, would serve), the one served before the last promotion.
  type: str
  returned: success
rolled_back_from:
  description: The digest of the last promotion; the pin holds while the source tag serves it.
  type: str
  returned: success
reconcile:
  description:
    - What the copy did (or would do, in check mode), with the same fields as
      M(segmented.registry.reconcile) returns (C(copies), C(skips), C(gated), C(failures), C(bytes_moved),
      C(bytes_planned), C(history_written), C(stats), ...).
  returned: success
  type: dict
failures:
  description: The copy, when it failed, with the reason.
  returned: always
  type: list
  elements: dict
diff:
  description: The digest before and after (C(before.digest), C(after.digest)).
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
    tag_argument_spec,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule
from ansible_collections.segmented.registry.plugins.module_utils.promotion import job
from ansible_collections.segmented.registry.plugins.module_utils.promotion.rollback import Rollback


def argument_spec():
    spec = job.argument_spec()
    spec.update(tag_argument_spec())
    spec.update(environment={"type": "str", "required": True})
    return spec


def main():
    module = AnsibleK8SModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=job.MODULE_KWARGS["mutually_exclusive"] + TAG_MUTUALLY_EXCLUSIVE,
        required_one_of=job.MODULE_KWARGS["required_one_of"],
        required_together=TAG_REQUIRED_TOGETHER,
    )
    run = job.Job(module, started=STARTED)
    with failing(module):
        rollback = Rollback(run, module.params)
        run.check_source()
        rollback.prepare(run.connect())
    run.finish(rollback.carry_out(module.check_mode, diff=module._diff))


if __name__ == "__main__":
    main()
