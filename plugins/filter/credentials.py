# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What the credentials role makes, removes and reports, and how long a rotation keeps the old
generation (documented in credentials_wanted.yml, credentials_consumer_objects.yml,
credentials_stale.yml, credentials_outcome.yml and credentials_rotation_grace.yml beside this file)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.module_utils.credentials.labels import (
    ACCESS_PULL,
    ACCESS_PUSH,
    ANNOTATION_GRANT_NAMESPACE,
    LABEL_ACCESS,
    LABEL_CLUSTER,
    identity_name,
)

#: consumer_cluster_node_rollout_timeout's default (roles/consumer_cluster/defaults/main.yml).
NODE_ROLLOUT_TIMEOUT = 900


def _in_scope(cluster, scope):
    """An empty ``scope`` (credentials_clusters) means every consumer cluster."""
    return not scope or cluster in scope


def credentials_wanted(topology, scope, pull_namespace, pull_secret_name, push_secret_name, global_pull_secret, integrated_registry):
    """Every credential the inventory asks for, in inventory order: per consumer cluster of
    ``scope``, its pull credential (for its environment's registry, written where its ``pull``
    entries say and as ``global_pull_secret``), then a push credential per build namespace."""
    if not isinstance(topology, dict) or not isinstance(topology.get("consumer_clusters"), list):
        raise AnsibleFilterError(
            f"credentials_wanted takes the topology of validate_inventory (its consumer_clusters and environments), not {type(topology).__name__}"
        )
    global_namespace, global_name = global_pull_secret.split("/")  # namespace/name: checked by the role
    wanted = []
    for cluster in topology["consumer_clusters"]:
        if not _in_scope(cluster["name"], scope):
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


def credentials_stale(made, wanted, scope, revoke_retired):
    """What the inventory no longer asks for, among ``made`` (the registry cluster's ServiceAccounts
    labelled as this role's identities): ``{"stale": [...], "superseded": [...]}``, each item
    ``{"cluster", "access", "namespace", "grant_namespace", "superseded"}``.

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


def credentials_outcome(results, superseded, global_pull_secret):
    """What the playbooks need next: ``{"written": {cluster: namespace/name of the Secret written
    as its global pull secret}, "retired": [namespace/name of each generation left valid]}`` from
    the results of registry_credential over the wanted credentials and the superseded identities
    (their generations are the ``segmented-pull-<cluster>`` ones)."""
    written = {}
    for result in results:
        if result["item"]["access"] == ACCESS_PULL and "secrets" in result:
            for secret in result["secrets"]:
                if secret == global_pull_secret:
                    written[result["item"]["cluster"]] = secret
                    break
    retired = [name for result in results for name in result["retired"]]
    retired += [f"{item['namespace']}/{identity_name(ACCESS_PULL, item['cluster'])}" for item in superseded]
    return {"written": written, "retired": retired}


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
            "credentials_outcome": credentials_outcome,
            "credentials_rotation_grace": credentials_rotation_grace,
        }
