# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What registry_credential runs, for one credential or for many in one call: the ``Spec`` of a
module's options (``spec_of``), both clusters probed and connected (``connect``), one credential's
``Run``, the checks of a batch's elements (``batch_problems``) and the batch in threads (``run_all``).

A batch element carries the options of one credential, as the module takes them in single mode.
Every element is checked before any cluster is reached; then the elements run in threads, each
with clients of its own (a kubernetes client is not shared across threads), and one failing does
not stop the others."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.distribute import Credential
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec, Target, spec_problems
from ansible_collections.segmented.registry.plugins.module_utils.errors import ClusterError, SegmentedRegistryError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import ClusterUnreachable, probe

#: The Secret's name on the consumer cluster when ``secret_name`` is not set.
DEFAULT_SECRETS = {labels.ACCESS_PULL: "segmented-registry-pull", labels.ACCESS_PUSH: "segmented-registry-push"}


def spec_of(params: Mapping[str, Any]) -> Spec:
    """The ``Spec`` of one credential's options (the module's, or a batch element's)."""
    return Spec(
        cluster=params["cluster_name"],
        access=params["access"],
        namespace=params["namespace"],
        registry=params["registry"],
        secret_name=params["secret_name"] or DEFAULT_SECRETS.get(params["access"]),
        targets=[Target(item["namespace"], list(item["service_accounts"] or ()), item.get("secret_name")) for item in params["targets"] or ()],
        token_type=params["token_type"],
        duration=params["duration"],
        renew_before=params["renew_before"],
        rotate=params["rotate"],
        grace=params["grace"],
        revoke_retired=params["revoke_retired"],
        state=params["state"],
        grant_namespace=params["grant_namespace"],
    )


def _auth(auth: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (auth or {}).items() if value is not None}


def reachable(option: str, auth: Mapping[str, Any] | None) -> None:
    """A bounded probe of the cluster of option ``option``: a ``ClusterError`` naming the option when
    it does not answer or refuses the credentials."""
    try:
        probe(_auth(auth))
    except ClusterUnreachable as error:
        raise ClusterError(
            f"{option}: cannot use the cluster: {error}. Check {option} (an expired or revoked api_key is refused with 401); nothing was changed", field=option
        )


def connect(option: str, auth: Mapping[str, Any] | None, where: str, probed: bool = False) -> Cluster:
    """One of the two clusters (named ``where`` in messages), after a probe (``reachable``) unless
    ``probed`` (the caller probed it already)."""
    if not probed:
        reachable(option, auth)
    return Cluster.of_auth(_auth(auth), where)


def element_name(index: int, element: Mapping[str, Any]) -> str:
    """How messages name the batch element ``index``: ``credentials[<index>] (cluster <cluster_name>)``."""
    return f"credentials[{index}] (cluster {element.get('cluster_name')})"


def batch_problems(elements: Sequence[Mapping[str, Any]], parallel: int) -> list[str]:
    """Everything wrong with a batch (pure), each problem prefixed with the element it is in."""
    problems = [] if parallel >= 1 else [f"parallel: {parallel} is less than 1; set how many credentials may run at once (default 8)"]
    if not elements:
        problems.append("credentials: the list is empty; give at least one credential, or leave credentials out for one credential")
    for index, element in enumerate(elements):
        problems.extend(f"{element_name(index, element)}: {problem}" for problem in spec_problems(spec_of(element)))
    return problems


class Run:
    """One credential's run: its ``spec``, the two clusters' auth options (``consumer_auth`` None:
    the registry side only, with ``state=absent``), how messages name it (``name``, empty in single
    mode) and its consumer option (``cluster``, or ``credentials[<i>].cluster``). After ``go``:
    ``result``, or ``error`` when it failed (``run_all`` records it), and the ``credential``."""

    def __init__(
        self,
        spec: Spec,
        registry_auth: Mapping[str, Any] | None,
        consumer_auth: Mapping[str, Any] | None,
        name: str = "",
        consumer_option: str = "cluster",
    ) -> None:
        self.spec = spec
        self.registry_auth = registry_auth
        self.consumer_auth = consumer_auth
        self.name = name
        self.consumer_option = consumer_option
        self.credential: Credential | None = None
        self.result: dict[str, Any] | None = None
        self.error: SegmentedRegistryError | None = None

    def go(self, check_mode: bool, mask: Callable[[str], Any], registry_probed: bool = False) -> dict[str, Any]:
        """Connect both clusters, then mint and distribute (or revoke): the ``Credential``'s result.
        Raises ``SegmentedRegistryError``; ``so_far`` then says what was changed."""
        registry = connect("registry_cluster", self.registry_auth, "the registry cluster", probed=registry_probed)
        consumer = None
        if self.consumer_auth is not None:
            consumer = connect(self.consumer_option, self.consumer_auth, f"cluster {self.spec.cluster}")
        self.credential = Credential(self.spec, registry, consumer, check_mode=check_mode, mask=mask)
        self.result = self.credential.run()
        return self.result

    def so_far(self) -> dict[str, Any]:
        """What a failure reports: nothing changed before the Credential ran, else its changes."""
        if self.credential is None:
            return {"changed": False}
        return {"changed": bool(self.credential.changes), "changes": list(self.credential.changes)}

    @property
    def warnings(self) -> list[str]:
        """The credential's warnings (none before it ran)."""
        return list(self.credential.warnings) if self.credential is not None else []


def batch_runs(registry_auth: Mapping[str, Any] | None, elements: Sequence[Mapping[str, Any]]) -> list[Run]:
    """A ``Run`` per batch element, in input order."""
    return [
        Run(spec_of(element), registry_auth, element["cluster"], element_name(index, element), f"credentials[{index}].cluster")
        for index, element in enumerate(elements)
    ]


def run_all(runs: Sequence[Run], parallel: int, check_mode: bool, mask: Callable[[str], Any]) -> list[Run]:
    """Every run in threads, ``parallel`` at a time, after one probe of the registry cluster (they
    share it): the runs in input order, each with its ``result`` or its ``error``. One failing does
    not stop the others; a bug (any other exception) is raised once every run has ended. Raises
    ``ClusterError`` when the registry cluster does not answer (then nothing ran)."""
    if not runs:
        return []
    reachable("registry_cluster", runs[0].registry_auth)

    def one(run: Run) -> Run:
        try:
            run.go(check_mode, mask, registry_probed=True)
        except SegmentedRegistryError as error:
            run.error = error
        return run

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(runs)))) as pool:
        return list(pool.map(one, runs))
