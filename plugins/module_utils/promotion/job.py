# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A promotion job as the modules run it (``reconcile`` and ``promote``): their shared options, the
registry cluster's API, the short-lived registry token, the registry clients, and the result.

Options are documented once, in the ``segmented.registry.promotion`` doc fragment; a unit test
checks it against ``argument_spec()``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Collection, Iterable, Mapping, NoReturn

from ansible_collections.segmented.registry.plugins.module_utils import kube
from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    DEFAULT_ANNOTATION_KEY,
    check_annotation_key,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import tag_entries
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI, list_streams
from ansible_collections.segmented.registry.plugins.module_utils.cluster import FIELD_MANAGER
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import (
    MIN_TOKEN_SECONDS,
    TOKEN_SERVER_AUDIENCE,
    mint_token,
)
from ansible_collections.segmented.registry.plugins.module_utils.errors import Module, PromotionError, failing
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import (
    absent_names,
    promotion_order,
    promotion_targets,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.environments import build_environments
from ansible_collections.segmented.registry.plugins.module_utils.oci.client import HAS_REQUESTS, REQUESTS_IMPORT_ERROR, RegistryClient
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import Stats
from ansible_collections.segmented.registry.plugins.module_utils.promotion import copy_jobs, copy_plan, history, history_api
from ansible_collections.segmented.registry.plugins.module_utils.promotion.audit import format_table
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import COPY, FAILED, GATED, REMOVE, SKIP
from ansible_collections.segmented.registry.plugins.module_utils.promotion.run import reconcile
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope
from ansible_collections.segmented.registry.plugins.module_utils.query import (
    ARGUMENT_SPEC as QUERY_SPEC,
    compile_query_option,
    run_queries,
)


def argument_spec() -> dict[str, Any]:
    """The options every promotion job takes (see the ``promotion`` doc fragment)."""
    spec = kube.auth_argument_spec()
    spec.update(
        environments={"type": "list", "elements": "dict", "required": True},
        integrated_registry={"type": "str"},
        integrated_ca_cert={"type": "path"},
        integrated_validate_certs={"type": "bool", "default": True},
        token_realm_hosts={"type": "list", "elements": "str", "default": [], "no_log": False},
        service_account={"type": "str"},
        token_duration={"type": "int", "default": 900, "no_log": False},
        registry_token={"type": "str", "no_log": True},
        annotation_key={"type": "str", "default": DEFAULT_ANNOTATION_KEY, "no_log": False},
        prune={"type": "bool", "default": True},
        parallel_images={"type": "int", "default": 4},
        parallel_blobs={"type": "int", "default": 6},
        retries={"type": "int", "default": 3},
        timeout={"type": "int", "default": 60},
        report_file={"type": "path"},
        details={"type": "str", "choices": ["all", "changes"], "default": "all"},
        history_limit={"type": "int", "default": history.DEFAULT_LIMIT},
        show_history={"type": "bool", "default": False},
        requester={"type": "str"},
        copy_jobs=copy_plan.OPTION_SPEC,
        **QUERY_SPEC,
    )
    return spec


#: Keyword arguments of ``AnsibleK8SModule`` for a job's options.
MODULE_KWARGS = {
    "mutually_exclusive": [("service_account", "registry_token")],
    "required_one_of": [("service_account", "registry_token")],
}


def check_numbers(params: Mapping[str, Any]) -> None:
    """The job's numeric options in range, or a ``PromotionError`` naming the first one that is not."""
    for name in ("parallel_images", "parallel_blobs", "timeout"):
        if params[name] < 1:
            raise PromotionError(f"{name} must be at least 1, not {params[name]}", field=name)
    if params["retries"] < 0:
        raise PromotionError("retries must not be negative", field="retries")
    if params["token_duration"] < MIN_TOKEN_SECONDS:
        raise PromotionError(
            f"token_duration must be at least {MIN_TOKEN_SECONDS} seconds (the TokenRequest API's minimum), not {params['token_duration']}",
            field="token_duration",
        )
    history.check_limit(params["history_limit"])


class Job:
    """One module run of a promotion job. ``fail`` is ``module.fail_json``."""

    def __init__(self, module: Module, started: float | None = None) -> None:
        self.module = module
        self.params = module.params
        # ``started``: the monotonic time of the module's first line (its imports are its cost too)
        self.began = time.monotonic()
        self.started = self.began if started is None else started
        self.api_calls = 0
        #: the registry passwords by audience (None: the API server's), minted once per run
        self.tokens: dict[str | None, str] = {}
        self.api: Any = None  # the ImageStreamAPI, once connected
        params = self.params
        if not HAS_REQUESTS:
            from ansible.module_utils.basic import missing_required_lib

            module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        with failing(module):  # a TopologyError brings its problems along
            check_numbers(params)
            #: every environment of the inventory; ``targets``: those images are promoted to (not
            #: ``state: absent``); ``absent``: the names of the others.
            self.environments = build_environments(params["environments"])
            self.targets = promotion_targets(self.environments)
            self.absent = absent_names(self.environments)
            self.annotation_key = check_annotation_key(params["annotation_key"])
            #: the copy Jobs' settings (the option ``copy_jobs``), None: copies run in this process
            self.copy_jobs = copy_plan.Settings.of(params["copy_jobs"], params["service_account"]) if params["copy_jobs"] else None
        self.queries = compile_query_option(module)
        self._warn_unverified()

    def _warn_unverified(self) -> None:
        """``validate_certs: false`` is an explicit opt-out, but never a silent one: one warning
        per endpoint per run."""
        if not self.params["integrated_validate_certs"]:
            self.module.warn(
                f"the integrated registry {self.params['integrated_registry']}: TLS certificates are not verified (integrated_validate_certs: false)"
            )
        for env in self.targets.values():
            if not env.validate_certs:
                self.module.warn(
                    f"environment {env.name}: the TLS certificate of {env.endpoint} is not verified "
                    "(validate_certs: false in segmented_registry_environments); prefer ca_cert"
                )

    def check_source(self) -> None:
        """A run that copies (``run``) needs ``integrated_registry``: a module calls this before it
        asks a cluster or writes an approval list, so a missing one changes nothing."""
        if not self.params["integrated_registry"]:
            raise PromotionError(
                "integrated_registry is required to bring the environment registries in line: "
                "give the host[:port] of the registry cluster's integrated registry (the "
                "inventory variable segmented_registry_integrated_registry)",
                field="integrated_registry",
            )

    def connect(self) -> ImageStreamAPI:
        """The registry cluster's ImageStream API."""
        self.api = ImageStreamAPI.connect(self.module)
        return self.api

    def _registry_token(self, audience: str | None = None) -> str:
        """A registry password: ``registry_token``, or a TokenRequest token of ``service_account``
        for ``audience`` minted once per run (masked wherever the module's output would echo it):
        the API server's audience (None) for the integrated registry, ``TOKEN_SERVER_AUDIENCE`` for
        the environment registries, whose token server accepts no other."""
        if self.params["registry_token"] is not None:
            return self.params["registry_token"]
        if audience not in self.tokens:
            with failing(self.module):
                token = mint_token(self.api.cluster, self.params["service_account"], self.params["token_duration"], audiences=[audience] if audience else None)
            kube.mask(self.module, token)
            self.api_calls += 1
            self.tokens[audience] = token
        return self.tokens[audience]

    def read_approvals(self, namespaces: Collection[str] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``(entries, stream annotations)`` of ``namespaces`` (None: every namespace): one list
        call per namespace, or one cluster-wide call."""
        streams, calls = list_streams(self.api, namespaces or None)
        self.api_calls += calls
        return approvals_of(streams, self.annotation_key)

    def run(
        self,
        entries: list[dict[str, Any]],
        annotations: Mapping[str, Mapping[str, str]],
        scope: Scope,
        check_mode: bool,
        rollback: Mapping[tuple[str, str, str], tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Read the promotion history (the rollbacks in force) and the registries in scope, plan
        and (unless ``check_mode``) execute, then record what was carried out; returns the module
        result (``changed``, the actions by kind, the audit, the counters). ``rollback``: a new pin
        (``{(repository, tag, environment): (from, to)}``), whose digest must still be in the
        integrated registry: checked before anything is planned. An approval list the run could not
        follow (unreadable, or naming an environment the inventory does not define) is recorded as a
        failed promotion (``history.problems_of``)."""
        params = self.params
        namespaces = scope.namespaces or sorted({item["namespace"] for item in entries if scope.entry_in_scope(item)})
        configmaps = self.read_history(namespaces, required=rollback is not None)
        pins = history.pins(configmaps)
        pins.update(rollback or {})
        source_token = self._registry_token()
        environment_token = self._registry_token(TOKEN_SERVER_AUDIENCE)
        stats = Stats()
        timeout = (min(10.0, float(params["timeout"])), float(params["timeout"]))
        pool = params["parallel_images"] + params["parallel_blobs"] + 4

        def client(host: str, ca_cert: str | None, validate_certs: bool, name: str, token: str | None) -> RegistryClient:
            return RegistryClient(
                host,
                password=token,
                ca_cert=ca_cert,
                validate_certs=validate_certs,
                name=name,
                timeout=timeout,
                retries=params["retries"],
                stats=stats,
                pool_size=pool,
                token_realm_hosts=params["token_realm_hosts"],
            )

        source = client(
            params["integrated_registry"], params["integrated_ca_cert"], params["integrated_validate_certs"], "default (integrated registry)", source_token
        )
        destinations = {env.name: client(env.endpoint, env.ca_cert, env.validate_certs, env.name, environment_token) for env in self.targets.values()}
        try:
            with failing(self.module):
                for (repository, _tag, _env), (_rolled_back_from, digest) in sorted((rollback or {}).items()):
                    if source.head_manifest(repository, digest) is None:
                        raise history.HistoryError(
                            f"{params['integrated_registry']}/{repository}@{digest} is no longer in the integrated registry (pruned?), so "
                            "it cannot be rolled back to; nothing was changed",
                            field="environment",
                        )
                outcome = reconcile(
                    entries,
                    self.environments,
                    source,
                    destinations,
                    scope=scope,
                    prune=params["prune"],
                    check_mode=check_mode,
                    stream_annotations=annotations,
                    image_workers=params["parallel_images"],
                    blob_workers=params["parallel_blobs"],
                    pins=pins,
                    copier=self._copier(self.copy_jobs, source, destinations) if self.copy_jobs else None,
                )
        finally:
            for item in [source] + list(destinations.values()):
                item.close()
        result = self._result(outcome, stats, scope, check_mode)
        if not check_mode:
            moment = history.now()
            records = history.entries_of(outcome["actions"], self.requester, moment)
            targets = scope.environments_of(promotion_order(self.environments))
            in_scope = [item for item in entries if scope.entry_in_scope(item)]
            for key, items in history.problems_of(in_scope, self.environments, targets, self.requester, moment).items():
                records.setdefault(key, []).extend(items)
            self.record_history(records, result, required=rollback is not None)
        if params["show_history"]:
            result["history"] = self._history(configmaps, scope)
        result["stats"]["api_calls"] = self.api_calls
        return result

    def _copier(self, settings: copy_plan.Settings, source: RegistryClient, destinations: Mapping[str, RegistryClient]) -> Any:
        """``copier(copies, actual, preview)`` for ``reconcile``: the copies run as Jobs
        (``copy_jobs``), or in check mode (``preview``) what they need is checked. The registries'
        token realms are read from their challenges (cached by the clients' reads)."""

        def run(copies: list[dict[str, Any]], actual: Mapping[str, Any], preview: bool) -> None:
            if not copies:
                return
            realms: dict[str, str | None] = {}
            if not preview:  # a preview starts no Job, so it needs no token endpoint
                realms = {name: client.auth.challenge()[1].get("realm") for name, client in dict(destinations, source=source).items()}
            ca_certs = []
            for path in sorted({env.ca_cert for env in self.targets.values() if env.ca_cert}):
                with open(path) as handle:
                    ca_certs.append(handle.read())
            params = self.params
            jobs = copy_jobs.CopyJobs(
                self.api.cluster,
                settings,
                self.targets,
                realms,
                "".join(ca_certs),
                params["parallel_images"],
                params["parallel_blobs"],
                params["retries"],
                params["timeout"],
            )
            if preview:
                jobs.preview(copies)
            else:
                jobs.execute(copies, actual)
            self.api_calls += jobs.api_calls

        return run

    @property
    def requester(self) -> str:
        """Who the history says asked: the option ``requester``, or the collection's field manager."""
        return str(self.params["requester"] or FIELD_MANAGER)

    def record_history(self, records: Mapping[tuple[str, str], list[dict[str, Any]]], result: dict[str, Any], required: bool = False) -> None:
        """Add ``records`` (``history.entries_of``) to the history; ``result`` gets ``history_written``
        and rides along with an error (the registries changed before). A namespace whose history the
        job's account may not write is a warning, unless ``required`` (a rollback's pin)."""
        with failing(self.module, **result):
            result["history_written"], calls = history_api.record(self.api.cluster, records, self.params["history_limit"], self._warn_unless(required))
        self.api_calls += calls
        result["stats"]["api_calls"] = self.api_calls

    def read_history(self, namespaces: list[str], required: bool = False) -> list[dict[str, Any]]:
        """The history ConfigMaps of ``namespaces``: one LIST each. A namespace whose history the
        job's account may not read is a warning (no pins there), unless ``required`` (a rollback)."""
        with failing(self.module):
            configmaps = history_api.read(self.api.cluster, namespaces, self._warn_unless(required))
        self.api_calls += len(namespaces)
        return configmaps

    def _warn_unless(self, required: bool) -> history_api.Warn | None:
        """``module.warn``, or None when the history is ``required`` (a refusal fails the run)."""
        return None if required else self.module.warn

    @staticmethod
    def _history(configmaps: list[dict[str, Any]], scope: Scope) -> list[dict[str, Any]]:
        """The recorded history of what ``scope`` covers, as read before the run, newest first (``history.flatten``)."""
        return [
            row
            for row in history.flatten(configmaps)
            if (scope.stream is None or row["stream"] == scope.stream)
            and (scope.tag is None or row["tag"] == scope.tag)
            and (scope.environments is None or row["environment"] in scope.environments)
        ]

    def _result(self, outcome: dict[str, Any], stats: Stats, scope: Scope, check_mode: bool) -> dict[str, Any]:
        actions = outcome["actions"]

        def outcome_of(item: dict[str, Any]) -> str:
            return item.get("result") or item["action"]

        changing = [a for a in actions if a.get("result") in ("copied", "removed") or (check_mode and a["action"] in (COPY, REMOVE))]
        counters = stats.to_dict()
        everything = self.params["details"] == "all"
        audit = outcome["audit"] if everything else [row for row in outcome["audit"] if row["drift"]]
        result = {
            "changed": bool(changing),
            "summary": outcome["summary"],
            "copies": [a for a in actions if a["action"] == COPY],
            "skips": [a for a in actions if a["action"] == SKIP] if everything else [],
            "removals": [a for a in actions if a["action"] == REMOVE],
            "gated": [a for a in actions if outcome_of(a) == GATED],
            "failures": [a for a in actions if outcome_of(a) == FAILED],
            "bytes_moved": sum(a.get("bytes_sent") or 0 for a in actions),
            "audit": audit,
            "table": format_table(audit),
            "unknown_environments": outcome["unknown_environments"],
            "absent_environments": outcome["absent_environments"],
            "scope": scope.to_dict(),
            "stats": {
                "api_calls": self.api_calls,
                "registry_requests": counters["requests"],
                "registry_requests_by_method": counters["by_method"],
                "token_requests": counters["token_requests"],
                "retries": counters["retries"],
                "blob_bytes_sent": counters["blob_bytes_sent"],
                "seconds": dict(outcome["seconds"], startup=round(self.began - self.started, 3), total=round(time.monotonic() - self.started, 3)),
            },
        }
        if check_mode:
            result["bytes_planned"] = sum(a.get("bytes_planned") or 0 for a in result["copies"])
        for warning in outcome["warnings"]:
            self.module.warn(warning)
        if outcome["unknown_environments"]:
            self.module.warn(
                f"approval lists name environments that the inventory does not define: "
                f"{', '.join(outcome['unknown_environments'])}; nothing is copied for them (fix the "
                "annotation, or add the environment to segmented_registry_environments)"
            )
        if outcome["absent_environments"]:
            self.module.warn(
                f"approval lists name environments with state: absent: "
                f"{', '.join(outcome['absent_environments'])}; they are no promotion target, so nothing "
                "is copied to or removed from their registries (demote the tags from them)"
            )
        return result

    def finish(self, result: dict[str, Any], **extra: Any) -> NoReturn:
        """Write the report file (if asked), then exit: failed when any tag failed."""
        result = dict(result, **extra)
        if self.queries:
            with failing(self.module, **result):  # the report rides along with the query's error
                result["query_results"] = run_queries(self.queries, result)
        if self.params["report_file"]:
            report = dict(result, check_mode=self.module.check_mode)
            try:
                fd = os.open(self.params["report_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    json.dump(report, handle, indent=1, sort_keys=True)
            except OSError as exc:
                self.module.fail_json(msg=f"cannot write report_file {self.params['report_file']}: {exc}", **result)
        failures = result.get("failures") or []
        if failures:
            shown = "; ".join(f"{f.get('environment') or '-'} {f['repository']}:{f['tag']}: {f.get('error') or f.get('reason')}" for f in failures[:5])
            more = "; ..." if len(failures) > 5 else ""
            self.module.fail_json(msg=f"{len(failures)} tag{'' if len(failures) == 1 else 's'} failed (the others went through): {shown}{more}", **result)
        self.module.exit_json(**result)


def approvals_of(streams: Iterable[dict[str, Any]], annotation_key: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """``(entries, stream annotations)`` of ImageStreams: one entry per tag (see
    ``approval.imagestreams.tag_entries``) and ``{"<namespace>/<stream>": metadata.annotations}``."""
    entries, annotations = [], {}
    for imagestream in streams:
        meta = imagestream.get("metadata") or {}
        annotations[f"{meta.get('namespace')}/{meta.get('name')}"] = meta.get("annotations") or {}
        entries.extend(tag_entries(imagestream, annotation_key))
    return entries, annotations
