"""The promotion job's source namespaces and bindings (plugins/filter/pushers.py): which source
namespaces exist, which pusher namespaces are new, what is applied one by one, which bindings go
(pure logic, on the objects templates/pushers.yml.j2 renders)."""
import json
import os

import jinja2
import yaml

from ansible_collections.segmented.registry.plugins.filter.pushers import (
    SOURCE_READER,
    FilterModule,
    pusher_namespaces,
    pusher_objects,
    stale_source_bindings,
)

PROMOTER = "segmented-registry-promotion/promoter"


def namespace(name, phase="Active"):
    return {"metadata": {"name": name}, "status": {"phase": phase}}


CLUSTER = [namespace("default"), namespace("myproject"), namespace("old", "Terminating")]


def test_source_namespaces_are_the_inventorys_unless_given_and_a_terminating_one_is_missing():
    assert pusher_namespaces(CLUSTER, [PROMOTER], None, ["myproject"]) == {
        "found": ["myproject"], "missing": [], "new": ["segmented-registry-promotion"]}
    assert pusher_namespaces(CLUSTER, [PROMOTER, "myproject/promoter"], ["old", "myproject", "old", "nosuch"], ["tools"]) == {
        "found": ["myproject"], "missing": ["old", "nosuch"], "new": ["segmented-registry-promotion"]}
    assert pusher_namespaces(CLUSTER, [], [], ["myproject"]) == {"found": [], "missing": [], "new": []}


RENDERED = [{"kind": "ClusterRole", "metadata": {"name": SOURCE_READER}},
            {"kind": "Namespace", "metadata": {"name": "segmented-registry-promotion"}},
            {"kind": "ServiceAccount", "metadata": {"name": "promoter", "namespace": "segmented-registry-promotion"}},
            {"kind": "RoleBinding", "metadata": {"name": f"{SOURCE_READER}:segmented-registry-promotion:promoter",
                                                 "namespace": "myproject"}}]


def test_the_clusterrole_goes_on_its_own_and_check_mode_skips_what_a_new_namespace_would_hold():
    assert pusher_objects(RENDERED, ["segmented-registry-promotion"], False) == RENDERED[1:]
    assert pusher_objects(RENDERED, ["segmented-registry-promotion"], True) == [RENDERED[1], RENDERED[3]]
    assert pusher_objects(RENDERED, [], True) == RENDERED[1:]


def binding(name, namespace, role=SOURCE_READER):
    return {"metadata": {"name": name, "namespace": namespace}, "roleRef": {"kind": "ClusterRole", "name": role}}


def test_a_pushers_binding_outside_the_found_sources_is_stale_and_anothers_stays():
    ours = f"{SOURCE_READER}:segmented-registry-promotion:promoter"
    found = [binding(ours, "myproject"), binding(ours, "dropped"), binding(f"{SOURCE_READER}:other:promoter", "dropped"),
             binding(ours, "elsewhere", role="view")]
    assert stale_source_bindings(found, [PROMOTER], ["myproject"]) == [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": ours, "namespace": "dropped"}}]
    assert stale_source_bindings(found, [PROMOTER], ["myproject", "dropped"]) == []


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"pusher_namespaces", "pusher_objects", "stale_source_bindings"}


def render_pushers(**variables):
    """templates/pushers.yml.j2 rendered as the role renders it (to_json is the one filter it uses)."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "registry_cluster", "templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(path))
    env.filters["to_json"] = json.dumps
    values = dict(registry_cluster_labels={"app.kubernetes.io/managed-by": "segmented.registry"}, registry_cluster_pushers=[PROMOTER],
                  registry_cluster_create_pushers=False, registry_cluster_source_namespaces_found=["myproject", "tools"],
                  registry_cluster_history_editors=[])
    values.update(variables)
    return [item for item in yaml.safe_load_all(env.get_template("pushers.yml.j2").render(**values)) if item]


def test_the_history_editors_are_bound_to_configmaps_in_each_source_namespace_and_nowhere_else():
    objects = render_pushers(registry_cluster_history_editors=["alice", "system:serviceaccount:awx:runner"])
    assert objects[0]["metadata"]["name"] == SOURCE_READER  # still first: replaced on its own
    (role,) = [item for item in objects if item["metadata"]["name"] == "segmented-registry:promotion-history-editor" and item["kind"] == "ClusterRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]}]
    assert "aggregationRule" not in role and not [key for key in role["metadata"]["labels"] if "aggregate" in key]
    bindings = [item for item in objects if item["kind"] == "RoleBinding" and item["roleRef"]["name"] == role["metadata"]["name"]]
    assert [item["metadata"]["namespace"] for item in bindings] == ["myproject", "tools"]
    assert [subject["name"] for subject in bindings[0]["subjects"]] == ["alice", "system:serviceaccount:awx:runner"]
    assert {subject["kind"] for subject in bindings[0]["subjects"]} == {"User"}
    assert not [item for item in render_pushers() if item["kind"] == "RoleBinding" and item["roleRef"]["name"] == role["metadata"]["name"]]
