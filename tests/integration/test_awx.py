"""promote.yml, demote.yml, rollback.yml and validate.yml as an AWX job template runs them on the lab: through
ansible-runner (AWX's engine), with the clusters' credentials injected exactly as the credential
type "Segmented registry kubeconfig" injects them (its file injector rendered with the lab's
kubeconfig as the credential's input, written 0600 into the job's private data directory, its
path in SEGMENTED_REGISTRY_KUBECONFIG), hosts that select their context as inventories/awx does,
and extra variables shaped as the job template's survey sends them."""
import json
import os

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

from tests import awx_as_code as awx
from tests.integration import promotion_lab as pl
from tests.integration.runs import task_result

SMALL = 64 * 1024
SOURCE_READER = "segmented-registry:promotion-source-reader"


def source_readers(lab, namespace):
    """(namespace, name) of every service account bound to the promotion job's source reader in
    ``namespace`` of the registry cluster."""
    rbac = kclient.RbacAuthorizationV1Api(lab.api_client(lab.layout.registry_cluster))
    return {(subject.namespace, subject.name) for binding in rbac.list_namespaced_role_binding(namespace).items
            if binding.role_ref.name == SOURCE_READER for subject in binding.subjects or ()}


def with_builder(inventory, cluster, namespace):
    """The inventory folder ``inventory`` with one more build namespace on ``cluster`` (its builder)."""
    path = os.path.join(inventory, "hosts.yml")
    hosts = awx.load_yaml(path)
    credentials = hosts["all"]["children"]["clusters"]["hosts"][cluster]["segmented_registry_credentials"]
    credentials["builders"].append({"namespace": namespace, "service_account": "builder"})
    with open(path, "w") as handle:
        yaml.safe_dump(hosts, handle)
    return inventory


@pytest.fixture
def namespace(lab, unique):
    name = "awx-" + unique
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def awx_inventory(lab, inventory):
    """The lab inventory with each host's credentials in the form of inventories/awx: the
    kubeconfig from SEGMENTED_REGISTRY_KUBECONFIG (the same variable and lookup), and the host's
    context; nothing else points at the lab's kubeconfig."""
    awx_hosts = awx.load_yaml(os.path.join(awx.AWX_INVENTORY, "hosts.yml"))
    awx_vars = awx_hosts["all"]["vars"]
    kubeconfig_template = awx_vars["segmented_registry_awx_kubeconfig"]
    # every host of inventories/awx takes its kubeconfig from that variable
    for group in awx_hosts["all"]["children"].values():
        for host, hostvars in group["hosts"].items():
            assert hostvars["segmented_registry_k8s_auth"]["kubeconfig"] == "{{ segmented_registry_awx_kubeconfig }}", host

    def edit(hosts, group_vars):
        group_vars["segmented_registry_awx_kubeconfig"] = kubeconfig_template
        for hostvars in hosts.values():
            context = hostvars["segmented_registry_k8s_auth"]["context"]
            hostvars["segmented_registry_k8s_auth"] = {"kubeconfig": "{{ segmented_registry_awx_kubeconfig }}",
                                                       "context": context}
        del group_vars["segmented_registry_lab_kubeconfig"]

    path = inventory(edit)
    for root, _dirs, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name)) as handle:
                assert lab.kubeconfig not in handle.read()
    return path


@pytest.fixture
def credential(lab, tmp_path):
    """The job's environment from a "Segmented registry kubeconfig" credential whose input is the
    lab's kubeconfig (one context per cluster, certificates and keys embedded)."""
    with open(lab.kubeconfig) as handle:
        kubeconfig = handle.read()
    contexts = {c["name"] for c in yaml.safe_load(kubeconfig)["contexts"]}
    assert contexts == {"registry", "test", "uat", "prod"}
    env, files = awx.inject(awx.credential_type(), {"kubeconfig": kubeconfig}, str(tmp_path / "job"))
    assert oct(os.stat(files["template.kubeconfig"]).st_mode & 0o777) == "0o600"
    return env


def survey(template, **answers):
    return awx.survey_extra_vars(awx.job_template(template)["survey"], answers)


def test_promote_and_demote_as_awx_job_templates_run_them(lab, namespace, run_playbook, awx_inventory, credential):
    pushed = lab.push(namespace, "app", "v1", 2, SMALL)
    extravars = survey("promote", project=namespace, image="app:v1", env="test")
    assert extravars == {"project": namespace, "image": "app:v1", "env": "test"}

    promoted = run_playbook("playbooks/promote.yml", inventory=awx_inventory, extravars=extravars, envvars=credential)
    assert promoted.status == "successful", promoted.stdout_text[-3000:]
    assert promoted.stats["changed"] == {"localhost": 1}
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}
    assert lab.where(namespace)["uat"]["tags"] == {}

    demoted = run_playbook("playbooks/demote.yml", inventory=awx_inventory,
                           extravars=survey("demote", project=namespace, image="app:v1", env="test"),
                           envvars=credential)
    assert demoted.status == "successful", demoted.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {}


def test_rollback_as_the_awx_job_template_runs_it_records_the_awx_user(lab, namespace, run_playbook, awx_inventory, credential):
    a = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace} A")["digest"]
    promote = survey("promote", project=namespace, image="app:v1", env="test")
    first = run_playbook("playbooks/promote.yml", inventory=awx_inventory, extravars=promote, envvars=credential)
    assert first.status == "successful", first.stdout_text[-3000:]
    b = lab.push(namespace, "app", "v1", 1, SMALL, seed=f"{namespace} B")["digest"]  # the tag moves
    second = run_playbook("playbooks/promote.yml", inventory=awx_inventory, extravars=promote, envvars=credential)
    assert second.status == "successful", second.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": b}
    # AWX passes the launching user as the extra variable awx_user_name
    extravars = dict(survey("rollback", project=namespace, image="app:v1", env="test"), awx_user_name="alice")
    rolled_back = run_playbook("playbooks/rollback.yml", inventory=awx_inventory, extravars=extravars, envvars=credential)
    assert rolled_back.status == "successful", rolled_back.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {f"{namespace}/app:v1": a}
    entries = json.loads(kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).read_namespaced_config_map(
        "segmented-registry-history-app", namespace).data["v1.test"])
    assert [(e["action"], e["by"]) for e in entries] == [("rollback", "alice"), ("promote", "segmented.registry"),
                                                         ("promote", "segmented.registry")]


def test_the_job_reaches_the_registry_cluster_through_the_injected_file_only(
        lab, namespace, run_playbook, awx_inventory, credential, tmp_path):
    lab.push(namespace, "app", "v1", 1, SMALL)
    extravars = survey("promote", project=namespace, image="app:v1", env="test")
    # the same credential without the registry context: the job cannot reach the registry cluster
    with open(lab.kubeconfig) as handle:
        kubeconfig = yaml.safe_load(handle)
    kubeconfig["contexts"] = [c for c in kubeconfig["contexts"] if c["name"] != "registry"]
    kubeconfig["current-context"] = "test"
    env, _files = awx.inject(awx.credential_type(), {"kubeconfig": yaml.safe_dump(kubeconfig)}, str(tmp_path / "job2"))
    refused = run_playbook("playbooks/promote.yml", inventory=awx_inventory, extravars=extravars, envvars=env)
    assert refused.status == "failed"
    assert "Expected object with name registry in" in " ".join(refused.stdout_text.split()), refused.stdout_text[-3000:]
    assert lab.where(namespace)["test"]["tags"] == {}
    # and without the credential at all, validation names the field before anything is reached
    missing = run_playbook("playbooks/promote.yml", inventory=awx_inventory, extravars=extravars)
    assert missing.status == "failed"
    assert "segmented_registry_k8s_auth.kubeconfig" in " ".join(missing.stdout_text.split())


def test_validate_reaches_every_cluster_through_one_credential(lab, run_playbook, awx_inventory, credential):
    run = run_playbook("playbooks/validate.yml", inventory=awx_inventory, envvars=credential)
    assert run.status == "successful", run.stdout_text[-3000:]
    result = task_result(run, "Check the inventory and reach the clusters this job touches")
    path = credential["SEGMENTED_REGISTRY_KUBECONFIG"]
    assert result["topology"]["registry_cluster"]["auth"] == f"kubeconfig {path} context registry"
    assert {c["name"]: c["auth"] for c in result["topology"]["consumer_clusters"]} == {
        env: f"kubeconfig {path} context {env}" for env in ("test", "uat", "prod")}
    # one credential, four clusters, each answering as itself (the lab's API servers, one port each)
    servers = {host: answer["server"] for host, answer in result["clusters"].items() if answer["reachable"]}
    assert set(servers) == {"registry", "test", "uat", "prod"} and len(set(servers.values())) == 4, result["clusters"]


def test_site_as_the_awx_job_template_runs_it(lab, namespace, run_playbook, awx_inventory, credential, unique):
    """site.yml through ansible-runner with the injected credential and the site survey's answer:
    every step on every cluster, the last one copying an image that was approved but not yet
    copied; a second run and a check-mode run change nothing on any host. The inventory names a
    build namespace that exists nowhere yet (a day-1 bootstrap; the lab's credentials_create_missing):
    the first run makes it before the registry cluster stage, which binds the promotion job's source
    reader in it, so that run converges too."""
    builds = f"sb-{unique}"
    awx_inventory = with_builder(awx_inventory, "test", builds)
    try:
        site_converges(lab, namespace, run_playbook, awx_inventory, credential, builds)
    finally:
        for cluster in (lab.layout.registry_cluster, "test"):
            try:
                kclient.CoreV1Api(lab.api_client(cluster)).delete_namespace(builds)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def site_converges(lab, namespace, run_playbook, awx_inventory, credential, builds):
    pushed = lab.push(namespace, "app", "v1", 1, SMALL)
    approved_only = run_playbook("playbooks/promote.yml", inventory=awx_inventory, envvars=credential,
                                 extravars=dict(survey("promote", project=namespace, image="app:v1", env="uat"),
                                                reconcile=False))
    assert approved_only.status == "successful", approved_only.stdout_text[-3000:]
    assert lab.where(namespace)["uat"]["tags"] == {}
    extravars = survey("site", project=namespace)
    assert extravars == {"project": namespace}

    first = run_playbook("playbooks/site.yml", inventory=awx_inventory, extravars=extravars, envvars=credential)
    assert first.status == "successful", first.stdout_text[-3000:]
    assert set(first.stats["ok"]) == {"localhost", "registry", "test", "uat", "prod"}, first.stats
    assert lab.where(namespace)["uat"]["tags"] == {f"{namespace}/app:v1": pushed["digest"]}
    assert task_result(first, "Say what the run did")["msg"].startswith('{"copied": 1}'), first.stdout_text[-3000:]
    assert source_readers(lab, builds) == {tuple(pl.PROMOTER.split("/"))}, first.stdout_text[-3000:]

    for options in ({}, {"cmdline": "--check --diff"}):
        again = run_playbook("playbooks/site.yml", inventory=awx_inventory, extravars=extravars, envvars=credential,
                             **options)
        assert again.status == "successful", again.stdout_text[-3000:]
        assert not any(again.stats["changed"].values()), (options, again.stats["changed"])
