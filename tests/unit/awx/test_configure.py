"""awx/configure.yml run for real, its awx.awx modules talking to a stand-in for AWX's REST API
(api/v2: list with filters, create, update, associations, survey specs; an in-memory store on
loopback). It proves what a syntax check cannot: the objects AWX would hold after the run, among
them the credential type's injectors sent as written (not rendered by Ansible on the way), each job
template's survey, credential and execution environment, and the schedule; and that a second run
creates nothing new."""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

import pytest

from tests import awx_as_code as awx

REPO = awx.REPO
VENV_BIN = os.path.dirname(sys.executable)
EXAMPLE_KUBECONFIG = os.path.join(awx.AWX, "credential_types", "kubeconfig.example.yml")
EXAMPLE_CA_BUNDLE = os.path.join(awx.AWX, "credential_types", "ca_bundle.example.pem")
TOKEN = "stand-in-token-0123456789"
#: the endpoints whose objects schedules may run (AWX's unified job templates)
UNIFIED = ("job_templates", "projects", "inventory_sources")


class Controller:
    """An in-memory api/v2: objects by endpoint, and every write request received."""

    def __init__(self):
        self.objects = {"organizations": [{"id": 1, "name": "Default"}]}
        self.writes = []
        self.next_id = 100
        self.lock = threading.Lock()

    def url(self, endpoint, ident):
        return f"/api/v2/{endpoint}/{ident}/"

    def create(self, endpoint, data):
        self.next_id += 1
        ident = self.next_id
        item = dict(data, id=ident, type=endpoint.rstrip("s"), url=self.url(endpoint, ident),
                    summary_fields={}, related={})
        if endpoint == "job_templates":
            item["related"] = {"survey_spec": self.url(endpoint, ident) + "survey_spec/",
                               "credentials": self.url(endpoint, ident) + "credentials/"}
            item["_credentials"], item["_survey_spec"] = [], {}
        if endpoint == "projects":
            item["scm_revision"] = ""
        self.objects.setdefault(endpoint, []).append(item)
        return item

    def find(self, endpoint, ident):
        for item in self.objects.get(endpoint, []):
            if item["id"] == ident:
                return item
        return None

    def listing(self, endpoint, query):
        items = [i for e in UNIFIED for i in self.objects.get(e, [])] if endpoint == "unified_job_templates" \
            else self.objects.get(endpoint, [])
        ors = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
        ands = {k: v for k, v in query.items() if not k.startswith("or__") and k not in ("page", "page_size")}

        def matches(item):
            if ors and not any(str(item.get(k)) == v for k, v in ors.items()):
                return False
            return all(str(item.get(k)) == v for k, v in ands.items())
        found = [self.public(i) for i in items if matches(i)]
        return {"count": len(found), "next": None, "previous": None, "results": found}

    @staticmethod
    def public(item):
        return {k: v for k, v in item.items() if not k.startswith("_")}


@pytest.fixture
def controller():
    state = Controller()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body=None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self, method):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.reply(401, {"detail": "Authentication credentials were not provided."})
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p][2:]  # after api/v2
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            with state.lock:
                if method != "GET":
                    state.writes.append((method, url.path, body))
                if len(parts) == 1 and method == "GET":
                    return self.reply(200, state.listing(parts[0], dict(parse_qsl(url.query))))
                if len(parts) == 1 and method == "POST":
                    return self.reply(201, state.public(state.create(parts[0], body)))
                item = state.find(parts[0], int(parts[1])) if len(parts) >= 2 and parts[1].isdigit() else None
                if item is None:
                    return self.reply(404, {"detail": "Not found."})
                if len(parts) == 2 and method == "GET":
                    return self.reply(200, state.public(item))
                if len(parts) == 2 and method == "PATCH":
                    item.update(body)
                    return self.reply(200, state.public(item))
                if parts[2:] == ["survey_spec"]:
                    if method == "POST":
                        item["_survey_spec"] = body
                        return self.reply(200, {})
                    if method == "DELETE":
                        item["_survey_spec"] = {}
                        return self.reply(200, {})
                    return self.reply(200, item["_survey_spec"])
                if parts[2:] == ["credentials"]:
                    if method == "POST":
                        if body.get("disassociate"):
                            item["_credentials"].remove(body["id"])
                        else:
                            item["_credentials"].append(body["id"])
                        return self.reply(204)
                    found = [state.public(state.find("credentials", i)) for i in item["_credentials"]]
                    return self.reply(200, {"count": len(found), "next": None, "results": found})
                return self.reply(404, {"detail": "Not found."})

        def do_GET(self):  # noqa: N802 (http.server's names)
            self.route("GET")

        def do_POST(self):  # noqa: N802
            self.route("POST")

        def do_PATCH(self):  # noqa: N802
            self.route("PATCH")

        def do_DELETE(self):  # noqa: N802
            self.route("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def configure(controller, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_", "AAP_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), CONTROLLER_HOST=controller.host,
               CONTROLLER_OAUTH_TOKEN=TOKEN, PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(awx.AWX, "configure.yml"),
            "-e", "segmented_registry_awx_scm_url=https://git.example.com/platform/segmented-registry.git",
            *extra]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def one(controller, endpoint, name):
    found = [i for i in controller.objects.get(endpoint, []) if i["name"] == name]
    assert len(found) == 1, (endpoint, name, [i["name"] for i in controller.objects.get(endpoint, [])])
    return found[0]


def test_configure_creates_every_object_as_the_files_describe_them(controller):
    run = configure(controller, "-e", f"segmented_registry_awx_kubeconfig_file={EXAMPLE_KUBECONFIG}",
                    "-e", f"segmented_registry_awx_ca_bundle_file={EXAMPLE_CA_BUNDLE}",
                    "-e", json.dumps({"segmented_registry_awx_credentials_rrule": "DTSTART:20260101T050000Z RRULE:FREQ=DAILY;INTERVAL=1"}),
                    "-e", "segmented_registry_awx_ee_image=registry.example.com/platform/segmented-registry-ee:0.1.0",
                    "-e", "segmented_registry_awx_forks=18")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]

    definition = awx.credential_type()
    ctype = one(controller, "credential_types", definition["name"])
    assert (ctype["kind"], ctype["inputs"], ctype["injectors"]) == (
        definition["kind"], definition["inputs"], definition["injectors"])
    assert ctype["injectors"]["env"] == {"SEGMENTED_REGISTRY_KUBECONFIG": "{{ tower.filename.kubeconfig }}",
                                         "SEGMENTED_REGISTRY_CA_BUNDLE": "{{ tower.filename.ca_bundle }}"}

    credential = one(controller, "credentials", "Segmented registry clusters")
    with open(EXAMPLE_KUBECONFIG) as handle:
        kubeconfig = handle.read()
    assert credential["credential_type"] == ctype["id"] and credential["organization"] == 1
    with open(EXAMPLE_CA_BUNDLE) as handle:
        ca_bundle = handle.read()
    assert {k: v.rstrip("\n") for k, v in credential["inputs"].items()} == {
        "kubeconfig": kubeconfig.rstrip("\n"), "ca_bundle": ca_bundle.rstrip("\n")}
    assert "REPLACE-WITH-A-TOKEN" not in run.stdout, "the kubeconfig was printed"

    ee = one(controller, "execution_environments", "Segmented registry EE")
    assert ee["image"] == "registry.example.com/platform/segmented-registry-ee:0.1.0"
    project = one(controller, "projects", "Segmented registry")
    # the project is the release tag of the collection version the EE holds (lockstep)
    version = awx.load_yaml(os.path.join(REPO, "galaxy.yml"))["version"]
    assert (project["scm_type"], project["scm_branch"], project["default_environment"]) == ("git", f"v{version}", ee["id"])
    assert "segmented-registry-ee:" + version in awx.load_yaml(os.path.join(awx.AWX, "execution-environment.yml"))["options"]["tags"]
    inventory = one(controller, "inventories", "Segmented registry")
    source = one(controller, "inventory_sources", "Segmented registry - project")
    assert (source["inventory"], source["source"], source["source_project"], source["source_path"]) == (
        inventory["id"], "scm", project["id"], "inventories/awx/hosts.yml")

    for template in awx.job_templates():
        created = one(controller, "job_templates", template["name"])
        assert (created["playbook"], created["project"], created["inventory"], created["execution_environment"]) == (
            template["playbook"], project["id"], inventory["id"], ee["id"])
        assert created["_credentials"] == [credential["id"]]
        assert created["survey_enabled"] is bool(template["survey"])
        assert created["_survey_spec"].get("spec", []) == template["survey"]
        assert created["ask_job_type_on_launch"] is template.get("ask_job_type_on_launch", False)
        assert created["forks"] == 18  # segmented_registry_awx_forks: one per cluster and localhost on a fleet

    reconcile = awx.job_template("reconcile")
    schedule = one(controller, "schedules", reconcile["schedule"]["name"])
    assert schedule["unified_job_template"] == one(controller, "job_templates", reconcile["name"])["id"]
    assert schedule["rrule"] == reconcile["schedule"]["rrule"] and schedule["enabled"] is True
    renew = awx.job_template("credentials")
    schedule = one(controller, "schedules", renew["schedule"]["name"])
    assert schedule["unified_job_template"] == one(controller, "job_templates", renew["name"])["id"]
    # segmented_registry_awx_credentials_rrule overrides this schedule only
    assert schedule["rrule"] == "DTSTART:20260101T050000Z RRULE:FREQ=DAILY;INTERVAL=1" and schedule["enabled"] is True
    assert len(controller.objects["schedules"]) == 2

    # a second run finds everything and creates nothing
    count = {endpoint: len(items) for endpoint, items in controller.objects.items()}
    again = configure(controller, "-e", "segmented_registry_awx_ee_image=registry.example.com/platform/segmented-registry-ee:0.1.0")
    assert again.returncode == 0, again.stdout[-4000:]
    assert {endpoint: len(items) for endpoint, items in controller.objects.items()} == count


def test_without_forks_the_templates_keep_awxs_default(controller):
    controller.create("credentials", {"name": "Segmented registry clusters", "organization": 1})
    run = configure(controller)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    templates = controller.objects["job_templates"]
    assert len(templates) == len(awx.job_templates())
    assert [t["name"] for t in templates if "forks" in t] == []


@pytest.mark.parametrize("forks", ["0", "many", "-3", "2.5"])
def test_forks_that_are_not_a_whole_number_of_at_least_1_are_refused_before_anything_is_written(controller, forks):
    run = configure(controller, "-e", f"segmented_registry_awx_forks={forks}")
    assert run.returncode != 0
    assert f"segmented_registry_awx_forks is {forks}: give a whole number of at least 1" in run.stdout, run.stdout[-3000:]
    assert controller.writes == []


def test_without_a_kubeconfig_file_the_credential_must_exist_and_nothing_secret_is_needed(controller):
    run = configure(controller)
    assert run.returncode != 0
    assert "Segmented registry clusters" in run.stdout, run.stdout[-3000:]
    assert not controller.objects.get("credentials")


def test_a_kubeconfig_without_its_ca_bundle_is_refused_before_anything_is_written(controller):
    run = configure(controller, "-e", f"segmented_registry_awx_kubeconfig_file={EXAMPLE_KUBECONFIG}")
    assert run.returncode != 0
    assert "segmented_registry_awx_ca_bundle_file" in run.stdout, run.stdout[-3000:]
    assert controller.writes == []


def test_configure_refuses_to_run_without_the_repository_url(controller):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), CONTROLLER_HOST=controller.host,
               CONTROLLER_OAUTH_TOKEN=TOKEN)
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(awx.AWX, "configure.yml")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and "segmented_registry_awx_scm_url" in run.stdout
    assert controller.writes == []
