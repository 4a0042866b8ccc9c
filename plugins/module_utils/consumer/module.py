# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the consumer-side modules (``cluster_image_config``, ``pull_secret``) share: one run."""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects
from ansible_collections.segmented.registry.plugins.module_utils.errors import Module, failing


def run(module: Module, build: Callable[[], Any]) -> None:
    """``build()`` makes the edit (it checks the arguments); its ``apply`` runs against the cluster
    of the module's auth options, with ``state``. Exits the module: every error is one message;
    the result's ``warnings`` (optional) become the module's."""
    with failing(module):
        edit = build()
        result = edit.apply(ClusterObjects.connect(module), present=module.params["state"] == "present")
    for message in result.pop("warnings", []):
        module.warn(message)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)
