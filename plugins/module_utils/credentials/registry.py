# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The registry cluster's part of one credential (``distribute.Credential`` has one): its identity
(ServiceAccount) and the RoleBinding that grants it, the generations (Secrets) that carry its
tokens, and their revocation. Tokens never leave it but through ``NewGeneration``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ansible_collections.segmented.registry.plugins.module_utils.cluster import MERGE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.calls import Writes
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import (
    CredentialsError,
    long_lived_token,
    mint_bound_token,
)
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec

#: How long to wait for the token controller to fill a long-lived token Secret.
LONG_LIVED_WAIT = 30
SECRET_TYPE_TOKEN = "kubernetes.io/service-account-token"
SECRET_TYPE_OPAQUE = "Opaque"


@dataclass(frozen=True)
class NewGeneration:
    """A generation made by this run, with its token (never shown: not in the repr) and the token's
    expiry (epoch seconds; None for a long-lived token). In check mode: a stand-in, no token."""

    generation: dict
    token: str | None = field(repr=False)
    expires: int | None


class RegistrySide:
    """The registry cluster's part of a credential run. ``cluster`` is its ``Cluster``; writes
    go through the run's ``writes`` (check mode, the changes list); ``mask(value)`` registers a
    token with the module (no_log). ``revoked`` and ``retired`` name the generations this run
    revoked or marked for revocation."""

    def __init__(self, spec: Spec, cluster: Cluster, writes: Writes, check_mode: bool, mask: Callable[[str], Any], now: float) -> None:
        self.spec = spec
        self.cluster = cluster
        self.writes = writes
        self.check_mode = check_mode
        self.mask = mask
        self.now = now
        self.revoked: list[str] = []
        self.retired: list[str] = []

    def ensure_identity(self, account: dict | None, binding: dict | None) -> dict:
        spec = self.spec
        meta = {
            "name": spec.identity,
            "namespace": spec.namespace,
            "labels": labels.base_labels(spec.credential, spec.cluster, spec.access),
            "annotations": {labels.ANNOTATION_GRANT_NAMESPACE: spec.grant_ns},
        }
        if account is None:
            created = self.writes.write(
                "registry cluster",
                f"create ServiceAccount {spec.identity_path} (granted {labels.CLUSTER_ROLES[spec.access]} in {spec.grant_ns})",
                self.cluster.create,
                SERVICE_ACCOUNT,
                {"metadata": meta},
                spec.namespace,
            )
            account = created or {"metadata": dict(meta, uid="(new)")}
        elif (account["metadata"].get("annotations") or {}).get(labels.ANNOTATION_GRANT_NAMESPACE) != spec.grant_ns:
            # the cluster moved to another environment: the annotation says where the grant is now
            self.writes.write(
                "registry cluster",
                f"annotate ServiceAccount {spec.identity_path} as granted in {spec.grant_ns}",
                self.cluster.patch,
                SERVICE_ACCOUNT,
                spec.identity,
                spec.namespace,
                {"metadata": {"annotations": {labels.ANNOTATION_GRANT_NAMESPACE: spec.grant_ns}}},
                MERGE,
            )
        meta = dict(meta, name=spec.binding, namespace=spec.grant_ns)
        role = labels.CLUSTER_ROLES[spec.access]
        ref = (binding or {}).get("roleRef") or {}
        subjects = (binding or {}).get("subjects") or []
        wanted_subject = {"kind": "ServiceAccount", "name": spec.identity, "namespace": spec.namespace}
        if binding is not None and (
            ref.get("name") != role or ref.get("kind") != "ClusterRole" or [{k: s.get(k) for k in wanted_subject} for s in subjects] != [wanted_subject]
        ):
            self.writes.write(
                "registry cluster",
                f"delete RoleBinding {spec.binding_path} (its role changed)",
                self.cluster.delete,
                ROLE_BINDING,
                spec.binding,
                spec.grant_ns,
            )
            binding = None
        if binding is None:
            self.writes.write(
                "registry cluster",
                f"create RoleBinding {spec.binding_path} to {role} for {spec.identity_path}",
                self.cluster.create,
                ROLE_BINDING,
                {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": [wanted_subject]},
                spec.grant_ns,
            )
        return account

    def remove_other_grants(self) -> None:
        """An identity granted in another namespace (``grant_namespace``) keeps one grant: a RoleBinding
        of it in any namespace but ``grant_namespace`` (its cluster moved to another environment) is
        deleted, once the consumer has the credential of the new one; on removal too (the annotation
        may still name the first environment when an earlier version wrote it)."""
        spec = self.spec
        if spec.grant_ns == spec.namespace:
            return
        selector = labels.selector(credential=spec.credential, cluster=spec.cluster, access=spec.access)
        for binding in self.cluster.list(ROLE_BINDING, None, label_selector=selector):
            namespace, name = binding["metadata"]["namespace"], binding["metadata"]["name"]
            if name == spec.binding and namespace != spec.grant_ns:
                self.writes.write(
                    "registry cluster",
                    f"delete RoleBinding {namespace}/{name} (a grant of {spec.identity_path} outside {spec.grant_ns})",
                    self.cluster.delete,
                    ROLE_BINDING,
                    name,
                    namespace,
                )

    def new_generation(self, account: dict | None, binding: dict | None, number: int, why: str) -> NewGeneration:
        spec = self.spec
        account = self.ensure_identity(account, binding)
        name = labels.generation_name(spec.identity, number)
        meta: dict[str, Any] = {
            "name": name,
            "namespace": spec.namespace,
            "labels": dict(labels.base_labels(spec.credential, spec.cluster, spec.access), **{labels.LABEL_IDENTITY: spec.identity}),
            "annotations": {labels.ANNOTATION_ACCOUNT_UID: account["metadata"]["uid"]},
        }
        if spec.token_type == labels.TOKEN_LONG_LIVED:
            meta["annotations"]["kubernetes.io/service-account.name"] = spec.identity
            body = {"metadata": meta, "type": SECRET_TYPE_TOKEN}
        else:
            meta["annotations"][labels.ANNOTATION_EXPIRES] = labels.expires_text(self.now + spec.duration)
            meta["annotations"][labels.ANNOTATION_AUDIENCE] = spec.audience_text
            body = {"metadata": meta, "type": SECRET_TYPE_OPAQUE}
        created = self.writes.write(
            "registry cluster", f"create generation Secret {spec.namespace}/{name} ({why})", self.cluster.create, SECRET, body, spec.namespace
        )
        if self.check_mode:
            return NewGeneration({"metadata": dict(meta, uid="(new)")}, None, None)
        generation = created
        if spec.token_type == labels.TOKEN_LONG_LIVED:
            return NewGeneration(generation, self.wait_for_long_lived(name), None)
        token, expires = mint_bound_token(self.cluster, spec.identity_path, spec.duration, name, generation["metadata"]["uid"], audiences=spec.audiences)
        self.mask(token)
        if expires is not None:
            patch = {"metadata": {"annotations": {labels.ANNOTATION_EXPIRES: labels.expires_text(expires)}}}
            self.cluster.patch(SECRET, name, spec.namespace, patch, MERGE)
        return NewGeneration(generation, token, expires)

    def wait_for_long_lived(self, name: str) -> str:
        spec = self.spec
        deadline = time.monotonic() + LONG_LIVED_WAIT
        while True:
            secret = self.cluster.get(SECRET, name, spec.namespace)
            token = long_lived_token(secret, spec.identity_path) if secret else None
            if token:
                self.mask(token)
                return token
            if time.monotonic() > deadline:
                raise CredentialsError(
                    f"the token controller did not fill the token Secret {spec.namespace}/{name} "
                    f"within {LONG_LIVED_WAIT}s (is kube-controller-manager's token controller running?)"
                )
            time.sleep(0.5)

    def revoke(self, generation: dict) -> None:
        spec = self.spec
        name = generation["metadata"]["name"]
        self.revoked.append(f"{spec.namespace}/{name}")
        self.writes.write(
            "registry cluster",
            f"revoke generation {spec.namespace}/{name} (delete its Secret)",
            self.cluster.delete,
            SECRET,
            name,
            spec.namespace,
            missing_ok=True,
        )

    def retire(self, generation: dict, after: float) -> None:
        spec = self.spec
        name = generation["metadata"]["name"]
        after = int(after)
        self.retired.append(f"{spec.namespace}/{name}")
        self.writes.write(
            "registry cluster",
            f"mark generation {spec.namespace}/{name} for revocation in {max(0, int(after - self.now))}s",
            self.cluster.patch,
            SECRET,
            name,
            spec.namespace,
            {"metadata": {"annotations": {labels.ANNOTATION_REVOKE_AFTER: str(after)}}},
            MERGE,
        )
