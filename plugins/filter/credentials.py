# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the credentials role makes, removes and reports, which consumer clusters it leaves out, and
how long a rotation keeps the old generation (documented in credentials_wanted.yml,
credentials_consumer_objects.yml, credentials_stale.yml, credentials_batch.yml, credentials_outcome.yml,
credentials_left_out.yml and credentials_rotation_grace.yml beside this file)."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.segmented.registry.plugins.module_utils.credentials.labels import (
    ACCESS_PULL,
    ACCESS_PUSH,
    ANNOTATION_GRANT_NAMESPACE,
    LABEL_ACCESS,
    LABEL_CLUSTER,
    TOKEN_LONG_LIVED,
    identity_name,
)
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import STATE_ABSENT, STATE_PRESENT
from ansible_collections.segmented.registry.plugins.module_utils.names import split_namespaced

#: consumer_cluster_node_rollout_timeout's default (roles/consumer_cluster/defaults/main.yml).
NODE_ROLLOUT_TIMEOUT = 900


def _in_scope(cluster, scope):
    """An empty ``scope`` (credentials_clusters) means every consumer cluster."""
    return not scope or cluster in scope


def _settings_problem(topology, scope, global_pull_secret, integrated_registry, token_type):
    """Why the role's own settings cannot make the credentials the inventory asks for, naming the
    setting and the fix; None when they can."""
    if token_type == TOKEN_LONG_LIVED:
        return (
            "credentials_token_type: long_lived cannot make the consumers' pull credentials: the environment "
            "registries' token server accepts only tokens minted for its audience (segmented.registry/token-server), "
            "and a long-lived token Secret holds an API token. Use credentials_token_type bound (the default)."
        )
    consumers = [cluster["name"] for cluster in topology["consumer_clusters"]]
    unknown = [name for name in scope if name not in consumers]
    if unknown:
        return (
            "credentials_clusters: {} {} of the inventory (a host with segmented_registry_environment); use {}, "
            "or leave credentials_clusters empty for all.".format(
                ", ".join(unknown),
                "is not a consumer cluster" if len(unknown) == 1 else "are not consumer clusters",
                ", ".join(consumers) or "none defined",
            )
        )
    if split_namespaced(global_pull_secret) is None:
        return f"credentials_global_pull_secret {global_pull_secret} is not namespace/name, like openshift-config/segmented-registry-pull."
    if not integrated_registry and any(cluster["credentials"]["builders"] for cluster in topology["consumer_clusters"]):
        return (
            "credentials_integrated_registry is empty but segmented_registry_credentials names builders: "
            "set segmented_registry_integrated_registry on the registry cluster."
        )
    return None


def credentials_wanted(topology, scope, pull_namespace, pull_secret_name, push_secret_name, global_pull_secret, integrated_registry, token_type, leave_out=()):
    """Every credential the inventory asks for, in inventory order: per consumer cluster of
    ``scope`` not in ``leave_out`` (nothing of a left-out cluster is minted or written), its pull
    credential (for its environment's registry, written where its ``pull`` entries say and as
    ``global_pull_secret``), then a push credential per build namespace.

    The role's settings are checked first: ``token_type`` long_lived (which cannot make a pull
    credential), a cluster of ``scope`` that is no consumer, ``global_pull_secret`` not
    ``namespace/name``, builders without an ``integrated_registry``: each an error naming the
    setting and the fix, raised before the role writes anything."""
    if not isinstance(topology, dict) or not isinstance(topology.get("consumer_clusters"), list):
        raise AnsibleFilterError(
            f"credentials_wanted takes the topology of validate_inventory (its consumer_clusters and environments), not {type(topology).__name__}"
        )
    problem = _settings_problem(topology, scope, global_pull_secret, integrated_registry, token_type)
    if problem:
        raise AnsibleFilterError(f"{problem} Nothing was changed.")
    global_namespace, global_name = split_namespaced(global_pull_secret)
    wanted = []
    for cluster in topology["consumer_clusters"]:
        if not _in_scope(cluster["name"], scope) or cluster["name"] in leave_out:
            continue
        environment = topology["environments"][cluster["environment"]]
        wanted.append(
            {
                "cluster": cluster["name"],
                "access": ACCESS_PULL,
                "namespace": pull_namespace,
                "grant_namespace": environment["namespace"],
                "registry": environment["endpoint"],
                "secret_name": pull_secret_name,
                "targets": cluster["credentials"]["pull"] + [{"namespace": global_namespace, "secret_name": global_name, "service_accounts": []}],
            }
        )
        for builder in cluster["credentials"]["builders"]:
            wanted.append(
                {
                    "cluster": cluster["name"],
                    "access": ACCESS_PUSH,
                    "namespace": builder["namespace"],
                    "registry": integrated_registry,
                    "secret_name": push_secret_name,
                    "targets": [{"namespace": builder["namespace"], "service_accounts": [builder["service_account"]]}],
                }
            )
    return wanted


def credentials_consumer_objects(wanted, check_mode):
    """Per target namespace of ``wanted`` on a consumer (the global pull secret's excepted): the
    Namespace and its service accounts, as ``{"cluster", "namespace", "service_accounts",
    "objects"}``. In check mode only the Namespace: the API server refuses a dry run of a service
    account in a namespace that does not exist yet."""
    out = []
    for credential in wanted:
        for target in credential["targets"]:
            if "secret_name" in target:
                continue
            objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target["namespace"]}}]
            if not check_mode:
                objects += [
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": target["namespace"]}}
                    for name in target["service_accounts"]
                ]
            out.append({"cluster": credential["cluster"], "namespace": target["namespace"], "service_accounts": target["service_accounts"], "objects": objects})
    return out


def credentials_stale(made, wanted, scope, revoke_retired, leave_out=()):
    """What the inventory no longer asks for, among ``made`` (the registry cluster's ServiceAccounts
    labelled as this role's identities): ``{"stale": [...], "superseded": [...]}``, each item
    ``{"cluster", "access", "namespace", "grant_namespace", "superseded"}``. An identity of a cluster
    in ``leave_out`` is neither: nothing of a left-out cluster is revoked or removed.

    A pull identity of a cluster that still has a pull credential (an earlier version's, elsewhere)
    is superseded: it holds the generation the nodes may still use, so it is removed only with
    ``revoke_retired`` (then everything is stale and nothing superseded)."""
    wanted_keys = {(item["namespace"], item["access"], item["cluster"]) for item in wanted}
    pulling = {item["cluster"] for item in wanted if item["access"] == ACCESS_PULL}
    found = []
    for account in made:
        meta = account["metadata"]
        cluster = meta["labels"][LABEL_CLUSTER]
        access = meta["labels"].get(LABEL_ACCESS, "")
        if (
            access in (ACCESS_PULL, ACCESS_PUSH)
            and meta["name"] == identity_name(access, cluster)
            and (meta["namespace"], access, cluster) not in wanted_keys
            and _in_scope(cluster, scope)
            and cluster not in leave_out
        ):
            found.append(
                {
                    "cluster": cluster,
                    "access": access,
                    "namespace": meta["namespace"],
                    "grant_namespace": (meta.get("annotations") or {}).get(ANNOTATION_GRANT_NAMESPACE, meta["namespace"]),
                    "superseded": access == ACCESS_PULL and cluster in pulling,
                }
            )
    if revoke_retired:
        return {"stale": found, "superseded": []}
    return {"stale": [item for item in found if not item["superseded"]], "superseded": [item for item in found if item["superseded"]]}


#: The role's settings of a minting call (credentials_<name>), which credentials_batch puts in each element.
BATCH_SETTINGS = ("token_type", "duration", "renew_before", "rotate", "grace", "revoke_retired")


def _consumer_auth(hostvars, cluster):
    """The auth options of consumer ``cluster`` (its segmented_registry_k8s_auth; empty: the
    ``K8S_AUTH_*`` environment variables)."""
    return hostvars[cluster].get("segmented_registry_k8s_auth") or {}


def _minting(settings):
    """The options a minting element takes from the role's ``settings``: the revoking pass
    (``revoke_retired``) mints nothing, so it neither rotates nor renews (a generation minted a moment
    ago may be within a survey's renew_before)."""
    missing = [name for name in BATCH_SETTINGS if name not in (settings or {})]
    if missing:
        raise AnsibleFilterError(
            f"credentials_batch with state present needs the role's settings {', '.join(BATCH_SETTINGS)}; {', '.join(missing)} missing. Nothing was changed."
        )
    revoke_retired = boolean(settings["revoke_retired"])
    return {
        "token_type": settings["token_type"],
        "duration": int(settings["duration"]),
        "renew_before": 0 if revoke_retired else int(settings["renew_before"]),
        "rotate": boolean(settings["rotate"]) and not revoke_retired,
        "grace": int(settings["grace"]),
        "revoke_retired": revoke_retired,
    }


def credentials_batch(items, hostvars, groups_all, state, settings=None):
    """The elements of one registry_credential call (its ``credentials``) for ``items``: with
    ``state`` present, the credentials of credentials_wanted, each with its consumer's auth and the
    role's ``settings``; with ``state`` absent, the identities of credentials_stale, each with its
    consumer's auth, or none for a cluster gone from the inventory (``groups_all``): the registry
    side only."""
    if state == STATE_PRESENT:
        minting = _minting(settings)
        elements = []
        for item in items:
            element = {"cluster": _consumer_auth(hostvars, item["cluster"]), "cluster_name": item["cluster"], "access": item["access"]}
            element.update({name: item[name] for name in ("namespace", "grant_namespace") if name in item})
            element.update(registry=item["registry"], secret_name=item["secret_name"], targets=item["targets"], **minting)
            elements.append(element)
        return elements
    if state == STATE_ABSENT:
        elements = []
        for item in items:
            element = {"cluster": _consumer_auth(hostvars, item["cluster"])} if item["cluster"] in groups_all else {}
            element.update(
                cluster_name=item["cluster"], access=item["access"], namespace=item["namespace"], grant_namespace=item["grant_namespace"], state=STATE_ABSENT
            )
            elements.append(element)
        return elements
    raise AnsibleFilterError(f"credentials_batch: state {state!r} is not present or absent. Nothing was changed.")


def credentials_outcome(results, superseded, global_pull_secret):
    """What the playbooks need next: ``{"written": {cluster: namespace/name of the Secret written
    as its global pull secret}, "retired": [namespace/name of each generation left valid]}`` from
    the ``credentials`` result of one registry_credential call over the wanted credentials (each
    element named by ``cluster_name`` and ``access``; a failed one wrote and retired nothing that
    counts) and the superseded identities (their generations are the ``segmented-pull-<cluster>`` ones)."""
    written = {}
    results = [result for result in results if not result.get("failed")]  # a left-out cluster's (credentials_left_out)
    for result in results:
        if result["access"] == ACCESS_PULL and global_pull_secret in result.get("secrets", ()):
            written[result["cluster_name"]] = global_pull_secret
    retired = [name for result in results for name in result.get("retired", ())]
    retired += [f"{item['namespace']}/{identity_name(ACCESS_PULL, item['cluster'])}" for item in superseded]
    return {"written": written, "retired": retired}


def credentials_left_out(results, unreachable, leave_out):
    """The consumer clusters the role leaves out of the run, each with why: ``{cluster: why}``.

    ``unreachable`` is the ``left_out`` of validate_inventory (``{cluster: why}``, the clusters that
    did not answer), ``results`` the ``credentials`` result of the role's registry_credential call over
    the wanted credentials (its failed elements let through; each named by ``cluster_name``): a cluster
    whose credential failed is left out with the credential and the module's message. A cluster of ``leave_out``, left out by the playbook already (it failed
    earlier in the run), is not named again."""
    left_out = {cluster: why for cluster, why in unreachable.items() if cluster not in leave_out}
    for result in results:
        cluster = result["cluster_name"]
        if result.get("failed") and cluster not in leave_out:
            message = " ".join(str(result.get("msg") or "failed").split())
            why = f"its {result['access']} credential {result['namespace']} failed: {message}"
            left_out[cluster] = f"{left_out[cluster]}; {why}" if cluster in left_out else f"{cluster}: {why}"
    return left_out


def credentials_rotation_grace(hostvars, grace):
    """The seconds a rotation keeps the replaced generation valid should the run stop before it
    revokes it: ``grace`` and the longest wait for a consumer's nodes, each consumer cluster of
    ``hostvars`` (a host with ``segmented_registry_environment``) counting its own
    ``consumer_cluster_node_rollout_timeout``, or the role's default (``NODE_ROLLOUT_TIMEOUT``) when it
    sets none."""
    timeouts = [
        int(variables.get("consumer_cluster_node_rollout_timeout", NODE_ROLLOUT_TIMEOUT))
        for variables in hostvars.values()
        if "segmented_registry_environment" in variables
    ]
    return int(grace) + max(timeouts, default=NODE_ROLLOUT_TIMEOUT)


class FilterModule:
    def filters(self):
        return {
            "credentials_wanted": credentials_wanted,
            "credentials_consumer_objects": credentials_consumer_objects,
            "credentials_stale": credentials_stale,
            "credentials_batch": credentials_batch,
            "credentials_outcome": credentials_outcome,
            "credentials_left_out": credentials_left_out,
            "credentials_rotation_grace": credentials_rotation_grace,
        }
