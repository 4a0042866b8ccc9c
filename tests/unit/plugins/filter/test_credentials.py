"""The credentials role's filters (plugins/filter/credentials.py): which credentials the inventory
asks for, what goes on the consumers for them, which identities it no longer asks for, and what the
playbooks after the role read (pure logic, on the lab inventory's topology)."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.credentials import (
    FilterModule,
    credentials_consumer_objects,
    credentials_left_out,
    credentials_outcome,
    credentials_rotation_grace,
    credentials_stale,
    credentials_wanted,
)
from tests.unit.plugins.filter.lab import lab_topology

GLOBAL = "openshift-config/segmented-registry-pull"
PULL_NS = "segmented-registry-consumers"
SETTINGS = (PULL_NS, "segmented-registry-pull", "segmented-registry-push", GLOBAL, "localhost:5100", "bound")


def settings(**changes):
    """SETTINGS with some of the role's settings changed (global_pull_secret, integrated_registry, token_type)."""
    values = dict(zip(("global_pull_secret", "integrated_registry", "token_type"), SETTINGS[3:]), **changes)
    return SETTINGS[:3] + (values["global_pull_secret"], values["integrated_registry"], values["token_type"])


def pull(cluster, environment, pulls=({"namespace": "myproject", "service_accounts": ["default"]},)):
    return {"cluster": cluster, "access": "pull", "namespace": PULL_NS,
            "grant_namespace": environment,
            "registry": f"{environment}-registry.apps.registry.lab.local", "secret_name": "segmented-registry-pull",
            "targets": list(pulls) + [{"namespace": "openshift-config", "secret_name": "segmented-registry-pull",
                                       "service_accounts": []}]}


PUSH_TEST = {"cluster": "test", "access": "push", "namespace": "myproject", "registry": "localhost:5100",
             "secret_name": "segmented-registry-push",
             "targets": [{"namespace": "myproject", "service_accounts": ["builder"]}]}


def test_the_lab_asks_for_a_pull_credential_per_consumer_and_a_push_one_per_build_namespace():
    assert credentials_wanted(lab_topology(), [], *SETTINGS) == [
        pull("test", "test"), PUSH_TEST, pull("uat", "uat"), pull("prod", "prod")]


def test_the_scope_keeps_only_its_clusters_in_inventory_order():
    wanted = credentials_wanted(lab_topology(), ["prod", "test"], *SETTINGS)
    assert [(item["cluster"], item["access"]) for item in wanted] == [("test", "pull"), ("test", "push"), ("prod", "pull")]


def test_a_consumer_without_credentials_gets_only_the_global_pull_secret():
    topology = lab_topology(uat={"segmented_registry_credentials": None})
    wanted = credentials_wanted(topology, ["uat"], *SETTINGS)
    assert wanted == [pull("uat", "uat", pulls=())]


def test_nothing_of_a_left_out_cluster_is_wanted():
    wanted = credentials_wanted(lab_topology(), [], *SETTINGS, ["uat"])
    assert [(item["cluster"], item["access"]) for item in wanted] == [("test", "pull"), ("test", "push"), ("prod", "pull")]
    assert credentials_wanted(lab_topology(), ["uat", "prod"], *SETTINGS, ["uat"]) == [pull("prod", "prod")]


def test_the_topology_is_required():
    with pytest.raises(AnsibleFilterError, match="topology of validate_inventory"):
        credentials_wanted(None, [], *SETTINGS)


def test_a_long_lived_token_type_is_refused_first_naming_the_setting_and_the_fix():
    with pytest.raises(AnsibleFilterError) as error:
        credentials_wanted(lab_topology(), ["nosuch"], *settings(token_type="long_lived", global_pull_secret="bad"))
    message = str(error.value)
    assert message.startswith("credentials_token_type: long_lived cannot make the consumers' pull credentials"), message
    assert "Use credentials_token_type bound (the default). Nothing was changed." in message, message


@pytest.mark.parametrize("scope,needle", [
    (["nosuch"], "credentials_clusters: nosuch is not a consumer cluster of the inventory (a host with segmented_registry_environment); "
                 "use test, uat, prod, or leave credentials_clusters empty for all. Nothing was changed."),
    (["test", "nosuch", "registry"], "credentials_clusters: nosuch, registry are not consumer clusters of the inventory"),
], ids=["one", "two"])
def test_a_cluster_of_the_scope_that_is_no_consumer_is_refused_naming_the_consumers(scope, needle):
    with pytest.raises(AnsibleFilterError) as error:
        credentials_wanted(lab_topology(), scope, *SETTINGS)
    assert needle in str(error.value), str(error.value)


@pytest.mark.parametrize("value", ["segmented-registry-pull", "openshift-config/", "a/b/c", "Openshift-Config/pull", ""])
def test_a_global_pull_secret_that_is_not_namespace_slash_name_is_refused(value):
    with pytest.raises(AnsibleFilterError, match=f"^credentials_global_pull_secret {value} is not namespace/name, "
                                                 "like openshift-config/segmented-registry-pull. Nothing was changed.$"):
        credentials_wanted(lab_topology(), [], *settings(global_pull_secret=value))


def test_builders_without_an_integrated_registry_are_refused():
    with pytest.raises(AnsibleFilterError, match="^credentials_integrated_registry is empty but segmented_registry_credentials names builders: "
                                                 "set segmented_registry_integrated_registry on the registry cluster. Nothing was changed.$"):
        credentials_wanted(lab_topology(), [], *settings(integrated_registry=""))


def test_no_integrated_registry_is_needed_without_builders():
    topology = lab_topology(test={"segmented_registry_credentials": {"pull": ["myproject/default"]}})
    wanted = credentials_wanted(topology, [], *settings(integrated_registry=""))
    assert [item["access"] for item in wanted] == ["pull", "pull", "pull"]


def test_each_target_namespace_but_the_global_pull_secrets_gets_its_namespace_and_accounts():
    wanted = credentials_wanted(lab_topology(), ["test"], *SETTINGS)
    assert credentials_consumer_objects(wanted, False) == [
        {"cluster": "test", "namespace": "myproject", "service_accounts": ["default"],
         "objects": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "myproject"}},
                     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "myproject"}}]},
        {"cluster": "test", "namespace": "myproject", "service_accounts": ["builder"],
         "objects": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "myproject"}},
                     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "myproject"}}]}]


def test_check_mode_makes_only_the_namespaces():
    wanted = credentials_wanted(lab_topology(), ["test"], *SETTINGS)
    assert [item["objects"] for item in credentials_consumer_objects(wanted, True)] == [
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "myproject"}}]] * 2


def identity(access, cluster, namespace=PULL_NS, grant=None, name=None):
    annotations = {"segmented.registry/grant-namespace": grant} if grant else None
    return {"metadata": {"name": name or f"segmented-{access}-{cluster}", "namespace": namespace, "annotations": annotations,
                         "labels": {"app.kubernetes.io/managed-by": "segmented.registry", "segmented.registry/credential": access,
                                    "segmented.registry/cluster": cluster, "segmented.registry/access": access}}}


def stale_item(cluster, access="pull", namespace=PULL_NS, grant=PULL_NS, superseded=False):
    return {"cluster": cluster, "access": access, "namespace": namespace, "grant_namespace": grant, "superseded": superseded}


WANTED = credentials_wanted(lab_topology(), [], *SETTINGS)
MADE = [identity("pull", "test", grant="test"), identity("push", "test", namespace="myproject"),
        identity("pull", "uat", grant="uat"), identity("pull", "prod")]


def test_what_the_inventory_asks_for_is_not_stale():
    assert credentials_stale(MADE, WANTED, [], False) == {"stale": [], "superseded": []}


def test_a_cluster_or_build_namespace_no_longer_named_is_stale():
    made = MADE + [identity("pull", "old", grant="test"), identity("push", "test", namespace="gone")]
    assert credentials_stale(made, WANTED, [], False) == {
        "stale": [stale_item("old", grant="test"),
                  stale_item("test", "push", namespace="gone", grant="gone")],
        "superseded": []}


def test_an_earlier_pull_identity_of_a_pulling_cluster_is_superseded_until_revoke_retired():
    made = MADE + [identity("pull", "test", namespace="test")]
    earlier = stale_item("test", namespace="test", grant="test", superseded=True)
    assert credentials_stale(made, WANTED, [], False) == {"stale": [], "superseded": [earlier]}
    assert credentials_stale(made, WANTED, [], True) == {"stale": [earlier], "superseded": []}


def test_out_of_scope_unnamed_or_foreign_accounts_are_left_alone():
    made = [identity("pull", "old"), identity("pull", "other", name="segmented-pull-someone-else"),
            identity("admin", "old", name="segmented-admin-old")]
    made[2]["metadata"]["labels"].pop("segmented.registry/access")
    assert credentials_stale(made, WANTED, ["test"], False) == {"stale": [], "superseded": []}
    assert credentials_stale(made[:1], WANTED, ["old"], False)["stale"] == [stale_item("old")]


def test_nothing_of_a_left_out_cluster_is_stale_or_superseded():
    """uat left out: its identities, even one the inventory no longer asks for, and its earlier pull
    identity, stay (its nodes keep the generation they have); the others' are sorted out as always."""
    wanted = credentials_wanted(lab_topology(), [], *SETTINGS, ["uat"])
    made = MADE + [identity("pull", "uat", namespace="uat"), identity("push", "uat", namespace="gone"),
                   identity("push", "test", namespace="gone")]
    expected = {"stale": [stale_item("test", "push", namespace="gone", grant="gone")], "superseded": []}
    assert credentials_stale(made, wanted, [], False, ["uat"]) == expected
    assert credentials_stale(made, wanted, [], True, ["uat"]) == expected
    # without leave_out, uat's pull identity (not wanted) and the rest of it would go
    assert {item["cluster"] for item in credentials_stale(made, wanted, [], True)["stale"]} == {"uat", "test"}


def named(item, **result):
    """One element of registry_credential's ``credentials`` result for the wanted ``item``."""
    return dict(result, cluster_name=item["cluster"], access=item["access"], namespace=item["namespace"])


def test_the_outcome_names_each_global_pull_secret_and_every_generation_left_valid():
    results = [named(WANTED[0], secrets=["myproject/segmented-registry-pull", GLOBAL],
                     retired=[f"{PULL_NS}/segmented-pull-test-gen1"]),
               named(WANTED[1], secrets=["myproject/segmented-registry-push"], retired=[]),
               named(WANTED[2], secrets=[GLOBAL], retired=[]),
               named(WANTED[3], failed=True, msg="cannot reach the cluster")]  # a failed one: nothing written
    superseded = [stale_item("uat", namespace="uat", superseded=True)]
    assert credentials_outcome(results, superseded, GLOBAL) == {
        "written": {"test": GLOBAL, "uat": GLOBAL},
        "retired": [f"{PULL_NS}/segmented-pull-test-gen1", "uat/segmented-pull-uat"]}


def test_a_failed_credential_writes_and_retires_nothing_in_the_outcome():
    results = [named(WANTED[0], failed=True, msg="cannot reach test"),
               named(WANTED[2], secrets=[GLOBAL], retired=[f"{PULL_NS}/segmented-pull-uat-gen1"])]
    assert credentials_outcome(results, [], GLOBAL) == {"written": {"uat": GLOBAL}, "retired": [f"{PULL_NS}/segmented-pull-uat-gen1"]}


UNREACHABLE = {"uat": "uat: segmented_registry_k8s_auth: cannot reach the cluster at https://127.0.0.1:1 (...)"}


def test_left_out_names_the_unreachable_clusters_and_those_whose_credential_failed():
    results = [named(WANTED[0], changed=True, secrets=[GLOBAL], retired=[]),
               named(WANTED[1], failed=True, msg="the service account myproject/builder\nis missing"),
               named(WANTED[3], failed=True, msg="GET https://prod/version failed")]
    assert credentials_left_out(results, UNREACHABLE, []) == {
        "uat": UNREACHABLE["uat"],
        "test": "test: its push credential myproject failed: the service account myproject/builder is missing",
        "prod": "prod: its pull credential segmented-registry-consumers failed: GET https://prod/version failed"}


def test_left_out_joins_every_failed_credential_of_a_cluster_and_skips_the_playbooks_own():
    results = [named(WANTED[0], failed=True, msg="one"), named(WANTED[1], failed=True, msg="two"),
               named(WANTED[3], failed=True, msg="three")]
    assert credentials_left_out(results, UNREACHABLE, ["uat", "prod"]) == {
        "test": "test: its pull credential segmented-registry-consumers failed: one; its push credential myproject failed: two"}
    assert credentials_left_out([], {}, []) == {}


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"credentials_wanted", "credentials_consumer_objects", "credentials_stale",
                                             "credentials_batch", "credentials_outcome", "credentials_left_out",
                                             "credentials_rotation_grace"}


def test_a_rotation_keeps_the_old_generation_for_the_grace_and_the_longest_node_rollout():
    hostvars = {"registry": {"consumer_cluster_node_rollout_timeout": 5000},  # no consumer: not counted
                "test": {"segmented_registry_environment": "test", "consumer_cluster_node_rollout_timeout": "300"},
                "prod": {"segmented_registry_environment": "prod", "consumer_cluster_node_rollout_timeout": 1200},
                "uat": {"segmented_registry_environment": "uat"}}
    assert credentials_rotation_grace(hostvars, "600") == 1800
    assert credentials_rotation_grace({"registry": {}, "test": {"segmented_registry_environment": "test"}}, 0) == 900  # the role's default


def test_a_consumer_on_the_role_s_default_timeout_counts_beside_one_that_sets_a_shorter_one():
    hostvars = {"test": {"segmented_registry_environment": "test", "consumer_cluster_node_rollout_timeout": 300},
                "uat": {"segmented_registry_environment": "uat"}}
    assert credentials_rotation_grace(hostvars, 60) == 960
