"""The merge of a consumer's registries into the Image ``cluster`` and its CA ConfigMap (pure)."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import image_config as ic
from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import (
    RECORD_ANNOTATION, RecordError, merge_owned, read_record, write_record)
from ansible_collections.segmented.registry.plugins.module_utils.consumer.scopes import nested

ALLOW = ("registry.apps.example.com", "prod-registry.apps.registry.example.com")
DENY = ("test-registry.apps.registry.example.com", "uat-registry.apps.registry.example.com")
PLATFORM = ["registry.redhat.io", "quay.io/openshift-release-dev"]


@pytest.mark.parametrize("sub, sup, expected", [
    # runtime-utils TestScopeIsNestedInsideScope
    ("quay.io", "quay.io", True), ("quay.io:443", "quay.io", False), ("quay.io2", "quay.io", False),
    ("quay.io/ns1/ns2/ns3", "quay.io", True), ("bar/example.foo", "*.foo", False),
    ("example/bar.foo:400", "*.foo", False), ("*.foo.example.com", "*.example.com", True),
    ("foo.example.com:443/bar/baz", "*.example.com", True), ("foo.example.com", "*example.com", False),
])
def test_nested(sub, sup, expected):
    assert nested(sub, sup) is expected


def roundtrip(spec, record=None, allow=ALLOW, deny=DENY):
    """Merge, check a second merge changes nothing, restore; returns (merged spec, record, restored)."""
    merged, new_record = ic.merge_registry_sources(spec, record or {}, allow, deny, PLATFORM)
    assert ic.merge_registry_sources(merged, new_record, allow, deny, PLATFORM) == (merged, new_record)
    return merged, new_record, ic.restore_registry_sources(merged, new_record)


def test_a_cluster_without_registry_sources_keeps_its_platform_registries():
    spec = {"additionalTrustedCA": {"name": "x"}}
    merged, record, restored = roundtrip(spec)
    assert merged["registrySources"] == {"allowedRegistries": PLATFORM + list(ALLOW)}
    assert record["allowedRegistriesCreated"] and record["registrySourcesCreated"] and record["withPlatformRegistries"]
    assert restored == spec


def test_an_existing_allow_list_keeps_its_entries_and_order():
    spec = {"registrySources": {"allowedRegistries": ["quay.io", "registry.apps.example.com"],
                                "insecureRegistries": ["insecure.example.com"]}}
    merged, record, restored = roundtrip(spec)
    assert merged["registrySources"]["allowedRegistries"] == ["quay.io", "registry.apps.example.com",
                                                              "prod-registry.apps.registry.example.com"]
    assert merged["registrySources"]["insecureRegistries"] == ["insecure.example.com"]
    # the logical registry was there before: not recorded, so not removed
    assert record["allowedRegistries"] == ["prod-registry.apps.registry.example.com"]
    assert restored == spec


def test_an_empty_allowed_list_is_restored_as_it_was():
    spec = {"registrySources": {"allowedRegistries": []}}
    merged, record, restored = roundtrip(spec)
    assert merged["registrySources"]["allowedRegistries"] == PLATFORM + list(ALLOW)
    assert record["withPlatformRegistries"] and not record["allowedRegistriesCreated"]
    assert restored == spec  # the empty list is back, not dropped


def test_an_entry_the_administrator_adds_later_outlives_a_run_and_the_restore():
    """The role made the allow list; an administrator adds a registry to it afterwards: the next
    run keeps it where it is, and the restore takes out only what the role added."""
    spec = {"additionalTrustedCA": {"name": "x"}}
    merged, record, _restored = roundtrip(spec)
    edited = {**merged, "registrySources": {"allowedRegistries": merged["registrySources"]["allowedRegistries"] + ["mirror.example.com"]}}
    again, again_record = ic.merge_registry_sources(edited, record, ALLOW, DENY, PLATFORM)
    assert (again, again_record) == (edited, record)
    assert ic.restore_registry_sources(again, again_record) == dict(spec, registrySources={"allowedRegistries": ["mirror.example.com"]})


def test_blocked_registries_get_the_other_environments():
    spec = {"registrySources": {"blockedRegistries": ["bad.example.com", "*.apps.registry.example.com"]}}
    merged, record, restored = roundtrip(spec, allow=("registry.apps.example.com",),
                                         deny=DENY + ("other.example.com",))
    # the wildcard of the administrator already blocks the environment registries
    assert merged["registrySources"]["blockedRegistries"] == ["bad.example.com", "*.apps.registry.example.com",
                                                              "other.example.com"]
    assert restored == spec


def test_a_block_of_our_own_registry_is_refused():
    spec = {"registrySources": {"blockedRegistries": ["*.apps.registry.example.com"]}}
    with pytest.raises(ic.ImageConfigError, match="blocks 'prod-registry.apps.registry.example.com'"):
        ic.merge_registry_sources(spec, {}, ALLOW, DENY, PLATFORM)


def test_an_allowed_wildcard_that_lets_another_environment_in_is_refused():
    spec = {"registrySources": {"allowedRegistries": ["*.apps.registry.example.com"]}}
    with pytest.raises(ic.ImageConfigError, match="allows 'test-registry.apps.registry.example.com'"):
        ic.merge_registry_sources(spec, {}, ALLOW, DENY, PLATFORM)


def test_both_lists_are_refused():
    spec = {"registrySources": {"allowedRegistries": ["a.io"], "blockedRegistries": ["b.io"]}}
    with pytest.raises(ic.ImageConfigError, match="both"):
        ic.merge_registry_sources(spec, {}, ALLOW, DENY, PLATFORM)


def test_a_new_environment_replaces_the_old_one():
    merged, record = ic.merge_registry_sources({"registrySources": {"allowedRegistries": ["quay.io"]}}, {},
                                               ALLOW, DENY, PLATFORM)
    moved, moved_record = ic.merge_registry_sources(merged, record, ("registry.apps.example.com", DENY[0]),
                                                    (ALLOW[1], DENY[1]), PLATFORM)
    assert moved["registrySources"]["allowedRegistries"] == ["quay.io", "registry.apps.example.com", DENY[0]]
    assert ic.restore_registry_sources(moved, moved_record) == {"registrySources": {"allowedRegistries": ["quay.io"]}}


def test_merge_owned_keeps_foreign_entries_in_place():
    assert merge_owned(["a", "x", "b"], ["x"], ["b", "c"]) == (["a", "b", "c"], ["c"])


def test_trusted_ca_configmap_and_data():
    assert ic.ca_key("reg.example.com:8443") == "reg.example.com..8443"
    assert ic.trusted_ca_configmap({}, {}, "mine") == ("mine", True)
    assert ic.trusted_ca_configmap({"additionalTrustedCA": {"name": "theirs"}}, {}, "mine") == ("theirs", False)
    spec, record = ic.set_trusted_ca({"additionalTrustedCA": {"name": ""}}, {}, "mine")
    assert spec["additionalTrustedCA"] == {"name": "mine"}
    assert ic.restore_trusted_ca(spec, record) == {"additionalTrustedCA": {"name": ""}}
    data = {"other.example.com": "A", "reg.example.com": "OLD"}
    merged, cm_record = ic.merge_ca_data(data, {}, {"reg.example.com": "NEW", "new.example.com": "N"})
    assert merged == {"other.example.com": "A", "reg.example.com": "NEW", "new.example.com": "N"}
    assert ic.merge_ca_data(merged, cm_record, {"reg.example.com": "NEW", "new.example.com": "N"}) == (merged, cm_record)
    assert ic.restore_ca_data(merged, cm_record) == data


def test_records_live_in_an_annotation_and_a_hand_edit_is_a_clear_error():
    obj = {"kind": "Image", "metadata": {"name": "cluster", "annotations": {"keep": "1"}}}
    write_record(obj, {"allowedRegistries": ["a"]})
    assert read_record(obj) == {"allowedRegistries": ["a"]}
    write_record(obj, {})
    assert obj["metadata"]["annotations"] == {"keep": "1"}
    obj["metadata"]["annotations"][RECORD_ANNOTATION] = "[not an object"
    with pytest.raises(RecordError, match="edited by hand"):
        read_record(obj)


@pytest.mark.parametrize("scope", ["bad scope", "tab\there", "*", "a/*.b", ""])
def test_bad_scopes_name_the_option(scope):
    with pytest.raises(ic.ImageConfigError, match="allow has"):
        ic.check_scopes([scope], "allow")


LOGICAL = "registry.apps.example.com"
QUAY = {"domainName": "quay.io", "insecure": False}


def test_import_registries_join_an_administrator_s_list_and_leave_it_as_it_was():
    spec, added = ic.merge_import_registries({"allowedRegistriesForImport": [QUAY]}, {}, [LOGICAL])
    assert spec["allowedRegistriesForImport"] == [QUAY, {"domainName": LOGICAL, "insecure": False}] and added == [LOGICAL]
    again, added_again = ic.merge_import_registries(spec, {"allowedRegistriesForImport": added}, [LOGICAL])
    assert again == spec and added_again == added
    restored, none = ic.merge_import_registries(spec, {"allowedRegistriesForImport": added}, [])
    assert restored == {"allowedRegistriesForImport": [QUAY]} and none == []


def test_an_empty_import_list_allows_everything_and_stays_empty():
    assert ic.merge_import_registries({}, {}, [LOGICAL]) == ({}, [])
    assert ic.merge_import_registries({"allowedRegistriesForImport": []}, {}, [LOGICAL]) == ({"allowedRegistriesForImport": []}, [])


def test_an_import_entry_that_covers_the_registry_is_enough():
    wildcard = {"allowedRegistriesForImport": [{"domainName": "*.apps.example.com", "insecure": False}]}
    assert ic.merge_import_registries(wildcard, {}, [LOGICAL]) == (wildcard, [])


def test_the_image_config_edit_records_the_import_entry_and_takes_it_out_again():
    from ansible_collections.segmented.registry.plugins.module_utils.consumer.node_config import NodeImageConfig
    from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects
    from tests.unit.plugins.module_utils.fake_cluster import fake_cluster

    image = {"apiVersion": "config.openshift.io/v1", "kind": "Image", "metadata": {"name": "cluster"},
             "spec": {"registrySources": {"allowedRegistries": ["quay.io"]}, "allowedRegistriesForImport": [QUAY]}}
    api = ClusterObjects(fake_cluster([image]))
    server = api.cluster.dynamic
    edit = NodeImageConfig([LOGICAL], [], [], [], "segmented-registry-trusted-ca", None, [LOGICAL])
    assert edit.apply(api)["import_registries"] == [QUAY, {"domainName": LOGICAL, "insecure": False}]
    written = len(server.writes)
    assert edit.apply(api)["changed"] is False and len(server.writes) == written
    edit.apply(api, present=False)
    stored = server.objects[("Image", None, "cluster")]
    assert stored["spec"] == image["spec"] and "annotations" not in stored["metadata"]
