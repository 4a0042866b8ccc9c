# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The consumer side of one credential run (``distribute.Credential`` has one): the
``kubernetes.io/dockerconfigjson`` Secrets it writes, reads back and removes, and the links of
those Secrets to service accounts (``imagePullSecrets`` or ``secrets``), never disturbing the other
entries of those lists."""

from __future__ import annotations

from typing import Any

from ansible_collections.segmented.registry.plugins.module_utils.cluster import JSON_PATCH, MERGE, SECRET, SERVICE_ACCOUNT, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials import dockerconfig, labels, link
from ansible_collections.segmented.registry.plugins.module_utils.credentials.calls import Writes
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec, Target
from ansible_collections.segmented.registry.plugins.module_utils.errors import Conflict


class ConsumerSide:
    """The consumer cluster of ``spec`` (its ``Cluster``); the writes go through the run's ``writes``."""

    def __init__(self, spec: Spec, cluster: Cluster, writes: Writes) -> None:
        self.spec = spec
        self.cluster = cluster
        self.writes = writes

    def ours(self, selector_labels: dict[str, str]) -> list[dict]:
        """The Secrets this collection made on the consumer cluster with these labels."""
        return self.cluster.list(SECRET, None, label_selector=labels.selector(**selector_labels))

    def owned(self) -> list[dict]:
        """The Secrets of this credential on the consumer cluster, wherever they are: made for this
        inventory host, or for the same registry and namespace under the host's former name."""
        return [secret for secret in self.ours({"credential": self.spec.credential}) if self.spec.owns(secret)]

    def up_to_date(self, secret: dict | None, generation: dict | None) -> bool:
        """Whether ``secret`` holds ``generation``'s token for the registry, as this credential writes it."""
        if secret is None or generation is None:
            return False
        annotations = secret["metadata"].get("annotations") or {}
        if (
            annotations.get(labels.ANNOTATION_GENERATION_UID) != generation["metadata"]["uid"]
            or annotations.get(labels.ANNOTATION_REGISTRY) != self.spec.registry
            or annotations.get(labels.ANNOTATION_IDENTITY) != self.spec.identity_path
            or secret.get("type") != dockerconfig.SECRET_TYPE
        ):
            return False
        try:
            entries = dockerconfig.parse(dockerconfig.from_secret_data(secret.get("data")))
        except dockerconfig.DockerConfigError:
            return False
        registry = self.spec.registry
        return registry is not None and list(entries) == [registry] and bool(entries[registry]["password"])

    def token_of(self, secret: dict) -> str | None:
        """The token a Secret of this credential holds (never shown)."""
        entries = dockerconfig.parse(dockerconfig.from_secret_data(secret.get("data")))
        return entries[self.spec.present_registry]["password"]

    def check_foreign(self, namespace: str, name: str, secret: dict | None) -> None:
        """Refuse a Secret in the way that is not this credential's."""
        spec = self.spec
        if secret is not None and not spec.owns(secret):
            raise CredentialsError(
                f"cluster {spec.cluster}: Secret {namespace}/{name} exists and is not this credential's "
                f"({spec.credential} for {spec.registry}, made by segmented.registry for this inventory host or for "
                f"the same registry through namespace {spec.namespace}); it is left alone: delete it or choose "
                "another secret_name. Nothing was changed"
            )

    def write_secret(self, target: Target, secret: dict | None, generation: dict, token: str | None, expires: float | None) -> None:
        """Create or replace the Secret of ``target`` with ``generation``'s token (``token``: None in
        check mode), or only record its links when it is up to date."""
        spec = self.spec
        linked = labels.linked_text(target.service_accounts)
        where = f"cluster {spec.cluster}"
        name = spec.secret_of(target)
        path = f"{target.namespace}/{name}"
        annotations = {
            labels.ANNOTATION_IDENTITY: spec.identity_path,
            labels.ANNOTATION_GENERATION: f"{spec.namespace}/{generation['metadata']['name']}",
            labels.ANNOTATION_GENERATION_UID: generation["metadata"]["uid"],
            labels.ANNOTATION_EXPIRES: labels.expires_text(expires),
            labels.ANNOTATION_REGISTRY: spec.registry,
            labels.ANNOTATION_LINKED: linked,
        }
        if secret is not None and self.up_to_date(secret, generation):
            found = secret["metadata"].get("annotations") or {}
            if found.get(labels.ANNOTATION_LINKED) != linked:
                self.writes.write(
                    where,
                    f"record the service accounts linked to Secret {path}",
                    self.cluster.patch,
                    SECRET,
                    name,
                    target.namespace,
                    {"metadata": {"annotations": {labels.ANNOTATION_LINKED: linked}}},
                    MERGE,
                )
            return
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": dockerconfig.SECRET_TYPE,
            "metadata": {
                "name": name,
                "namespace": target.namespace,
                "labels": labels.base_labels(spec.credential, spec.cluster, spec.access),
                "annotations": annotations,
            },
        }
        if token is not None:
            body["data"] = dockerconfig.secret_data(dockerconfig.build({spec.present_registry: (labels.USERNAME, token)}))
        if secret is None:
            self.writes.write(where, f"create Secret {path} ({spec.registry})", self.cluster.create, SECRET, body, target.namespace)
        else:
            body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
            self.writes.write(
                where,
                f"replace Secret {path} ({spec.registry}, generation {generation['metadata']['name']})",
                self.cluster.replace,
                SECRET,
                body,
            )

    def _patch_account(self, namespace: str, name: str, present: bool, account: dict | None, secret_name: str) -> None:
        """Link or unlink Secret ``secret_name``; re-read and retry once when the list moved meanwhile."""
        spec = self.spec
        where = f"cluster {spec.cluster}"
        for attempt in (1, 2):
            if account is None or attempt == 2:
                account = self.cluster.get(SERVICE_ACCOUNT, name, namespace)
                if account is None:
                    return
            body = link.patch(account, spec.link_field, secret_name, present=present)
            if body is None:
                return
            verb = "link" if present else "unlink"
            what = f"{verb} Secret {secret_name} {'to' if present else 'from'} {namespace}/{name} ({spec.link_field})"
            if self.writes.check_mode:
                self.writes.changes.append(f"{where}: {what}")
                return
            try:
                self.cluster.patch(SERVICE_ACCOUNT, name, namespace, body, JSON_PATCH)
            except Conflict:
                if attempt == 1:
                    continue
                raise
            self.writes.changes.append(f"{where}: {what}")
            return

    def link(self, target: Target, secret: dict | None, accounts: dict[str, dict]) -> None:
        """Link the Secret of ``target`` to its service accounts, and unlink it from those it no longer names."""
        secret_name = self.spec.secret_of(target)
        for name in target.service_accounts:
            self._patch_account(target.namespace, name, True, accounts.get(name), secret_name)
        before = labels.linked_list(((secret or {}).get("metadata", {}).get("annotations") or {}).get(labels.ANNOTATION_LINKED))
        for name in before:
            if name not in target.service_accounts:
                self._patch_account(target.namespace, name, False, None, secret_name)

    def _unlink_everywhere(self, namespace: str, secret_name: str) -> None:
        """Unlink ``secret_name`` from every service account of ``namespace`` that lists it."""
        spec = self.spec
        for account in self.cluster.list(SERVICE_ACCOUNT, namespace):
            if link.linked(account, spec.link_field, secret_name):
                self._patch_account(namespace, account["metadata"]["name"], False, account, secret_name)

    def remove_secret(self, secret: dict) -> None:
        """Unlink a Secret of this credential everywhere in its namespace, then delete it."""
        spec = self.spec
        namespace, name = secret["metadata"]["namespace"], secret["metadata"]["name"]
        self._unlink_everywhere(namespace, name)
        self.writes.write(
            f"cluster {spec.cluster}", f"delete Secret {namespace}/{name} (no longer a target)", self.cluster.delete, SECRET, name, namespace, missing_ok=True
        )
