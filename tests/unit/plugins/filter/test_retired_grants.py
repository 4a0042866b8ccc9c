"""What earlier versions of the registry-cluster role granted the promotion job
(plugins/filter/retired_grants.py): found in the environment namespaces and cluster-wide, the old
promoter identity, the image-deleter (pure logic, on the lab inventory's environments and the
bindings tests/integration/test_registry_cluster.py makes)."""
from ansible_collections.segmented.registry.plugins.filter.retired_grants import FilterModule, retired_grants
from tests.unit.plugins.filter.lab import lab_environments

PROMOTER = "segmented-registry-promotion/promoter"


def binding(name, namespace, role):
    return {"metadata": {"name": name, "namespace": namespace}, "roleRef": {"kind": "ClusterRole", "name": role}}


RBAC = "rbac.authorization.k8s.io/v1"


def stub(kind, name, namespace=None, api_version=RBAC):
    return {"apiVersion": api_version, "kind": kind, "metadata": dict({"name": name}, **({"namespace": namespace} if namespace else {}))}


DELETER = [stub("ClusterRoleBinding", "segmented-registry:image-deleter"), stub("ClusterRole", "segmented-registry:image-deleter")]


def test_earlier_grants_in_the_environment_namespaces_and_cluster_wide_reads_are_retired():
    pusher = binding("segmented-registry:pusher:old-x:promoter", "test", role="system:image-pusher")
    elsewhere = binding("segmented-registry:pusher:old-x:promoter", "another-deployment", role="system:image-pusher")
    bindings = [pusher, binding("segmented-registry:pusher:kept", "test", role="edit"),
                binding("segmented-registry:promoter:segmented-registry-promotion:promoter", "test",
                        role="segmented-registry:environment-promoter"), elsewhere]
    cluster = [binding("segmented-registry:a:b:registry-viewer", None, role="registry-viewer"),
               binding("segmented-registry:a:b:image-puller", None, role="system:image-puller"),
               binding("segmented-registry:a:b:image-puller", None, role="registry-viewer"),
               binding("someone:image-puller", None, role="system:image-puller")]
    # the old promoter still a pusher: only what was found in the environment namespaces goes
    assert retired_grants(bindings, cluster, [PROMOTER, "segmented-registry/promoter"], lab_environments()) == [
        stub("RoleBinding", "segmented-registry:pusher:old-x:promoter", "test"),
        stub("ClusterRoleBinding", "segmented-registry:a:b:registry-viewer"),
        stub("ClusterRoleBinding", "segmented-registry:a:b:image-puller")] + DELETER


def test_the_old_promoter_goes_unless_it_is_still_a_pusher():
    old = "segmented-registry/promoter"
    assert retired_grants([], [], [PROMOTER], lab_environments()) == [
        stub("RoleBinding", "segmented-registry:promoter:segmented-registry:promoter", env)
        for env in ("test", "uat", "prod")] + [stub("ServiceAccount", "promoter", "segmented-registry", "v1")] + DELETER
    assert retired_grants([], [], [old], lab_environments()) == DELETER


def test_the_filter_is_registered():
    assert set(FilterModule().filters()) == {"retired_grants"}
