"""The lab has OpenShift's default authorization (lab/README.md): a namespace created now, on every
lab cluster, gets the builder and deployer service accounts and the system:image-pullers,
system:image-builders and system:deployers RoleBindings (lab/openshift_defaults.py), and the
SubjectAccessReviews OpenShift answers for image rights come out the same on the lab: the builder
service account and any holder of edit or admin may push (update imagestreams/layers), a viewer and
every service account of the namespace may pull (get), the deployer may not push."""
import pytest
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from lab import openshift_defaults

LAYERS = {"group": "image.openshift.io", "resource": "imagestreams", "subresource": "layers"}


@pytest.fixture
def new_namespaces(lab, unique):
    """A namespace ``defaults-<unique>`` created now on every lab cluster (deleted after the test)."""
    name = "defaults-" + unique
    for cluster, _port in lab.layout.clusters:
        kclient.CoreV1Api(lab.api_client(cluster)).create_namespace({"metadata": {"name": name}})
    yield name
    for cluster, _port in lab.layout.clusters:
        try:
            kclient.CoreV1Api(lab.api_client(cluster)).delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _allowed(lab, namespace, verb, user, groups=()):
    review = kclient.AuthorizationV1Api(lab.api_client(lab.layout.registry_cluster)).create_subject_access_review({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": list(groups) + ["system:authenticated"],
                 "resourceAttributes": dict(LAYERS, namespace=namespace, verb=verb, name="app")}})
    return review.status.allowed


def _push_allowed(lab, namespace, user, groups=()):
    """For eventually() (RBAC's caches follow a new binding within moments): AssertionError until
    ``user`` may update imagestreams/layers in ``namespace``."""
    assert _allowed(lab, namespace, "update", user, groups), f"{user} may not push"


def _service_account(namespace, name):
    return (f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", "system:serviceaccounts:" + namespace))


def _defaults(lab, cluster, namespace):
    """(service account names, {binding name: (role, subjects)}) of ``namespace`` on ``cluster``;
    raises AssertionError while one of OpenShift's defaults is missing."""
    api = lab.api_client(cluster)
    accounts = {sa.metadata.name for sa in kclient.CoreV1Api(api).list_namespaced_service_account(namespace).items}
    bindings = {rb.metadata.name: (rb.role_ref.name, [(s.kind, s.name, s.namespace) for s in rb.subjects or []])
                for rb in kclient.RbacAuthorizationV1Api(api).list_namespaced_role_binding(namespace).items}
    assert {"default", "builder", "deployer"} <= accounts, (cluster, accounts)
    assert set(openshift_defaults.BINDING_NAMES) <= set(bindings), (cluster, bindings)
    return accounts, bindings


def test_a_new_namespace_gets_openshifts_service_accounts_and_bindings_on_every_cluster(
        lab, new_namespaces, eventually):
    namespace = new_namespaces
    for cluster, _port in lab.layout.clusters:
        _accounts, bindings = eventually(lambda c=cluster: _defaults(lab, c, namespace), timeout=60)
        assert bindings["system:image-pullers"] == (
            "system:image-puller", [("Group", "system:serviceaccounts:" + namespace, None)])
        assert bindings["system:image-builders"] == ("system:image-builder", [("ServiceAccount", "builder", namespace)])
        assert bindings["system:deployers"] == ("system:deployer", [("ServiceAccount", "deployer", namespace)])


def test_image_rights_in_a_new_namespace_are_openshifts(lab, new_namespaces, eventually, unique):
    namespace = new_namespaces
    eventually(lambda: _defaults(lab, lab.layout.registry_cluster, namespace), timeout=60)
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    users = {}
    for role in ("admin", "edit", "view"):
        users[role] = f"{role}-{unique}"
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": f"{role}-{unique}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": users[role]}]})
    builder, deployer, default = (_service_account(namespace, n) for n in ("builder", "deployer", "default"))
    # push (update imagestreams/layers), as OpenShift's registry checks it: the builder, edit, admin
    for who in (builder, (users["edit"],), (users["admin"],)):
        eventually(lambda w=who: _push_allowed(lab, namespace, *w), timeout=30)
    for who in (deployer, default, (users["view"],)):
        assert not _allowed(lab, namespace, "update", *who), f"{who[0]} may push"
    # pull (get imagestreams/layers): every service account of the namespace, and a viewer
    for who in (default, deployer, builder, (users["view"],)):
        assert _allowed(lab, namespace, "get", *who), f"{who[0]} may not pull"
    # nothing of it outside the namespace: another namespace's builder gets nothing here
    outsider = _service_account("elsewhere-" + unique, "builder")
    assert not _allowed(lab, namespace, "get", *outsider)
    assert not _allowed(lab, namespace, "update", *outsider)
