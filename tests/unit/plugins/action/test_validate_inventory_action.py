"""validate_inventory end to end: the action plugin gathering the inventory, then the module.

Runs the real ansible / ansible-playbook commands against small inventories written to a
temporary folder, offline (check_reachable false): reaching real clusters is tested on the lab,
in tests/integration/test_validate_inventory.py.
"""


import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
TOKEN = "sha256~action-test-token-7f3a"


@pytest.fixture
def ansible(collections_path, tmp_path):
    def run(inventory, *args, command="ansible", extra_env=None):
        if isinstance(inventory, str) and not os.path.exists(inventory):
            path = tmp_path / "hosts.yml"
            path.write_text(textwrap.dedent(inventory))
            inventory = str(path)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        env.pop("ANSIBLE_CONFIG", None)
        for name in list(env):
            if name.startswith("K8S_AUTH_"):
                env.pop(name)
        env.update(extra_env or {})
        argv = [os.path.join(BIN, command), "-i", inventory] + list(args)
        if command == "ansible":
            argv = argv[:1] + ["localhost"] + argv[1:] + ["-m", "segmented.registry.validate_inventory"]
        process = subprocess.run(argv, env=env, cwd=str(tmp_path), capture_output=True, check=False,
                                 text=True, timeout=120)
        output = process.stdout
        try:
            report = json.loads(output[output.index("{"):])
        except ValueError:
            raise AssertionError("no JSON output:\n" + output + process.stderr)
        return process, report

    return run


def task_result(report):
    tasks = report["plays"][0]["tasks"]
    return tasks[0]["hosts"]["localhost"]


INVENTORY = """
all:
  vars:
    ansible_connection: local
    segmented_registry_environments:
      - {name: test, route_host: test-registry.apps.registry.example.com}
      - {name: prod, route_host: prod-registry.apps.registry.example.com, policy: {after: test}}
    kubeconfig_path: /srv/kube/config
  hosts:
    hub:
      segmented_registry_role: registry
      segmented_registry_k8s_auth: {kubeconfig: "{{ kubeconfig_path }}", context: hub}
    test-east:
      segmented_registry_environment: "{{ 'test' }}"
      segmented_registry_k8s_auth: {kubeconfig: "{{ kubeconfig_path }}", context: test-east}
    prod-east:
      segmented_registry_environment: prod
      segmented_registry_k8s_auth:
        host: https://api.prod-east.example.com:6443
        api_key: "%s"
    legacy:
      segmented_registry_environment: default
""" % TOKEN


def test_gathers_the_inventory_offline(ansible):
    process, report = ansible(INVENTORY, "-a", "check_reachable=false")
    result = task_result(report)
    assert process.returncode == 0, result
    topology = result["topology"]
    assert topology["registry_cluster"]["name"] == "hub"
    # kubeconfig paths are reported as they are: the module masks no_log values, the action plugin does not need to
    assert topology["registry_cluster"]["auth"] == "kubeconfig /srv/kube/config context hub"
    assert [(c["name"], c["environment"]) for c in topology["consumer_clusters"]] == [
        ("test-east", "test"), ("prod-east", "prod")]
    assert topology["default_clusters"] == ["legacy"]
    assert result["ansible_facts"]["segmented_registry_topology"] == topology
    assert result["changed"] is False
    assert TOKEN not in json.dumps(report)


def test_reports_every_problem_and_warns_about_typos(ansible):
    inventory = """
    all:
      vars:
        ansible_connection: local
        segmented_registry_environments:
          - {name: test, route_host: test-registry.apps.registry.example.com}
      hosts:
        hub:
          segmented_registry_role: registry
          segmented_registry_k8s_auth: {host: "https://api.hub.example.com", api_key: "{{ vault_hub_token }}"}
        a:
          segmented_registry_enviroment: test
        b:
          segmented_registry_environment: [test, prod]
        c:
          segmented_registry_environment: test
          segmented_registry_environments:
            - {name: test, route_host: other.example.com}
    """
    process, report = ansible(inventory, "-a", "check_reachable=false")
    result = task_result(report)
    assert process.returncode != 0
    texts = [p["text"] for p in result["problems"]]
    assert "hub: segmented_registry_k8s_auth: uses an undefined variable ('vault_hub_token' is undefined); define it " \
           "(a vaulted variable, for a secret) or remove segmented_registry_k8s_auth" in texts
    assert any(t.startswith("c: segmented_registry_environments: differs from its value on ") for t in texts), texts
    assert any(t.startswith("b: segmented_registry_environment: [\"test\", \"prod\"] names 2 environments") for t in texts)
    assert result["msg"].startswith(f"The inventory has {len(texts)} problems:")
    assert any("a: segmented_registry_enviroment is not a variable of segmented.registry and is ignored; did you mean "
               "segmented_registry_environment?" in w for w in result.get("warnings", [])), result.get("warnings")


def test_explicit_arguments_replace_the_inventory(ansible, tmp_path):
    args = {"check_reachable": False,
            "environments": [{"name": "uat", "route_host": "uat-registry.example.com"}],
            "clusters": [{"name": "hub", "role": "registry", "k8s_auth": {"kubeconfig": "/k"}},
                         {"name": "uat-1", "environment": "uat", "k8s_auth": {"kubeconfig": "/k", "context": "u"}}]}
    process, report = ansible(INVENTORY, "-a", json.dumps(args))
    result = task_result(report)
    assert process.returncode == 0, result
    assert list(result["topology"]["environments"]) == ["uat"]
    assert result["topology"]["default_clusters"] == []


def test_a_bad_token_server_route_host_is_reported_with_the_inventorys_problems(ansible):
    """token_server_route_host (the registry_cluster role passes registry_cluster_token_server_route_host):
    an environment's route host is refused naming the environment, beside the inventory's own problems."""
    args = {"check_reachable": False, "token_server_route_host": "prod-registry.apps.registry.example.com",
            "pushers": ["no-slash"]}
    process, report = ansible(INVENTORY, "-a", json.dumps(args))
    result = task_result(report)
    assert process.returncode != 0
    texts = [p["text"] for p in result["problems"]]
    assert texts == ['hub: registry_cluster_pushers[0]: "no-slash" is not namespace/name of a service account; '
                     "use for example segmented-registry-promotion/promoter",
                     'hub: registry_cluster_token_server_route_host: "prod-registry.apps.registry.example.com" is the '
                     "route_host of environment prod: the token server needs a route host of its own, like "
                     "registry-token.apps.registry.example.com, that no environment uses"], texts


def test_a_token_server_route_host_is_checked_even_when_the_inventory_is_not_valid(ansible):
    inventory = INVENTORY.replace("segmented_registry_environment: prod", "segmented_registry_environment: nosuch")
    process, report = ansible(inventory, "-a", json.dumps({"check_reachable": False, "token_server_route_host": "Not A Host"}))
    texts = [p["text"] for p in task_result(report)["problems"]]
    assert process.returncode != 0
    assert any(text.startswith("prod-east: segmented_registry_environment:") for text in texts), texts
    assert 'inventory: registry_cluster_token_server_route_host: "Not A Host" is not a lowercase DNS name' in " ".join(texts), texts


def test_a_token_server_route_host_of_its_own_passes(ansible):
    args = {"check_reachable": False, "token_server_route_host": "registry-token.apps.registry.example.com"}
    process, report = ansible(INVENTORY, "-a", json.dumps(args))
    assert process.returncode == 0, task_result(report)


def test_unknown_option_is_refused(ansible):
    process, report = ansible(INVENTORY, "-a", "check_reachability=false")
    result = task_result(report)
    assert process.returncode != 0
    assert "check_reachability" in result["msg"]


def test_validate_playbook_with_the_example_inventory(ansible):
    process, report = ansible(os.path.join(REPO, "inventories", "example"), "segmented.registry.validate",
                              "-e", "segmented_registry_check_reachable=false", "-e", "vault_prod_cluster_token=x",
                              command="ansible-playbook")
    assert process.returncode == 0, report
    tasks = report["plays"][0]["tasks"]
    summary = tasks[1]["hosts"]["localhost"]["msg"]
    assert summary[0].startswith("registry cluster registry-cluster (kubeconfig ~/.kube/segmented-registry.kubeconfig "
                                 "context registry) hosts test, uat, prod")
    assert "left alone (no environment): legacy-cluster" in summary


ROLE_VARIABLES = [
    {"role": "segmented.registry.registry_cluster", "clusters": "registry",
     "variables": ["registry_cluster_token_server_image", "registry_cluster_token_server_route_host"]},
    {"role": "segmented.registry.consumer_cluster", "clusters": "consumers",
     "variables": ["consumer_cluster_logical_registry"]},
]


def test_role_variables_name_every_host_and_variable_missing(ansible):
    """What the roles require, for the hosts they run for (the registry cluster; the consumers,
    not the host left alone): unset, empty and templated from an undefined variable, all at once
    with the inventory's own problems; extra variables count."""
    inventory = INVENTORY.replace("    kubeconfig_path: /srv/kube/config\n", """    kubeconfig_path: /srv/kube/config
    consumer_cluster_logical_registry: registry.apps.example.com
""").replace("      segmented_registry_environment: prod\n", """      segmented_registry_environment: prod
      consumer_cluster_logical_registry: "{{ vault_registry_name }}"
""").replace("      segmented_registry_role: registry\n", """      segmented_registry_role: registry
      registry_cluster_token_server_image: ""
""").replace("    legacy:\n", "    legacy:\n      segmented_registry_enviroment: prod\n")
    process, report = ansible(inventory, "-a", json.dumps({"check_reachable": False, "role_variables": ROLE_VARIABLES}))
    result = task_result(report)
    assert process.returncode != 0, result
    texts = [p["text"] for p in result["problems"]]
    requires = "the role segmented.registry.{} requires it (required in its meta/argument_specs.yml, no default)"
    assert texts == [
        "hub: registry_cluster_token_server_image: is empty, and " + requires.format("registry_cluster")
        + "; set it to a value",
        "hub: registry_cluster_token_server_route_host: is not set, and " + requires.format("registry_cluster")
        + "; set it for this host in the inventory (group_vars or host_vars/hub); see ansible-doc -t role "
        "segmented.registry.registry_cluster",
        "prod-east: consumer_cluster_logical_registry: uses an undefined variable ('vault_registry_name' is "
        "undefined), and " + requires.format("consumer_cluster") + "; define it or set "
        "consumer_cluster_logical_registry to a value",
    ], texts
    assert TOKEN not in json.dumps(report)

    process, report = ansible(inventory, "-a", json.dumps({"check_reachable": False, "role_variables": ROLE_VARIABLES}),
                              "-e", json.dumps({"registry_cluster_token_server_image": "r.example.com/ts:1",
                                                "registry_cluster_token_server_route_host": "token.example.com",
                                                "vault_registry_name": "registry.apps.example.com"}))
    assert process.returncode == 0, task_result(report)


@pytest.mark.parametrize("value, needle", [
    ({"role": "r", "clusters": "all", "variables": ["x"]}, "role_variables[0].clusters must be registry or consumers"),
    ({"role": "r", "clusters": "registry", "variables": "x"}, "role_variables[0].variables must be a list"),
    ({"role": "r", "clusters": "registry", "variables": ["x"], "hosts": "a"}, 'role_variables[0]: unknown key "hosts"'),
])
def test_a_malformed_role_variables_is_refused(ansible, value, needle):
    process, report = ansible(INVENTORY, "-a", json.dumps({"check_reachable": False, "role_variables": [value]}))
    result = task_result(report)
    assert process.returncode != 0 and needle in result["msg"], result


def test_validate_playbook_reads_what_the_roles_require_from_their_argument_specs(ansible, tmp_path):
    """validate.yml names, per host, every variable marked required in the argument specs of the
    roles site.yml runs for that host, before anything runs: here the example inventory without
    the token server's route host and the logical registry name."""
    folder = tmp_path / "example"
    shutil.copytree(os.path.join(REPO, "inventories", "example"), str(folder))
    group_vars = folder / "group_vars" / "all.yml"
    values = yaml.safe_load(group_vars.read_text())
    values.pop("registry_cluster_token_server_route_host", None)
    values.pop("consumer_cluster_logical_registry", None)
    group_vars.write_text(yaml.safe_dump(values))
    process, report = ansible(str(folder), "segmented.registry.validate", "-e", "segmented_registry_check_reachable=false",
                              "-e", "vault_prod_cluster_token=x", command="ansible-playbook")
    assert process.returncode != 0, report
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    missing = [(p["host"], p["field"]) for p in result["problems"]]
    assert missing == [("registry-cluster", "registry_cluster_token_server_route_host"),
                       ("test-cluster", "consumer_cluster_logical_registry"),
                       ("uat-cluster", "consumer_cluster_logical_registry"),
                       ("prod-cluster", "consumer_cluster_logical_registry")], result["problems"]


@pytest.fixture
def api_server():
    """The URL of an API server on loopback that answers GET /version (and nothing else: no
    SelfSubjectReview, as before Kubernetes 1.28), for a cluster that is reachable without a lab."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = json.dumps({"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "0" * 40, "gitTreeState": "clean",
                               "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}).encode()
            self.send_response(200 if self.path.rstrip("/") == "/version" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802 - http.server's name
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def reachable_inventory(server):
    """INVENTORY with the hub and prod-east answering (one server under two names: each host must be a
    cluster of its own); test-east's kubeconfig path does not exist."""
    return INVENTORY.replace("{kubeconfig: \"{{ kubeconfig_path }}\", context: hub}", "{host: \"%s\", api_key: \"%s\"}" % (server, TOKEN)).replace(
        "https://api.prod-east.example.com:6443", server.replace("127.0.0.1", "localhost"))


def test_leave_out_names_the_unreachable_consumer_with_its_kubeconfig_path(ansible, api_server):
    """The module masks no_log values in its result, kubeconfig paths included: the action plugin
    says why a consumer is left out as computed on the controller, the path readable."""
    process, report = ansible(reachable_inventory(api_server), "-a", "unreachable_consumers=leave_out timeout=2")
    result = task_result(report)
    assert process.returncode == 0, result
    assert list(result["left_out"]) == ["test-east"]
    why = result["left_out"]["test-east"]
    assert why.startswith("test-east: segmented_registry_k8s_auth: cannot reach the cluster at an unknown API server "
                          "(credentials from kubeconfig /srv/kube/config context test-east): cannot build a client:"), why
    assert "********" not in why
    assert result["clusters"]["prod-east"]["reachable"] is True
    assert TOKEN not in json.dumps(report)


def test_an_unreachable_consumer_fails_by_default(ansible, api_server):
    process, report = ansible(reachable_inventory(api_server), "-a", "timeout=2")
    result = task_result(report)
    assert process.returncode != 0
    assert [p["host"] for p in result["problems"]] == ["test-east"], result["msg"]
    assert "kubeconfig /srv/kube/config context test-east" in result["msg"]


def test_an_unreachable_registry_cluster_fails_even_with_leave_out(ansible, api_server):
    inventory = INVENTORY.replace("https://api.prod-east.example.com:6443", api_server)
    process, report = ansible(inventory, "-a", "unreachable_consumers=leave_out timeout=2")
    result = task_result(report)
    assert process.returncode != 0
    assert [p["host"] for p in result["problems"]] == ["hub"], result["problems"]
    assert "left_out" not in result
