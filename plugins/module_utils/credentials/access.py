# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Does the caller hold the rights a run needs? SelfSubjectAccessReviews, before anything is written."""

from __future__ import annotations

from typing import Any, Iterable

from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster


def rule(verb: str, resource: str, namespace: str | None = None, group: str = "", subresource: str | None = None) -> dict[str, Any]:
    """One right to check: ``verb`` on ``resource`` (``group``) in ``namespace`` (None: cluster-wide)."""
    return {"verb": verb, "resource": resource, "namespace": namespace, "group": group, "subresource": subresource}


def describe(item: dict[str, Any]) -> str:
    """A rule as an error names it: ``verb resource[/subresource][.group] where``."""
    resource = item["resource"] + (f"/{item['subresource']}" if item.get("subresource") else "")
    if item.get("group"):
        resource += f".{item['group']}"
    where = f"in namespace {item['namespace']}" if item.get("namespace") else "cluster-wide"
    return f"{item['verb']} {resource} {where}"


def missing(cluster: Cluster, rules: Iterable[dict[str, Any]]) -> list[str]:
    """The rules of ``rules`` the caller does not hold on ``cluster``, described (``verb resource
    where``). Raises ``ClusterError`` when the review itself cannot be made."""
    result = []
    for item in rules:
        attributes = {
            key: value
            for key, value in (
                ("verb", item["verb"]),
                ("resource", item["resource"]),
                ("group", item.get("group") or ""),
                ("namespace", item.get("namespace")),
                ("subresource", item.get("subresource")),
            )
            if value is not None
        }
        allowed, _reason = cluster.access_review(attributes)
        if not allowed:
            result.append(describe(item))
    return result


def registry_rules(namespace: str, state_present: bool = True, grant_namespace: str | None = None) -> list[dict[str, Any]]:
    """What a credential needs on the registry cluster: in the identity's namespace, and for its
    RoleBinding in ``grant_namespace`` (None: the identity's)."""
    grant_namespace = grant_namespace or namespace
    rules = [
        rule("get", "namespaces", None),
        rule("get", "serviceaccounts", namespace),
        rule("patch", "serviceaccounts", namespace),
        rule("list", "secrets", namespace),
        rule("delete", "secrets", namespace),
        rule("get", "rolebindings", grant_namespace, "rbac.authorization.k8s.io"),
        rule("delete", "rolebindings", grant_namespace, "rbac.authorization.k8s.io"),
        rule("delete", "serviceaccounts", namespace),
    ]
    if grant_namespace != namespace:  # the identity's grants elsewhere (its cluster moved to another environment)
        rules += [rule("list", "rolebindings", None, "rbac.authorization.k8s.io")]
    if state_present:
        rules += [
            rule("create", "serviceaccounts", namespace),
            rule("create", "secrets", namespace),
            rule("patch", "secrets", namespace),
            rule("create", "serviceaccounts", namespace, subresource="token"),
            rule("create", "rolebindings", grant_namespace, "rbac.authorization.k8s.io"),
        ]
    return rules


def consumer_rules(namespaces: Iterable[str], state_present: bool = True) -> list[dict[str, Any]]:
    """What a credential needs on the consumer cluster: its Secrets and the service accounts they
    are linked to in each target namespace, and finding what it made before (cluster-wide list)."""
    rules = [rule("get", "namespaces", None), rule("list", "secrets", None), rule("list", "serviceaccounts", None)]
    for namespace in namespaces:
        rules += [
            rule("get", "secrets", namespace),
            rule("delete", "secrets", namespace),
            rule("patch", "secrets", namespace),
            rule("get", "serviceaccounts", namespace),
            rule("patch", "serviceaccounts", namespace),
        ]
        if state_present:
            rules += [rule("create", "secrets", namespace), rule("update", "secrets", namespace)]
    return rules


def problem(where: str, missing_rights: Iterable[str], user: str | None = None) -> str:
    """The error of rights the caller lacks on ``where``, naming each and how to grant them."""
    who = f" ({user})" if user else ""
    return (
        f"{where}: the credentials used{who} lack rights this run needs: {'; '.join(missing_rights)}. Grant them "
        "(for example cluster-admin, or a ClusterRole with these verbs) and run again; nothing was changed"
    )
