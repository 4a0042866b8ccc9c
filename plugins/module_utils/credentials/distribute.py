# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""One registry credential: minted on the registry cluster, written to a consumer cluster.

``Credential.run`` reads both clusters and checks everything first (namespaces, service accounts,
rights, Secrets of someone else's in the way); only then does it write, in an order that never
leaves a consumer without a working credential and never links a Secret that was not written:

1. registry cluster: the identity (ServiceAccount) and its RoleBinding, then, when needed, a new
   generation Secret and its token;
2. consumer cluster: the ``kubernetes.io/dockerconfigjson`` Secret in each target namespace, then
   the links to the service accounts, then the Secrets of this credential in namespaces no longer
   targeted (unlinked first, then deleted);
3. registry cluster: generations replaced in this run are revoked (their Secret deleted) or, with a
   grace period, marked ``revoke-after``; generations whose grace period is over are revoked, and
   with ``revoke_retired`` every generation marked by an earlier run.

A generation is kept while it is far from expiry (``renew_before``), so a run with nothing to do
writes nothing. Tokens never leave this module: results and diffs name Secrets and generations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.segmented.registry.plugins.module_utils.cluster import NAMESPACE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials import access, dockerconfig, labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.calls import Writes
from ansible_collections.segmented.registry.plugins.module_utils.credentials.consumer import ConsumerSide
from ansible_collections.segmented.registry.plugins.module_utils.credentials.registry import SECRET_TYPE_OPAQUE, SECRET_TYPE_TOKEN, RegistrySide
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import (
    CredentialsError,
    long_lived_token,
)
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import STATE_PRESENT, Spec, Target

RENEW_REASON = "its token is within renew_before of its expiry"
AUDIENCE_REASON = "its token was minted for another audience"
DURATION_REASON = "its token expires later than duration allows"
NO_GENERATION_REASON = "no generation yet"


@dataclass(frozen=True)
class Generations:
    """The generation Secrets of a credential's identity."""

    #: The newest generation not marked for revocation, or None.
    current: dict | None
    #: Every other generation, oldest first.
    others: list[dict]
    #: The highest generation number, marked ones included (0: none yet).
    highest: int


@dataclass(frozen=True)
class TargetState:
    """A target namespace as the consumer cluster has it."""

    target: Target
    #: This credential's Secret there, or None.
    secret: dict | None
    #: The target's service accounts that exist, by name.
    accounts: dict[str, dict]


@dataclass(frozen=True)
class Preflight:
    """What ``state=present`` finds on both clusters before it writes anything."""

    #: The identity (ServiceAccount) and its RoleBinding on the registry cluster, or None.
    account: dict | None
    binding: dict | None
    generations: Generations
    #: The consumer's target namespaces, by name.
    targets: dict[str, TargetState]
    #: The Secrets of this credential on the consumer cluster in namespaces no longer targeted.
    stale: list[dict]


class Credential:
    """One credential run. ``registry`` and ``consumer`` are the two clusters (``consumer`` may be
    None with ``state=absent``: only the registry side is then revoked). ``mask(value)`` registers a
    secret value with the module (no_log). The consumer cluster's part is ``consumer``, a
    ``consumer.ConsumerSide`` (None without a consumer cluster)."""

    def __init__(
        self,
        spec: Spec,
        registry: Cluster,
        consumer: Cluster | None = None,
        check_mode: bool = False,
        mask: Callable[[str], Any] | None = None,
        now: float | None = None,
    ) -> None:
        self.spec = spec
        self.check_mode = check_mode
        self.mask = mask or (lambda value: None)
        self.now = time.time() if now is None else now
        self.writes = Writes(check_mode)
        self.changes = self.writes.changes
        self.registry = RegistrySide(spec, registry, self.writes, check_mode, self.mask, self.now)
        self.consumer = ConsumerSide(spec, consumer, self.writes) if consumer is not None else None
        self.warnings: list[str] = []
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    # -- reading ------------------------------------------------------------------------------

    def _consumer(self) -> ConsumerSide:
        """The consumer side, which ``state=present`` needs."""
        if self.consumer is None:
            raise CredentialsError("state=present needs the consumer cluster (option cluster). Nothing was changed")
        return self.consumer

    def _check_rights(self) -> None:
        spec = self.spec
        present = spec.state == STATE_PRESENT
        missing = access.missing(self.registry.cluster, access.registry_rules(spec.namespace, present, spec.grant_ns))
        if missing:
            raise CredentialsError(access.problem("registry cluster", missing))
        if self.consumer is None:
            return
        namespaces = [target.namespace for target in spec.targets]
        missing = access.missing(self.consumer.cluster, access.consumer_rules(namespaces, present))
        if missing:
            raise CredentialsError(access.problem(f"cluster {spec.cluster}", missing))

    def generations(self) -> Generations:
        """The generation Secrets of the identity on the registry cluster."""
        spec = self.spec
        generations = []
        for secret in self.registry.cluster.list(SECRET, spec.namespace, label_selector=labels.selector(identity=spec.identity)):
            number = labels.generation_number(secret["metadata"]["name"], spec.identity)
            if number is not None:
                generations.append((number, secret))
        generations.sort(key=lambda pair: pair[0])
        live = [secret for _number, secret in generations if labels.ANNOTATION_REVOKE_AFTER not in (secret["metadata"].get("annotations") or {})]
        current = live[-1] if live else None
        others = [secret for _number, secret in generations if secret is not current]
        highest = generations[-1][0] if generations else 0
        return Generations(current, others, highest)

    # -- present ------------------------------------------------------------------------------

    def _generation_usable(self, generation: dict | None, account: dict | None) -> str | None:
        """Why the current generation cannot be kept, or None."""
        spec = self.spec
        if generation is None:
            return NO_GENERATION_REASON
        annotations = generation["metadata"].get("annotations") or {}
        kind = generation.get("type")
        if spec.rotate:
            return "rotation asked for"
        if account is None:
            return "the identity does not exist"
        if spec.token_type == labels.TOKEN_BOUND:
            if kind != SECRET_TYPE_OPAQUE:
                return "token_type changed to bound"
            if annotations.get(labels.ANNOTATION_ACCOUNT_UID) != account["metadata"]["uid"]:
                return "the identity was made again"
            if annotations.get(labels.ANNOTATION_AUDIENCE, "") != spec.audience_text:
                return AUDIENCE_REASON
            expires = labels.expires_epoch(annotations.get(labels.ANNOTATION_EXPIRES))
            if not labels.keep_generation(expires, spec.renew_before, self.now):
                return RENEW_REASON
            if labels.outlives_duration(expires, spec.duration, self.now):
                return DURATION_REASON
        else:
            if kind != SECRET_TYPE_TOKEN:
                return "token_type changed to long_lived"
            if annotations.get("kubernetes.io/service-account.uid") not in (None, account["metadata"]["uid"]):
                return "the identity was made again"
        return None

    def _missing(self, problem: str) -> None:
        """A namespace or service account the credential needs is not there: an error that changes
        nothing, except in check mode, where an earlier step of the same run would have made it
        (the registry-cluster role, ``credentials_create_missing``) and the preview goes on with a
        warning that says so."""
        if not self.check_mode:
            raise CredentialsError(problem + " Nothing was changed")
        self.warnings.append(
            problem + " Check mode previews the credential as if an earlier step of the run had made it; a real run without that step fails here"
        )

    def preflight(self) -> Preflight:
        """Everything ``state=present`` reads and checks before it writes (raises ``CredentialsError``
        for what is missing or in the way)."""
        spec = self.spec
        consumer = self._consumer()
        registry = self.registry.cluster
        if registry.get(NAMESPACE, spec.namespace) is None:
            what = "environment" if spec.access == labels.ACCESS_PULL else "build namespace"
            self._missing(
                f"namespace {spec.namespace} (the {what}) does not exist on the registry cluster; "
                "deploy the environment registries first (playbooks/registry_cluster.yml) or create "
                "the build namespace there."
            )
        if spec.grant_ns != spec.namespace and registry.get(NAMESPACE, spec.grant_ns) is None:
            self._missing(
                f"grant_namespace {spec.grant_ns} does not exist on the registry cluster; deploy the "
                "environment registries first (playbooks/registry_cluster.yml)."
            )
        account = registry.get(SERVICE_ACCOUNT, spec.identity, spec.namespace)
        binding = registry.get(ROLE_BINDING, spec.binding, spec.grant_ns)
        generations = self.generations()
        targets = {}
        for target in spec.targets:
            if consumer.cluster.get(NAMESPACE, target.namespace) is None:
                self._missing(
                    f"cluster {spec.cluster}: namespace {target.namespace} does not exist; create it "
                    "or remove it from the credential's targets (segmented_registry_credentials)."
                )
            accounts = {}
            for name in target.service_accounts:
                found = consumer.cluster.get(SERVICE_ACCOUNT, name, target.namespace)
                if found is None:
                    self._missing(
                        f"cluster {spec.cluster}: service account {target.namespace}/{name} does not exist; "
                        "create it (oc create serviceaccount) or remove it from segmented_registry_credentials."
                    )
                    continue
                accounts[name] = found
            name = spec.secret_of(target)
            secret = consumer.cluster.get(SECRET, name, target.namespace)
            consumer.check_foreign(target.namespace, name, secret)
            targets[target.namespace] = TargetState(target, secret, accounts)
        wanted = {(target.namespace, spec.secret_of(target)) for target in spec.targets}
        stale = [secret for secret in consumer.owned() if (secret["metadata"]["namespace"], secret["metadata"]["name"]) not in wanted]
        return Preflight(account, binding, generations, targets, stale)

    def present(self) -> dict[str, Any]:
        """Mint (when needed), distribute, link, and revoke what was replaced; the result."""
        spec = self.spec
        consumer = self._consumer()
        found = self.preflight()
        account, binding, stale = found.account, found.binding, found.stale
        current, others = found.generations.current, found.generations.others
        targets = found.targets.values()

        # Which generation, and where its token comes from.
        why_new = self._generation_usable(current, account)
        token, expires = None, None
        if why_new is None and current is not None:
            expires = labels.expires_epoch((current["metadata"].get("annotations") or {}).get(labels.ANNOTATION_EXPIRES))
            if any(not consumer.up_to_date(state.secret, current) for state in targets):
                # the token is read back only from a Secret this credential wrote where it writes
                # it (a target's name, checked as ours above), never from any Secret that merely
                # carries the labels
                sources = [state.secret for state in targets if state.secret is not None and consumer.up_to_date(state.secret, current)]
                if current.get("type") == SECRET_TYPE_TOKEN:
                    token = long_lived_token(current, spec.identity_path)
                elif sources:
                    token = consumer.token_of(sources[0])
                    expires = labels.expires_epoch((sources[0]["metadata"].get("annotations") or {}).get(labels.ANNOTATION_EXPIRES))
                else:
                    why_new = "no copy of its token is left on the cluster to write into a new namespace"
        self.before = {
            "generation": _name(current),
            "expires": _expiry(current),
            "secrets": {f"{state.target.namespace}/{spec.secret_of(state.target)}": _summary(state.secret) for state in targets},
        }
        self.before["secrets"].update({f"{s['metadata']['namespace']}/{s['metadata']['name']}": _summary(s) for s in stale})
        replaced = []
        if why_new is None and current is not None:
            generation = current
            self.registry.ensure_identity(account, binding)
        else:
            # why_new is set here: it is None only with a current generation (_generation_usable)
            replaced = [current] if current is not None else []
            made = self.registry.new_generation(account, binding, found.generations.highest + 1, why_new or NO_GENERATION_REASON)
            generation, token, expires = made.generation, made.token, made.expires
        if token:
            for form in dockerconfig.secret_forms(labels.USERNAME, token, spec.registry):
                self.mask(form)

        # The consumer's Secrets, then the links.
        secrets = []
        for state in targets:
            secrets.append(f"{state.target.namespace}/{spec.secret_of(state.target)}")
            consumer.write_secret(state.target, state.secret, generation, token, expires)
        for state in targets:
            consumer.link(state.target, state.secret, state.accounts)
        for secret in stale:
            consumer.remove_secret(secret)

        # Revocations on the registry cluster. A generation replaced by rotation stays valid for
        # the grace period; one replaced because it neared its expiry, or because the duration was
        # shortened, stays valid until its expiry but no longer than the new duration; any other
        # is revoked now. One retired by an earlier run is revoked once its grace period is over,
        # or now with revoke_retired (the caller says its holders have the current generation).
        for old in replaced + [item for item in others if item not in replaced]:
            annotations = old["metadata"].get("annotations") or {}
            old_expires = labels.expires_epoch(annotations.get(labels.ANNOTATION_EXPIRES))
            if labels.ANNOTATION_REVOKE_AFTER in annotations:
                if spec.revoke_retired or labels.due_for_revocation(annotations, self.now):
                    self.registry.revoke(old)
            elif old in replaced and spec.rotate and spec.grace > 0:
                self.registry.retire(old, self.now + spec.grace)
            elif (
                old in replaced
                and why_new in (RENEW_REASON, DURATION_REASON)
                and old.get("type") == SECRET_TYPE_OPAQUE
                and old_expires
                and old_expires > self.now
            ):
                self.registry.retire(old, min(old_expires, self.now + spec.duration))
            else:
                self.registry.revoke(old)
        self.registry.remove_other_grants()
        name = generation["metadata"]["name"] if generation else None
        self.after = {
            "generation": name,
            "expires": labels.expires_text(expires) if name else None,
            "secrets": {
                f"{state.target.namespace}/{spec.secret_of(state.target)}": {
                    "generation": f"{spec.namespace}/{name}",
                    "registry": spec.registry,
                    "linked": labels.linked_text(state.target.service_accounts),
                }
                for state in targets
            },
        }
        return {
            "identity": spec.identity_path,
            "generation": name,
            "new_generation": why_new is not None,
            "reason": why_new,
            "expires": expires,
            "secrets": secrets,
            "revoked": self.registry.revoked,
            "retired": self.registry.retired,
        }

    # -- absent -------------------------------------------------------------------------------

    def absent(self) -> dict[str, Any]:
        """Remove the credential: its Secrets on the consumer, every generation, the grants and the identity; the result."""
        spec = self.spec
        generations = self.generations()
        current, others = generations.current, generations.others
        account = self.registry.cluster.get(SERVICE_ACCOUNT, spec.identity, spec.namespace)
        binding = self.registry.cluster.get(ROLE_BINDING, spec.binding, spec.grant_ns)
        self.before = {"generation": _name(current), "identity": spec.identity_path if account else None}
        self.after = {"generation": None, "identity": None}
        secrets = []
        if self.consumer is not None:
            for secret in self.consumer.ours({"credential": spec.credential, "cluster": spec.cluster}):
                if (secret["metadata"].get("annotations") or {}).get(labels.ANNOTATION_IDENTITY) == spec.identity_path:
                    secrets.append(f"{secret['metadata']['namespace']}/{secret['metadata']['name']}")
                    self.consumer.remove_secret(secret)
        for generation in ([current] if current else []) + others:
            self.registry.revoke(generation)
        if binding is not None:
            self.writes.write(
                "registry cluster", f"delete RoleBinding {spec.binding_path}", self.registry.cluster.delete, ROLE_BINDING, spec.binding, spec.grant_ns
            )
        self.registry.remove_other_grants()
        if account is not None:
            self.writes.write(
                "registry cluster",
                f"delete ServiceAccount {spec.identity_path}",
                self.registry.cluster.delete,
                SERVICE_ACCOUNT,
                spec.identity,
                spec.namespace,
            )
        return {"identity": spec.identity_path, "generation": None, "secrets": secrets, "revoked": self.registry.revoked, "retired": []}

    # -- one run ------------------------------------------------------------------------------

    def diff(self) -> dict[str, dict]:
        """Before and after, with generation names, expiries, registries and links: never a token."""
        return {"before": self.before, "after": self.after}

    def run(self) -> dict[str, Any]:
        """The result (``changed``, ``changes``, what was made or removed); raises ``CredentialsError``."""
        self._check_rights()
        result = self.present() if self.spec.state == STATE_PRESENT else self.absent()
        result["changed"] = bool(self.changes)
        result["changes"] = list(self.changes)
        return result


def _name(secret: dict | None) -> str | None:
    return secret["metadata"]["name"] if secret else None


def _expiry(generation: dict | None) -> str | None:
    if not generation:
        return None
    return (generation["metadata"].get("annotations") or {}).get(labels.ANNOTATION_EXPIRES, labels.NEVER)


def _summary(secret: dict | None) -> dict[str, str] | None:
    """What a diff shows of a consumer Secret: which generation and registry it holds, and its links."""
    if secret is None:
        return None
    annotations = secret["metadata"].get("annotations") or {}
    return {
        "generation": annotations.get(labels.ANNOTATION_GENERATION),
        "registry": annotations.get(labels.ANNOTATION_REGISTRY),
        "linked": annotations.get(labels.ANNOTATION_LINKED, ""),
    }
