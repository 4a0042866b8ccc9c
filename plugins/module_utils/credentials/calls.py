# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The API calls of one credential run, on either cluster (``distribute.Credential`` and its
``consumer.ConsumerSide`` share them): reads as dicts, None for a 404; writes recorded in the
run's ``changes`` and, in check mode, only recorded. A failed call is a ``CredentialsError``
naming what was done where."""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import CredentialsError


def as_dict(api_client: Any, obj: Any) -> Any:
    """A typed client's object as the plain dict the API server sent (None stays None)."""
    return api_client.sanitize_for_serialization(obj) if obj is not None else None


def read(api_client: Any, call: Callable[..., Any], what: str, where: str, *args: Any) -> dict | None:
    """``call(*args)`` as a dict, or None when the object does not exist."""
    try:
        return as_dict(api_client, call(*args))
    except Exception as exc:
        if kube.status_of(exc) == 404:
            return None
        raise CredentialsError(kube.api_problem(exc, f"read {what}", where))


def secret_deletion(api: Any) -> Callable[[str, str], Any]:
    """``delete(name, namespace)`` of a Secret through the CoreV1Api ``api``; one already gone is fine."""

    def delete(name: str, namespace: str) -> Any:
        try:
            return api.delete_namespaced_secret(name, namespace)
        except Exception as exc:
            if kube.status_of(exc) != 404:
                raise
            return None

    return delete


class Writes:
    """The writes of one run: each is recorded in ``changes`` before it is made; in check mode it
    is only recorded."""

    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode
        self.changes: list[str] = []

    def write(self, where: str, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)`` recorded as ``"<where>: <what>"``; its answer (None in check mode)."""
        self.changes.append(f"{where}: {what}")
        if self.check_mode:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            raise CredentialsError(kube.api_problem(exc, what, where))
