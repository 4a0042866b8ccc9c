# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A rollback as the ``rollback`` module runs it: the request checked, the tag's history read and
its target found (``history.rollback_target``), then one promotion run narrowed to that tag and
environment with the new pin (``plan``'s pins), which copies the pinned digest by digest and
records the rollback."""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import check_namespace, resolve_tag_reference
from ansible_collections.segmented.registry.plugins.module_utils.errors import PromotionError
from ansible_collections.segmented.registry.plugins.module_utils.promotion import history
from ansible_collections.segmented.registry.plugins.module_utils.promotion.job import Job, approvals_of
from ansible_collections.segmented.registry.plugins.module_utils.promotion.plan import FAILED, GATED
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope


class Rollback:
    """One rollback of ``<namespace>/<stream>:<tag>`` in ``environment``; ``prepare`` reads and
    decides (raising before anything changes), ``carry_out`` copies and records."""

    def __init__(self, job: Job, params: Mapping[str, Any]) -> None:
        self.job = job
        self.namespace = check_namespace(params["namespace"])
        self.stream, self.tag = resolve_tag_reference(params["name"], params["stream"], params["tag"])
        self.environment = params["environment"]
        if self.environment not in job.targets:
            state = " (it has state: absent)" if self.environment in job.absent else ""
            raise PromotionError(f"environment: {self.environment} is no promotion target{state}; give one of {', '.join(job.targets)}", field="environment")
        self.repository = f"{self.namespace}/{self.stream}"
        self.where = (
            f"{self.repository}:{self.tag} in {self.environment} (ConfigMap {self.namespace}/{history.configmap_name(self.stream)}, "
            f"key {history.data_key(self.tag, self.environment)})"
        )

    def prepare(self, api: ImageStreamAPI) -> None:
        """Read the ImageStream and the history; find what to put back. Raises a ``PromotionError``
        (or a ``HistoryError``) that says why, before anything changes."""
        self.entries, self.annotations = approvals_of([api.get(self.namespace, self.stream)], self.job.annotation_key)
        entry = next((item for item in self.entries if item["tag"] == self.tag), None)
        if entry is None:
            raise PromotionError(f"{self.repository}: the image stream has no tag {self.tag}; check tag (or name)", field="tag")
        approved = entry.get("environments") or []
        if self.environment not in approved:
            raise PromotionError(
                f"{self.repository}:{self.tag} is not approved for {self.environment} (its approval list: "
                f"{', '.join(approved) or entry.get('error') or 'unreadable'}), so a reconcile would remove it there; a rollback "
                "keeps an approved tag on an earlier digest. Nothing was changed",
                field="environment",
            )
        configmaps = self.job.read_history([self.namespace], required=True)
        rows = [row for row in history.flatten(configmaps) if (row["stream"], row["tag"], row["environment"]) == (self.stream, self.tag, self.environment)]
        self.pin = history.rollback_target(rows, entry.get("digest"), self.where)
        self.pinned_before = history.pins(configmaps).get(self.key) == self.pin

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.repository, self.tag, self.environment)

    def carry_out(self, check_mode: bool, diff: bool = False) -> dict[str, Any]:
        """Run the narrowed promotion with the pin; record the pin when the digest was in place
        already without one. Returns the module result."""
        scope = Scope(namespaces=[self.namespace], stream=self.stream, tag=self.tag, environments=[self.environment])
        reconciled = self.job.run(self.entries, self.annotations, scope, check_mode, rollback={self.key: self.pin})
        mine = [
            item
            for kind in ("copies", "skips", "gated", "failures")
            for item in reconciled[kind]
            if item["tag"] == self.tag and item.get("environment") == self.environment
        ]
        before = mine[0].get("current") if mine else None
        outcome = (mine[0].get("result") or mine[0]["action"]) if mine else FAILED
        landed = outcome not in (FAILED, GATED)
        # a policy that holds the digest back fails the rollback (nothing was copied), as a failed copy does
        held_back = mine[:1] if outcome == GATED else []
        recorded = False
        if landed and not reconciled["changed"] and not self.pinned_before:
            # the registry served the digest already, but nothing pins it yet: the pin is the change
            recorded = True
            if not check_mode:
                entry = history.entry(
                    history.now(),
                    history.ROLLBACK,
                    self.environment,
                    self.tag,
                    self.pin[0],
                    self.pin[1],
                    self.job.requester,
                    history.OK,
                    "already served; pinned",
                )
                self.job.record_history({(self.namespace, self.stream): [entry]}, reconciled, required=True)
        result = {
            "changed": reconciled["changed"] or recorded,
            "namespace": self.namespace,
            "stream": self.stream,
            "tag": self.tag,
            "environment": self.environment,
            "digest_before": before,
            "digest_after": self.pin[1] if landed else before,
            "rolled_back_from": self.pin[0],
            "reconcile": reconciled,
            "failures": reconciled["failures"] + held_back,
        }
        if diff:
            result["diff"] = {"before": {"digest": before}, "after": {"digest": result["digest_after"]}}
        return result
