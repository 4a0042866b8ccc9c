# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The promotion job's identities (``registry_cluster_pushers``) against the token server's
namespace (``registry_cluster_token_server_namespace``) (pure): the ``pushers`` and
``token_server_namespace`` options of ``validate_inventory``.

A pusher may not live in the token server's namespace: that namespace holds the token signing key,
and whoever administers it could then both mint the pusher's tokens (``serviceaccounts/token``
create) and read the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Problem
from ansible_collections.segmented.registry.plugins.module_utils.names import split_namespaced
from ansible_collections.segmented.registry.plugins.module_utils.text import show

VAR_PUSHERS = "registry_cluster_pushers"
VAR_TOKEN_SERVER_NAMESPACE = "registry_cluster_token_server_namespace"
#: Where the role makes the promotion job's identity by default.
DEFAULT_PUSHER = "segmented-registry-promotion/promoter"


def pusher_problems(host: str, pushers: Optional[Iterable[Any]], token_server_namespace: Optional[str]) -> list[Problem]:
    """The problems (``Problem`` of ``host``, the registry cluster) of ``pushers``: each must be
    ``namespace/name`` and not in ``token_server_namespace``. None for either: nothing to check."""
    if pushers is None:
        return []
    problems = []
    for index, pusher in enumerate(pushers):
        where = f"{VAR_PUSHERS}[{index}]"
        parts = split_namespaced(pusher)
        if parts is None:
            problems.append(Problem(host, where, "{} is not namespace/name of a service account; use for example {}".format(show(pusher), DEFAULT_PUSHER)))
        elif token_server_namespace is not None and parts[0] == token_server_namespace:
            problems.append(
                Problem(
                    host,
                    where,
                    "{} is in namespace {}, the token server's ({}), which holds the "
                    "token signing key: an admin of that namespace could mint this pusher's tokens "
                    "and read the key together; put the pusher in a namespace of its own, like "
                    "{}".format(show(pusher), parts[0], VAR_TOKEN_SERVER_NAMESPACE, DEFAULT_PUSHER),
                )
            )
    return problems
