# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The errors of the collection (pure): one base, one class per layer, and the one place a module
turns them into ``fail_json``.

Every error the collection raises on purpose is a ``SegmentedRegistryError``; its message names
the object, the field and the fix, and is what the user reads (``msg``). The layer classes say
where it came from:

- ``InventoryError``: the inventory (environments, clusters, role variables) is not valid;
- ``ClusterError``: an API server could not be used (unreachable, refusing, a failed call);
- ``ApprovalError``: an approval list, an environment name or an ImageStream;
- ``OciError``: a registry answered with an error, or served what cannot be copied;
- ``PromotionError``: a promotion job's own arguments (its scope);
- ``CredentialsError``: a registry credential could not be minted, distributed or revoked;
- ``ConsumerError``: a consumer cluster's pull secret or image configuration.

A module runs its work inside ``failing(module)``; an action plugin returns ``error_result(exc)``.
``Module`` is what the collection uses of an ``AnsibleModule``, for the type checker.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, NoReturn, Protocol


class Module(Protocol):
    """What the collection uses of an ``AnsibleModule`` (or of kubernetes.core's ``AnsibleK8SModule``),
    for the type checker: ``fail_json`` and ``exit_json`` do not return."""

    params: dict[str, Any]
    check_mode: bool
    _diff: bool

    def fail_json(self, msg: str, **kwargs: Any) -> NoReturn: ...

    def exit_json(self, **kwargs: Any) -> NoReturn: ...

    def warn(self, warning: str) -> None: ...


class SegmentedRegistryError(Exception):
    """An error of the collection; ``str()`` is the message the user reads.

    ``field`` (the option or inventory field at fault) and ``fix`` are optional structured
    detail; ``result`` holds keys that ride along in the failed result (a partial report, the
    problems found), never a secret.
    """

    def __init__(self, message: str = "", field: str | None = None, fix: str | None = None, result: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.fix = fix
        self._result = dict(result or {})

    @property
    def result(self) -> dict[str, Any]:
        """The keys this error adds to the module's failed result (a copy)."""
        return dict(self._result)


class InventoryError(SegmentedRegistryError):
    """The inventory is not valid (raised by module_utils/inventory)."""


class ClusterError(SegmentedRegistryError):
    """An API server could not be used (raised by module_utils/cluster.py, kube.py and
    inventory/reachability.py). ``status`` is the HTTP status the server answered, or None (no
    answer, or no request made)."""

    def __init__(self, message: str = "", status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class Conflict(ClusterError):
    """A conditional write was refused because the object changed since it was read: a 409, or
    (``lost_race``) a ``test`` of a JSON patch that failed because another edit landed first."""

    def __init__(self, message: str = "", lost_race: bool = False, **kwargs: Any) -> None:
        super().__init__(message, status=409 if not lost_race else 422, **kwargs)
        self.lost_race = lost_race


class Gone(ClusterError):
    """A watch or list asked for a resourceVersion the server no longer keeps (410): list again."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        super().__init__(message, status=410, **kwargs)


class ApprovalError(SegmentedRegistryError):
    """An approval list, environment name or ImageStream is not as needed (module_utils/approval)."""


class OciError(SegmentedRegistryError):
    """A registry operation failed (module_utils/oci)."""


class PromotionError(SegmentedRegistryError):
    """A promotion job cannot run as asked (module_utils/promotion)."""


class CredentialsError(SegmentedRegistryError):
    """A registry credential could not be minted or distributed (module_utils/credentials)."""


class ConsumerError(SegmentedRegistryError):
    """A consumer cluster's configuration cannot be changed as asked (module_utils/consumer)."""


LAYERS = (InventoryError, ClusterError, ApprovalError, OciError, PromotionError, CredentialsError, ConsumerError)


def failure(error: SegmentedRegistryError, **extra: Any) -> dict[str, Any]:
    """The keyword arguments of ``fail_json`` for ``error``: ``extra``, then the error's own
    ``result`` keys, and ``msg`` (the message) last, so nothing overrides it."""
    fields = dict(extra)
    fields.update(error.result)
    fields["msg"] = str(error)
    return fields


def error_result(error: SegmentedRegistryError, **extra: Any) -> dict[str, Any]:
    """The failed result an action plugin returns for ``error`` (see ``failure``)."""
    return dict(failure(error, **extra), failed=True)


@contextmanager
def failing(module: Module, partial: Callable[[], dict[str, Any]] | None = None, **extra: Any) -> Iterator[None]:
    """Run the block; a ``SegmentedRegistryError`` in it calls ``module.fail_json`` once, with its
    message and ``extra``. ``partial`` (a callable returning a dict, or None) is called at failure
    time: the result so far (``changed``, ``changes``) rides along. Any other exception goes
    through untouched (a bug keeps its traceback)."""
    try:
        yield
    except SegmentedRegistryError as error:
        fields = dict(extra)
        if partial is not None:
            fields.update(partial())
        module.fail_json(**failure(error, **fields))
