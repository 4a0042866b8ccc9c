"""validate_inventory and its reachability probe (module_utils/cluster_client.py) against the lab's
real kube-apiservers: TLS, client certificates, service-account tokens, RBAC, impersonation.

The only thing here that is not an API server is a TCP listener that accepts connections and never
answers: a network fault (a firewall dropping replies, a hung server), for the timeout bound.
"""
import base64
import json
import os
import shutil
import socket
import threading
import time

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.config import kube_config

from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import (
    ClusterUnreachable,
    probe,
    probe_all,
)
from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster

LAB_INVENTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "inventories", "lab")
VERSION = "v1.36.3"
ADMIN = "lab-admin"  # the CN of the lab kubeconfig's client certificate
VALIDATE_TASK = "Check the inventory and reach the clusters this job touches"
SUMMARY_TASK = "Show which cluster serves which environment"
SELF_SUBJECT_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def server_of(lab, cluster):
    return f"https://127.0.0.1:{int(dict(lab.layout.clusters)[cluster])}"


def forge(token):
    """The real token with its last characters (part of the signature) changed."""
    tail = "AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"
    return token[:-len(tail)] + tail


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_account(namespace, name):
    return f"system:serviceaccount:{namespace}:{name}"


@pytest.fixture
def hermetic(monkeypatch, tmp_path):
    """No K8S_AUTH_*, no KUBECONFIG, an empty home: kubernetes.core falls back to those for any option
    not given, and a test must only use the credentials it names. Returns the home folder."""
    fallbacks = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name in fallbacks:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # the kubernetes client reads $KUBECONFIG once, when imported
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", "~/.kube/config")
    return home


@pytest.fixture
def silent_server():
    """https://127.0.0.1:<port> of a TCP listener that accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    listener.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{int(listener.getsockname()[1])}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def write_kubeconfig(path, server, ca_cert, user):
    """A kubeconfig with one context, ``lab``, whose user holds ``user`` (credentials, or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": ca_cert}}],
        "users": [{"name": "nobody", "user": user}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "nobody"}}],
    }))
    return str(path)


# --- the probe, in this process ----------------------------------------------------------------

@pytest.mark.parametrize("cluster", ["registry", "test", "uat", "prod"])
def test_probe_kubeconfig_context_reports_version_and_identity(lab, hermetic, cluster):
    result = probe({"kubeconfig": lab.kubeconfig, "context": cluster}, timeout=10)
    assert result == {"server": server_of(lab, cluster), "version": VERSION, "user": ADMIN}
    assert kclient.VersionApi(lab.api_client(cluster)).get_code().git_version == VERSION


def test_probe_service_account_token_reports_the_service_account(lab, hermetic, make_token, unique):
    namespace = "probe-" + unique
    token = make_token(namespace, "automation")
    server = server_of(lab, lab.layout.registry_cluster)
    result = probe({"host": server, "api_key": token, "ca_cert": lab.ca.cert_path}, timeout=10)
    assert result == {"server": server, "version": VERSION, "user": service_account(namespace, "automation")}


def test_probe_forged_token_names_the_server_never_the_token(lab, hermetic, make_token, unique):
    token = make_token("probe-" + unique, "automation")
    forged = forge(token)
    server = server_of(lab, lab.layout.registry_cluster)
    with pytest.raises(ClusterUnreachable) as info:
        probe({"host": server, "api_key": forged, "ca_cert": lab.ca.cert_path}, timeout=10)
    text = str(info.value)
    assert info.value.server == server
    assert f"GET {server}/version failed: HTTP 401" in text
    assert "Unauthorized" in text
    for secret in (token, forged, forged[-40:]):
        assert secret not in text and secret not in repr(info.value.args)


def test_probe_without_credentials_is_a_problem(lab, hermetic):
    """host + ca_cert and nothing to fall back to: no request can be authenticated."""
    server = server_of(lab, "test")
    with pytest.raises(ClusterUnreachable) as info:
        probe({"host": server, "ca_cert": lab.ca.cert_path}, timeout=10)
    assert str(info.value).startswith("cannot build a client: ConfigException"), str(info.value)


@pytest.mark.parametrize("how", ["host and ca_cert, ~/.kube/config without credentials",
                                 "kubeconfig context without credentials"])
def test_probe_anonymous_is_a_problem(lab, hermetic, how):
    """The real API server answers /version to anyone; the probe must see that nobody was authenticated."""
    server = server_of(lab, "test")
    if how.startswith("host"):
        write_kubeconfig(hermetic / ".kube" / "config", server, lab.ca.cert_path, {})
        auth = {"host": server, "ca_cert": lab.ca.cert_path}
    else:
        auth = {"kubeconfig": write_kubeconfig(hermetic / "anonymous.kubeconfig", server, lab.ca.cert_path, {}),
                "context": "lab"}
    with pytest.raises(ClusterUnreachable) as info:
        probe(auth, timeout=10)
    assert info.value.server == server
    assert str(info.value).startswith(f"the API server at {server} answered, but as system:anonymous")


def test_probe_connection_refused(lab, hermetic, make_token, unique):
    token = make_token("probe-" + unique, "automation")
    server = f"https://127.0.0.1:{int(closed_port())}"
    with pytest.raises(ClusterUnreachable) as info:
        probe({"host": server, "api_key": token, "ca_cert": lab.ca.cert_path}, timeout=2)
    text = str(info.value)
    assert info.value.server == server
    assert f"GET {server}/version failed" in text
    assert "refused" in text.lower()
    assert token not in text


def test_probe_is_bounded_by_the_timeout(lab, hermetic, silent_server):
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as info:
        probe({"host": silent_server, "api_key": "sha256~never-checked", "ca_cert": lab.ca.cert_path}, timeout=2)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed  # 2 s per attempt; generous slack for a loaded machine
    assert info.value.server == silent_server
    assert f"GET {silent_server}/version failed" in str(info.value)
    assert "timed out" in str(info.value).lower() or "timeout" in str(info.value).lower()
    assert "never-checked" not in str(info.value)


def test_probe_impersonation_reports_the_impersonated_account(lab, hermetic, make_token, unique):
    namespace = "probe-" + unique
    make_token(namespace, "automation")  # the service account exists; the admin acts as it without its token
    result = probe({"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster,
                    "impersonate_user": service_account(namespace, "automation")}, timeout=10)
    assert result == {"server": server_of(lab, lab.layout.registry_cluster), "version": VERSION,
                      "user": service_account(namespace, "automation")}


def test_probes_in_parallel_keep_each_cluster_configuration(lab, hermetic, make_token, unique, silent_server):
    """Every lab cluster twice, by kubeconfig context and by host + service-account token, at once
    and with a hung and a refused one: each reports its own server and identity. A token cluster
    that inherited a kubeconfig's client certificate would report lab-admin; one that inherited
    another cluster's host would fail (every cluster signs its own tokens)."""
    namespace = "parallel-" + unique
    clusters, expected = {}, {}
    for cluster, _port in lab.layout.clusters:
        server = server_of(lab, cluster)
        token = make_token(namespace, "robot", cluster=cluster)
        clusters[cluster + "-kubeconfig"] = {"kubeconfig": lab.kubeconfig, "context": cluster}
        expected[cluster + "-kubeconfig"] = {"reachable": True, "server": server, "version": VERSION, "user": ADMIN}
        clusters[cluster + "-token"] = {"host": server, "api_key": token, "ca_cert": lab.ca.cert_path}
        expected[cluster + "-token"] = {"reachable": True, "server": server, "version": VERSION,
                                        "user": service_account(namespace, "robot")}
    clusters["impersonated"] = {"kubeconfig": lab.kubeconfig, "context": "uat",
                                "impersonate_user": service_account(namespace, "robot")}
    expected["impersonated"] = {"reachable": True, "server": server_of(lab, "uat"), "version": VERSION,
                                "user": service_account(namespace, "robot")}
    refused = f"https://127.0.0.1:{int(closed_port())}"
    clusters["hung"] = {"host": silent_server, "api_key": "sha256~hung", "ca_cert": lab.ca.cert_path}
    clusters["refused"] = {"host": refused, "api_key": "sha256~refused", "ca_cert": lab.ca.cert_path}

    started = time.monotonic()
    results = probe_all(clusters, timeout=2)
    elapsed = time.monotonic() - started

    assert elapsed < 15, elapsed  # the hung cluster is bounded by the timeout, in parallel with the others
    assert sorted(results) == sorted(clusters)
    for name, result in expected.items():
        assert results[name] == result, name
    assert results["hung"]["reachable"] is False and results["hung"]["server"] == silent_server
    assert "timed out" in results["hung"]["error"].lower() or "timeout" in results["hung"]["error"].lower()
    assert results["refused"] == {"reachable": False, "server": refused, "error": results["refused"]["error"]}
    assert "refused" in results["refused"]["error"].lower()


def test_clusters_for_several_clusters(lab, hermetic, make_token, unique):
    """Gateways built one after the other, by kubeconfig and by token, each talk to their own cluster
    as their own user."""
    namespace = "client-" + unique
    token = make_token(namespace, "robot", cluster="test")
    by_kubeconfig = Cluster.of_auth({"kubeconfig": lab.kubeconfig, "context": "registry"})
    by_token = Cluster.of_auth({"host": server_of(lab, "test"), "api_key": token, "ca_cert": lab.ca.cert_path})
    assert by_kubeconfig.host == server_of(lab, "registry")
    assert by_token.host == server_of(lab, "test")
    assert by_token.dynamic.configuration.cert_file is None and by_token.dynamic.configuration.key_file is None

    def who(cluster):
        review = cluster.create(cluster.kind("authentication.k8s.io/v1", "SelfSubjectReview"), SELF_SUBJECT_REVIEW)
        return review["status"]["userInfo"]["username"]

    assert who(by_kubeconfig) == ADMIN
    assert who(by_token) == service_account(namespace, "robot")


# --- the validate playbook, as AWX runs it -----------------------------------------------------

def task_result(runner, task=VALIDATE_TASK):
    for event in runner.events:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task") == task:
            return data["res"]
    raise AssertionError(f"no result of {task!r} in:\n{runner.stdout_text}")


def kubeconfig_secrets(lab):
    """The lab admin's private key, as the kubeconfig holds it and decoded."""
    with open(lab.kubeconfig) as handle:
        users = yaml.safe_load(handle)["users"]
    key_data = users[0]["user"]["client-key-data"]
    pem_lines = base64.b64decode(key_data).decode().splitlines()
    return [key_data, pem_lines[1], pem_lines[-2]]


def assert_no_secret(runner, secrets):
    everything = runner.stdout_text + json.dumps(runner.events)
    for secret in secrets:
        assert secret and secret not in everything


@pytest.fixture
def lab_inventory_copy(lab, tmp_path):
    """copy(host=k8s_auth, ...) -> a copy of inventories/lab, those hosts' credentials replaced.

    Run it with ``envvars=lab_state``: the copy finds the lab's kubeconfig there."""
    def copy(**auth_by_host):
        folder = tmp_path / "inventory"
        shutil.copytree(LAB_INVENTORY, str(folder))
        hosts_file = folder / "hosts.yml"
        inventory = yaml.safe_load(hosts_file.read_text())
        hosts = inventory["all"]["children"]["clusters"]["hosts"]
        for host, auth in auth_by_host.items():
            hosts[host]["segmented_registry_k8s_auth"] = auth
        hosts_file.write_text(yaml.safe_dump(inventory))
        return str(folder)
    return copy


@pytest.fixture
def lab_state(lab):
    return {"SEGMENTED_REGISTRY_LAB_STATE": lab.state}


def test_validate_playbook_reports_every_lab_cluster(lab, run_playbook):
    runner = run_playbook("playbooks/validate.yml")
    assert runner.status == "successful", runner.stdout_text
    result = task_result(runner)
    assert result["changed"] is False
    assert result["clusters"] == {
        cluster: {"reachable": True, "server": server_of(lab, cluster), "version": VERSION, "user": ADMIN}
        for cluster in ("registry", "test", "uat", "prod")}
    assert result["topology"]["registry_cluster"]["name"] == "registry"
    assert [(c["name"], c["environment"]) for c in result["topology"]["consumer_clusters"]] == [
        ("test", "test"), ("uat", "uat"), ("prod", "prod")]
    summary = task_result(runner, SUMMARY_TASK)["msg"]
    assert summary[0].startswith("registry cluster registry (kubeconfig "), summary
    assert summary[0].endswith("context registry) hosts test, uat, prod"), summary
    for environment in ("test", "uat", "prod"):
        assert any(line.startswith(environment + ": ") and line.endswith("consumers: " + environment)
                   for line in summary), summary
    assert_no_secret(runner, kubeconfig_secrets(lab))


def test_validate_playbook_with_a_service_account_token(lab, run_playbook, make_token, unique, lab_inventory_copy,
                                                        lab_state):
    """The registry cluster by host + a real token, the others by kubeconfig; -vvv shows neither secret."""
    namespace = "validate-" + unique
    token = make_token(namespace, "automation")
    inventory = lab_inventory_copy(registry={"host": server_of(lab, "registry"), "api_key": token,
                                             "ca_cert": lab.ca.cert_path})
    runner = run_playbook("playbooks/validate.yml", inventory=inventory, envvars=lab_state, verbosity=3)
    assert runner.status == "successful", runner.stdout_text
    clusters = task_result(runner)["clusters"]
    assert clusters["registry"] == {"reachable": True, "server": server_of(lab, "registry"), "version": VERSION,
                                    "user": service_account(namespace, "automation")}
    for cluster in ("test", "uat", "prod"):
        assert clusters[cluster] == {"reachable": True, "server": server_of(lab, cluster), "version": VERSION,
                                     "user": ADMIN}
    summary = task_result(runner, SUMMARY_TASK)["msg"]
    assert summary[0].startswith(f"registry cluster registry (host {server_of(lab, 'registry')}) hosts")
    assert "ESTABLISH LOCAL CONNECTION" in runner.stdout_text, "not verbose: the secret check proves little"
    assert_no_secret(runner, [token] + kubeconfig_secrets(lab))


def test_validate_playbook_fails_on_a_closed_port(lab, run_playbook, make_token, unique, lab_inventory_copy,
                                                  lab_state):
    token = make_token("validate-" + unique, "automation", cluster="uat")
    server = f"https://127.0.0.1:{int(closed_port())}"
    inventory = lab_inventory_copy(uat={"host": server, "api_key": token, "ca_cert": lab.ca.cert_path})
    runner = run_playbook("playbooks/validate.yml", inventory=inventory, envvars=lab_state, verbosity=3)
    assert runner.status == "failed", runner.stdout_text
    result = task_result(runner)
    texts = [problem["text"] for problem in result["problems"]]
    assert len(texts) == 1, texts
    assert texts[0].startswith("uat: segmented_registry_k8s_auth: cannot reach the cluster at {0} (credentials from "
                               "host {0}): GET {0}/version failed: ".format(server)), texts[0]
    assert "refused" in texts[0].lower(), texts[0]
    assert result["msg"] == "The inventory has 1 problem:\n- " + texts[0], result["msg"]
    assert result["clusters"]["uat"]["reachable"] is False and result["clusters"]["uat"]["server"] == server
    for cluster in ("registry", "test", "prod"):
        assert result["clusters"][cluster]["reachable"] is True, result["clusters"]
    assert texts[0] in runner.stdout_text
    assert "ESTABLISH LOCAL CONNECTION" in runner.stdout_text, "not verbose: the secret check proves little"
    assert_no_secret(runner, [token] + kubeconfig_secrets(lab))


def test_validate_playbook_forged_token_and_missing_kubeconfig(lab, run_playbook, make_token, unique,
                                                               lab_inventory_copy, lab_state, tmp_path):
    """Every unreachable cluster is reported at once, each naming its inventory host, server and error."""
    token = make_token("validate-" + unique, "automation", cluster="test")
    forged = forge(token)
    server = server_of(lab, "test")
    missing = str(tmp_path / "missing-kubeconfig")
    inventory = lab_inventory_copy(test={"host": server, "api_key": forged, "ca_cert": lab.ca.cert_path},
                                   uat={"kubeconfig": missing, "context": "uat"})
    runner = run_playbook("playbooks/validate.yml", inventory=inventory, envvars=lab_state, verbosity=3)
    assert runner.status == "failed", runner.stdout_text
    result = task_result(runner)
    texts = [problem["text"] for problem in result["problems"]]
    assert len(texts) == 2, texts
    assert texts[0].startswith("test: segmented_registry_k8s_auth: cannot reach the cluster at {0} (credentials from "
                               "host {0}): GET {0}/version failed: HTTP 401".format(server)), texts[0]
    assert texts[1].startswith("uat: segmented_registry_k8s_auth: cannot reach the cluster at an unknown API server "
                               "(credentials from kubeconfig {} context uat)".format(missing)), texts[1]
    assert result["msg"].startswith("The inventory has 2 problems:"), result["msg"]
    assert result["clusters"]["registry"]["reachable"] is True and result["clusters"]["prod"]["reachable"] is True
    assert_no_secret(runner, [token, forged] + kubeconfig_secrets(lab))


def test_validate_playbook_names_what_the_roles_require_and_a_build_namespace_of_an_environment(
        lab, run_playbook, inventory):
    """Before anything runs, every host's missing role variable (from the roles' argument specs)
    and a build namespace that is an environment's namespace (issue 22), all at once; no cluster
    is reached while the inventory has problems."""
    def edit(hosts, group_vars):
        del group_vars["registry_cluster_token_server_route_host"]
        del group_vars["consumer_cluster_logical_registry"]
        hosts["test"]["segmented_registry_credentials"]["builders"] = [{"namespace": "prod"}]

    runner = run_playbook("playbooks/validate.yml", inventory=inventory(edit))
    assert runner.status == "failed", runner.stdout_text
    result = task_result(runner)
    found = sorted((problem["host"], problem["field"]) for problem in result["problems"])
    assert found == [("prod", "consumer_cluster_logical_registry"),
                     ("registry", "registry_cluster_token_server_route_host"),
                     ("test", "consumer_cluster_logical_registry"),
                     ("test", "segmented_registry_credentials.builders[0].namespace"),
                     ("uat", "consumer_cluster_logical_registry")], result["problems"]
    builder = [p for p in result["problems"] if p["field"].startswith("segmented_registry_credentials")][0]
    assert "is also the namespace of environment prod (segmented_registry_environments[2] (prod))" in \
        builder["message"]
    assert result["clusters"] == {}
