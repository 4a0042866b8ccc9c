# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""segmented.registry.approvals: an Event-Driven Ansible event source of approval-list changes.

Thin: it checks its arguments and runs plugins/module_utils/approval (``event_source``, ``watcher``,
``changes``), where the work is done and unit-tested.
"""

from __future__ import annotations

import os
import sys
from typing import Any

DOCUMENTATION = r"""
---
short_description: Events when an image tag's approval list or source digest changes
description:
  - Emits an event for every image tag of the registry cluster whose approval list (the annotation
    O(annotation_key)) or source digest changes.
notes:
  - Watches the ImageStreams of the registry cluster (a list, then a watch from its resourceVersion
    with bookmarks; on 410 Gone a new list that emits only what changed; other errors are retried
    after a back-off that doubles up to O(backoff_cap) seconds).
  - The event of a change has C(type=changed), C(namespace), C(stream), C(tag),
    C(environments_before), C(environments_after), C(digest), C(digest_before) and C(manager)
    (the field manager that made the change, from C(metadata.managedFields), best effort).
  - C(type=deleted) for a tag or stream with environments that is gone; C(type=error) (C(message),
    C(field)) for an approval list that cannot be read or names an environment not in
    O(environments), once per problem; a tag in C(default) only gives no event.
  - At start-up, one C(type=initial) event per namespace, so that a rulebook reconciles what
    changed while the source was not running (see the rulebooks of this collection).
  - Authentication as in kubernetes.core (the same options, and the same C(K8S_AUTH_*) environment
    variables when an option is not given).
options:
  kubeconfig:
    description: Path to a kubeconfig file (C(K8S_AUTH_KUBECONFIG)).
    type: raw
  context:
    description: The kubeconfig context to use (C(K8S_AUTH_CONTEXT)).
    type: str
  host:
    description: The registry cluster's API server URL (C(K8S_AUTH_HOST)).
    type: str
  api_key:
    description: A bearer token (C(K8S_AUTH_API_KEY)).
    type: str
  validate_certs:
    description: Verify the API server's certificate (C(K8S_AUTH_VERIFY_SSL)).
    type: bool
  ca_cert:
    description: CA bundle to verify the API server with (C(K8S_AUTH_SSL_CA_CERT)).
    type: path
  namespaces:
    description:
      - The namespaces to watch, for example V([team-a]), each with its own watch; empty watches every
        namespace (needs list and watch on imagestreams cluster-wide).
    type: list
    elements: str
    default: []
  annotation_key:
    description: The approval-list annotation key (the inventory's C(segmented_registry_annotation_key)).
    type: str
    default: segmented.registry/environments
  environments:
    description: The environments an approval list may name (the inventory's); a list naming another one is an error event. Not given, any valid name is taken.
    type: list
    elements: str
  watch_timeout:
    description: Seconds each watch request stays open before it is resumed from the last resourceVersion.
    type: int
    default: 300
  backoff_cap:
    description: The longest wait, in seconds, between two attempts when the API server cannot be used.
    type: float
    default: 30
"""

EXAMPLES = r"""
- segmented.registry.approvals:
    host: https://api.registry.example.com:6443
    ca_cert: /etc/pki/registry-cluster-ca.pem
    namespaces: [myproject]
    environments: [test, uat, prod]
"""

#: this source's own options (the authentication options are kubernetes.core's)
DEFAULTS: dict[str, Any] = {
    "namespaces": [],
    "annotation_key": None,  # annotation.DEFAULT_ANNOTATION_KEY
    "environments": None,
    "watch_timeout": 300,
    "backoff_cap": 30.0,
}


def _importable() -> None:
    """Make ``ansible_collections.segmented.registry`` importable: ansible-rulebook runs this file by
    path (``runpy.run_path``), and the folder holding ``ansible_collections`` (an installed
    collection's, or a checkout linked in there) is not on ``sys.path``."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 7))
    if os.path.isdir(os.path.join(root, "ansible_collections", "segmented", "registry")) and root not in sys.path:
        sys.path.append(root)


def options(args: dict[str, Any]) -> dict[str, Any]:
    """The checked arguments: ``auth`` (kubernetes.core's options given) and this source's own."""
    from ansible_collections.segmented.registry.plugins.module_utils import kube
    from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import DEFAULT_ANNOTATION_KEY, check_annotation_key, check_known
    from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import ImageStreamError, check_namespace

    auth_names = set(kube.AUTH_OPTIONS) | {alias for aliases in kube.AUTH_OPTIONS.values() for alias in aliases}
    unknown = sorted(set(args) - auth_names - set(DEFAULTS))
    if unknown:
        raise ImageStreamError(
            "segmented.registry.approvals takes no argument {}: its arguments are {} and kubernetes.core's authentication options ({})".format(
                ", ".join(unknown), ", ".join(DEFAULTS), ", ".join(sorted(kube.AUTH_OPTIONS))
            )
        )
    result = {name: args.get(name, default) for name, default in DEFAULTS.items()}
    namespaces = result["namespaces"]
    if not isinstance(namespaces, list):
        raise ImageStreamError(f"namespaces must be a list of namespace names (like [myproject]), not {namespaces!r}")
    result["namespaces"] = [check_namespace(namespace, "namespaces: the entry") for namespace in namespaces]
    result["annotation_key"] = check_annotation_key(result["annotation_key"] or DEFAULT_ANNOTATION_KEY)
    if result["environments"] is not None:
        result["environments"] = check_known(result["environments"], "environments")
    for name in ("watch_timeout", "backoff_cap"):
        if isinstance(result[name], bool) or not isinstance(result[name], (int, float)) or result[name] <= 0:
            raise ImageStreamError(f"{name} must be a positive number of seconds, not {result[name]!r}")
    result["auth"] = {name: value for name, value in args.items() if name in auth_names}
    return result


async def main(queue: Any, args: dict[str, Any]) -> None:
    """Put the approval-list events of the registry cluster's ImageStreams on ``queue``, until cancelled."""
    _importable()
    from ansible_collections.segmented.registry.plugins.module_utils.approval import event_source

    checked = options(args)
    await event_source.serve(
        queue,
        checked["auth"],
        checked["namespaces"],
        checked["annotation_key"],
        checked["environments"],
        timeout_seconds=int(checked["watch_timeout"]),
        backoff_cap=float(checked["backoff_cap"]),
    )
