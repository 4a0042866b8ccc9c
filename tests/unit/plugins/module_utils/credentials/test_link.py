from ansible_collections.segmented.registry.plugins.module_utils.credentials import link


def account(field=None, entries=None, version="7"):
    result = {"metadata": {"name": "default", "resourceVersion": version}}
    if field:
        result[field] = entries
    return result


def test_link_appends_after_other_entries_and_tests_the_list_read():
    sa = account("imagePullSecrets", [{"name": "theirs"}, {"name": "other"}])
    patch = link.patch(sa, "imagePullSecrets", "ours")
    assert patch == [
        {"op": "test", "path": "/imagePullSecrets", "value": [{"name": "theirs"}, {"name": "other"}]},
        {"op": "replace", "path": "/imagePullSecrets", "value": [{"name": "theirs"}, {"name": "other"}, {"name": "ours"}]},
    ]


def test_link_is_a_no_op_when_linked():
    assert link.patch(account("secrets", [{"name": "ours"}]), "secrets", "ours") is None
    assert link.patch(account("secrets", [{"name": "x"}]), "secrets", "ours", present=False) is None
    assert link.patch(account(), "secrets", "ours", present=False) is None


def test_link_without_the_field_tests_the_resource_version():
    assert link.patch(account(version="42"), "secrets", "ours") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/secrets", "value": [{"name": "ours"}]},
    ]


def test_unlink_removes_only_ours_and_keeps_order():
    sa = account("imagePullSecrets", [{"name": "a"}, {"name": "ours"}, {"name": "b"}])
    patch = link.patch(sa, "imagePullSecrets", "ours", present=False)
    assert patch[1] == {"op": "replace", "path": "/imagePullSecrets", "value": [{"name": "a"}, {"name": "b"}]}


def test_fields_per_purpose():
    assert link.field_for("pull") == "imagePullSecrets"
    assert link.field_for("push") == "secrets"
    assert link.linked(account("secrets", [{"name": "s"}]), "secrets", "s")
