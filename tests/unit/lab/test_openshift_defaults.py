"""Pure parts of lab/openshift_defaults.py (what a namespace misses, which watch events count, the
backoff) and the OpenShift policy in lab/rbac/ that its bindings name."""
import glob
import os
import types

import yaml

from lab import openshift_defaults as od

RBAC = os.path.join(os.path.dirname(od.__file__), "rbac")


def _namespace(name, phase="Active", deleting=False):
    return types.SimpleNamespace(metadata=types.SimpleNamespace(name=name, deletion_timestamp="t" if deleting else None),
                                 status=types.SimpleNamespace(phase=phase))


def _rbac_documents():
    docs = []
    for path in sorted(glob.glob(os.path.join(RBAC, "*.yaml"))):
        with open(path) as handle:
            docs += [d for d in yaml.safe_load_all(handle) if d]
    return docs


def test_a_bare_namespace_misses_both_service_accounts_and_the_three_bindings():
    objects = od.missing({"ns"}, set(), set())
    assert [(kind, body["metadata"]["name"]) for kind, body in objects] == [
        ("ServiceAccount", "builder"), ("ServiceAccount", "deployer"),
        ("RoleBinding", "system:image-pullers"), ("RoleBinding", "system:image-builders"),
        ("RoleBinding", "system:deployers")]
    assert all(body["metadata"]["namespace"] == "ns" for _kind, body in objects)


def test_what_exists_is_not_created_again_whatever_it_holds():
    accounts = {("a", "builder"), ("a", "deployer"), ("b", "builder")}
    bindings = {("a", name) for name in od.BINDING_NAMES} | {("b", "system:image-pullers")}
    objects = od.missing({"a", "b"}, accounts, bindings)
    assert [(body["metadata"]["namespace"], body["metadata"]["name"]) for _kind, body in objects] == [
        ("b", "deployer"), ("b", "system:image-builders"), ("b", "system:deployers")]


def test_the_bindings_are_openshifts():
    pullers = od.role_binding("team", "system:image-pullers")
    assert pullers["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "system:image-puller"}
    assert pullers["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                    "name": "system:serviceaccounts:team"}]
    builders = od.role_binding("team", "system:image-builders")
    assert builders["roleRef"]["name"] == "system:image-builder"
    assert builders["subjects"] == [{"kind": "ServiceAccount", "name": "builder", "namespace": "team"}]
    deployers = od.role_binding("team", "system:deployers")
    assert deployers["roleRef"]["name"] == "system:deployer"
    assert deployers["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "team"}]
    assert "auto-managed by a controller" in deployers["metadata"]["annotations"]["openshift.io/description"]


def test_every_role_the_bindings_name_is_in_the_labs_policy():
    roles = {d["metadata"]["name"] for d in _rbac_documents() if d["kind"] == "ClusterRole"}
    for name in od.BINDING_NAMES:
        assert od.role_binding("ns", name)["roleRef"]["name"] in roles


def test_the_labs_policy_aggregates_image_rights_into_admin_edit_and_view_as_openshift_does():
    labels = {d["metadata"]["name"]: (d["metadata"].get("labels") or {})
              for d in _rbac_documents() if d["kind"] == "ClusterRole"}
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert labels["system:image-builder"] == {aggregate + "admin": "true", aggregate + "edit": "true"}
    assert labels["registry-editor"] == {aggregate + "edit": "true"}
    assert labels["registry-viewer"] == {aggregate + "view": "true"}
    for target in ("admin", "edit", "view"):
        assert labels["system:openshift:aggregate-to-" + target] == {aggregate + target: "true"}


def test_only_namespaces_added_and_not_being_deleted_count():
    assert od.added_namespace({"type": "ADDED", "object": _namespace("new")}) == "new"
    assert od.added_namespace({"type": "ADDED", "object": _namespace("gone", phase="Terminating")}) is None
    assert od.added_namespace({"type": "ADDED", "object": _namespace("gone", deleting=True)}) is None
    assert od.added_namespace({"type": "MODIFIED", "object": _namespace("old")}) is None
    assert od.added_namespace({"type": "DELETED", "object": _namespace("old")}) is None


def test_backoff_doubles_up_to_its_cap():
    assert [od.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
