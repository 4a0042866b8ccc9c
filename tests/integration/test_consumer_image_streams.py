"""ImageStreams on the consumer clusters (playbooks/image_streams.yml, imported by promote.yml and
demote.yml, through ansible-runner as AWX runs them) on the lab: a tag promoted to prod gets an
ImageStream tag on the prod cluster, from the logical registry name by digest with a Local
reference policy, and the prod node pulls that same reference through the mirror sets; uat,
which asks for the same namespace but holds nothing of it, gets nothing; a second run and a check
run change nothing; demotion removes it; the Image config's non-empty allowedRegistriesForImport
gets the logical registry and loses it again with state: absent. The lab has no image-import
controller: status.tags stay empty, the objects and the node pull are what is checked (the
promotion guide, "ImageStreams on the consumer clusters", says what OpenShift does on top)."""
import copy

import pytest
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

from tests.integration import promotion_lab
from tests.integration.conftest import unique_suffix

LOGICAL = "registry.apps.lab.local"
ASKING = ("uat", "prod")
SMALL = 64 * 1024
OURS = {"app.kubernetes.io/managed-by": "segmented.registry"}
QUAY = {"domainName": "quay.io", "insecure": False}


def streams(lab, cluster, namespace):
    """The ImageStreams of ``namespace`` on ``cluster``, as dicts."""
    api = kclient.CustomObjectsApi(lab.api_client(cluster))
    return api.list_namespaced_custom_object("image.openshift.io", "v1", namespace, "imagestreams")["items"]


def images(lab, cluster):
    return DynamicClient(lab.api_client(cluster)).resources.get(api_version="config.openshift.io/v1", kind="Image")


def set_image_spec(lab, cluster, spec):
    resource = images(lab, cluster)
    current = resource.get(name="cluster").to_dict()
    resource.replace(body={"apiVersion": "config.openshift.io/v1", "kind": "Image",
                           "metadata": {"name": "cluster", "resourceVersion": current["metadata"]["resourceVersion"],
                                        "annotations": (current["metadata"].get("annotations") or {})},
                           "spec": spec})


def changed_on(run, host):
    return (run.stats or {}).get("changed", {}).get(host, 0)


@pytest.fixture(scope="module")
def site(lab, run_playbook, module_inventory):
    """A namespace of the registry cluster with app:v1 pushed; uat and prod ask for ImageStreams in
    the same namespace (it exists there); prod's Image config has an allowedRegistriesForImport
    list of the administrator's. The consumers configured (credentials.yml, consumer_cluster.yml);
    afterwards restored and the namespaces removed: consumers the role had configured before (the lab
    after scripts/main.sh) configured again as the lab inventory says, with prod's own import list
    put back; others restored (state: absent) and their Image specs put back. One for the module: its
    last test takes the role out (state: absent)."""
    unique = unique_suffix()
    namespace = f"istreams-{unique}"
    for cluster in (lab.layout.registry_cluster,) + ASKING:
        kclient.CoreV1Api(lab.api_client(cluster)).create_namespace({"metadata": {"name": namespace}})
    digest = lab.push(namespace, "app", "v1", 2, SMALL, seed=f"istreams-{unique}")["digest"]
    specs = {cluster: copy.deepcopy(images(lab, cluster).get(name="cluster").to_dict().get("spec") or {}) for cluster in ASKING}
    configured = all(spec.get("additionalTrustedCA") for spec in specs.values())
    set_image_spec(lab, "prod", dict(specs["prod"], allowedRegistriesForImport=[QUAY]))

    def edit(hosts, group_vars):
        for cluster in ASKING:
            hosts[cluster]["consumer_cluster_image_stream_namespaces"] = [namespace]
        for environment in group_vars["segmented_registry_environments"]:
            environment.pop("policy", None)  # prod after uat: here the tag goes to prod alone

    path = module_inventory(edit)
    for playbook in ("playbooks/credentials.yml", "playbooks/consumer_cluster.yml"):
        run = run_playbook(playbook, inventory=path)
        assert run.status == "successful", run.stdout_text[-4000:]
    yield namespace, digest, path
    if configured:
        run = run_playbook("playbooks/consumer_cluster.yml")
        spec = images(lab, "prod").get(name="cluster").to_dict()["spec"]
        spec.pop("allowedRegistriesForImport", None)
        if "allowedRegistriesForImport" in specs["prod"]:
            spec["allowedRegistriesForImport"] = specs["prod"]["allowedRegistriesForImport"]
        set_image_spec(lab, "prod", spec)
    else:
        run = run_playbook("playbooks/consumer_cluster.yml", inventory=path, extravars={"consumer_cluster_state": "absent"})
    for cluster in ASKING:
        if not configured:
            set_image_spec(lab, cluster, specs[cluster])
        promotion_lab.remove_namespace(lab.api_client(cluster), namespace)
    assert run.status == "successful", run.stdout_text[-4000:]


def test_a_promoted_tag_becomes_an_image_stream_tag_on_its_environment_s_consumer_only(lab, run_playbook, site):
    namespace, digest, path = site
    reference = f"{LOGICAL}/{namespace}/app@{digest}"

    # the consumer role allowed the logical registry for import next to the administrator's entry
    assert images(lab, "prod").get(name="cluster").to_dict()["spec"]["allowedRegistriesForImport"] == [
        QUAY, {"domainName": LOGICAL, "insecure": False}]

    run = run_playbook("playbooks/promote.yml", inventory=path, extravars={"project": namespace, "image": "app:v1", "env": "prod"})
    assert run.status == "successful", run.stdout_text[-4000:]
    [stream] = streams(lab, "prod", namespace)
    assert stream["metadata"]["name"] == "app" and stream["metadata"]["labels"] == OURS
    [tag] = stream["spec"]["tags"]
    assert tag["name"] == "v1" and tag["annotations"] == OURS
    assert tag["from"] == {"kind": "DockerImage", "name": reference}
    assert tag["referencePolicy"]["type"] == "Local"
    assert not tag.get("importPolicy", {}).get("scheduled")
    assert streams(lab, "uat", namespace) == []  # uat asks, but nothing of the namespace is in uat
    assert changed_on(run, "test") == 0 and changed_on(run, "uat") == 0

    # the node of prod pulls the very reference the tag names, through the mirror sets
    pulled = lab.pull("prod", reference)
    assert pulled["digest"] == digest and pulled["source_blocked"]

    # a second run and a check run change nothing on any consumer
    again = run_playbook("playbooks/image_streams.yml", inventory=path)
    assert again.status == "successful", again.stdout_text[-4000:]
    check = run_playbook("playbooks/image_streams.yml", inventory=path, cmdline="--check --diff")
    assert check.status == "successful", check.stdout_text[-4000:]
    for result in (again, check):
        assert sum(changed_on(result, cluster) for cluster in ("test", "uat", "prod")) == 0, result.stdout_text[-3000:]
    assert streams(lab, "prod", namespace)[0]["metadata"]["resourceVersion"] == stream["metadata"]["resourceVersion"]

    # demotion removes it there (the ImageStream, left without tags, goes)
    run = run_playbook("playbooks/demote.yml", inventory=path, extravars={"project": namespace, "image": "app:v1", "env": "prod"})
    assert run.status == "successful", run.stdout_text[-4000:]
    assert streams(lab, "prod", namespace) == []


def test_state_absent_takes_the_import_entry_out_again(lab, run_playbook, site):
    _namespace, _digest, path = site
    run = run_playbook("playbooks/consumer_cluster.yml", inventory=path, extravars={"consumer_cluster_state": "absent"})
    assert run.status == "successful", run.stdout_text[-4000:]
    spec = images(lab, "prod").get(name="cluster").to_dict()["spec"]
    assert spec["allowedRegistriesForImport"] == [QUAY]
