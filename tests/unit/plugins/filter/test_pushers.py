"""The promotion job's source namespaces and bindings (plugins/filter/pushers.py): which source
namespaces exist, which pusher namespaces are new, what is applied one by one, which bindings go
(pure logic, on the objects templates/pushers.yml.j2 renders)."""
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
    assert stale_source_bindings(found, [PROMOTER], ["myproject"]) == [binding(ours, "dropped")]
    assert stale_source_bindings(found, [PROMOTER], ["myproject", "dropped"]) == []


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"pusher_namespaces", "pusher_objects", "stale_source_bindings"}
