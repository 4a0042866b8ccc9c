"""segmented.registry.tag_environments and tag_environments_info, and playbooks promote.yml /
demote.yml, on the lab's registry cluster (issue 3).

Every module run goes through ansible-playbook (ansible-runner, as AWX runs it)."""
import copy
import hashlib
import json
import re
import socket
import sys
import threading
import time
import uuid

import pytest
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from lab import image

KEY = "segmented.registry/environments"
KNOWN = ["test", "uat", "prod"]
TE = "tests/integration/playbooks/tag_environments.yml"
TE_INFO = "tests/integration/playbooks/tag_environments_info.yml"
STORM = "tests/integration/playbooks/tag_environments_storm.yml"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def fake_digest(seed):
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@pytest.fixture(scope="module")
def registry_api(lab):
    return lab.api_client(lab.layout.registry_cluster)


@pytest.fixture(scope="module")
def streams(registry_api):
    return DynamicClient(registry_api).resources.get(api_version="image.openshift.io/v1", kind="ImageStream")


@pytest.fixture(scope="module")
def lab_auth(lab):
    return {"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster}


@pytest.fixture
def namespace(registry_api, unique):
    """A fresh namespace on the registry cluster, deleted afterwards."""
    core = kclient.CoreV1Api(registry_api)
    name = "te-" + unique
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


def get_stream(streams, namespace, name):
    return streams.get(name=name, namespace=namespace).to_dict()


def spec_annotations(stream, tag):
    for item in (stream.get("spec") or {}).get("tags") or []:
        if item["name"] == tag:
            return item.get("annotations") or {}
    return None


def record_push(registry_api, lab, namespace, stream, tag, seed):
    """Record a pushed image in the ImageStream's status, the way the integrated registry does
    (status only, no spec tag); returns the digest."""
    digest = fake_digest(seed)
    image.record_push(registry_api, namespace, stream, tag, digest, lab.layout.integrated_endpoint, max_attempts=50)
    return digest


def make_stream(streams, namespace, name, spec=None, labels=None, annotations=None):
    body = {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": spec or {}}
    return streams.create(body=body, namespace=namespace).to_dict()


def set_annotation_by_hand(streams, namespace, name, tag, value, key=KEY):
    stream = get_stream(streams, namespace, name)
    for item in stream["spec"]["tags"]:
        if item["name"] == tag:
            item.setdefault("annotations", {})[key] = value
    return streams.replace(body=stream, namespace=namespace).to_dict()


def scrub(text, *secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@pytest.fixture
def tag_environments(run_playbook, lab_auth, tmp_path):
    """tag_environments(check=False, diff=False, auth=None, envvars=None, **module options) -> the
    registered result (a failed one too: check result['failed'])."""
    def run(check=False, diff=False, auth=None, envvars=None, **args):
        out = tmp_path / ("result-%s.json" % uuid.uuid4().hex)
        runner = run_playbook(TE, extravars={"te_args": args, "te_auth": lab_auth if auth is None else auth,
                                             "te_check": check, "te_diff": diff, "te_out": str(out)},
                              envvars=envvars)
        secrets = [(auth or {}).get("api_key"), (envvars or {}).get("K8S_AUTH_API_KEY")]
        assert runner.status == "successful", scrub(runner.stdout_text, *secrets)
        result = json.loads(out.read_text())
        text = json.dumps(result)
        for secret in secrets:
            assert not secret or secret not in text, "a token leaked into the result"
        return result
    return run


@pytest.fixture
def tag_environments_info(run_playbook, lab_auth, tmp_path):
    def run(**args):
        out = tmp_path / ("info-%s.json" % uuid.uuid4().hex)
        runner = run_playbook(TE_INFO, extravars={"te_args": args, "te_auth": lab_auth, "te_out": str(out)})
        assert runner.status == "successful", runner.stdout_text
        return json.loads(out.read_text())
    return run


def text(runner):
    """The playbook's output without colours, whitespace collapsed (the YAML callback folds lines)."""
    return re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", runner.stdout_text))


def changed_count(runner, host="localhost"):
    """How many tasks reported changed on the host."""
    return (runner.stats or {}).get("changed", {}).get(host, 0)


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


# ---------------------------------------------------------------------------------------------
# add / remove / exact, idempotent; pushed-only tag; check mode; diff
# ---------------------------------------------------------------------------------------------


def test_pushed_only_tag_add_remove_exact_each_idempotent(lab, streams, namespace, tag_environments):
    pushed = lab.push(namespace, "app", "v1", layers=1, layer_size=4096)
    before = get_stream(streams, namespace, "app")
    assert spec_annotations(before, "v1") is None  # a push writes status only: no spec tag

    first = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"], known_environments=KNOWN))
    assert first["changed"] is True
    assert first["environments_before"] == ["default"] and first["environments_after"] == ["test"]
    assert first["digest"] == pushed["digest"]
    after = get_stream(streams, namespace, "app")
    # The spec tag was created without `from`, touching nothing else.
    assert after["spec"]["tags"] == [{"name": "v1", "annotations": {KEY: "test"}, "referencePolicy": {"type": "Source"}}]
    assert after["status"] == before["status"]

    again = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"], known_environments=KNOWN))
    assert again["changed"] is False and again["environments_after"] == ["test"]
    assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    steps = [
        (dict(add=["uat", "prod"]), "prod,test,uat", ["prod", "test", "uat"]),
        (dict(remove=["prod"]), "test,uat", ["test", "uat"]),
        (dict(remove=["prod"]), "test,uat", ["test", "uat"]),  # not there: unchanged
        (dict(environments=["uat"]), "uat", ["uat"]),
        (dict(remove=["uat"]), None, ["default"]),  # last one: back to default
        (dict(environments=[]), None, ["default"]),
        (dict(environments=["prod", "test"]), "prod,test", ["prod", "test"]),
    ]
    for options, stored, shown in steps:
        result = ok(tag_environments(namespace=namespace, stream="app", tag="v1", **options))
        assert result["environments_after"] == shown, options
        assert spec_annotations(get_stream(streams, namespace, "app"), "v1").get(KEY) == stored, options
        version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]
        rerun = ok(tag_environments(namespace=namespace, stream="app", tag="v1", **options))
        assert rerun["changed"] is False, options
        assert rerun["environments_before"] == rerun["environments_after"] == shown
        assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == version, options
    final = get_stream(streams, namespace, "app")
    assert final["status"] == before["status"]
    assert final["spec"]["tags"] == [{"name": "v1", "annotations": {KEY: "prod,test"},
                                      "referencePolicy": {"type": "Source"}}]


def test_check_mode_writes_nothing_and_reports(lab, registry_api, streams, namespace, tag_environments):
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]

    checked = ok(tag_environments(check=True, namespace=namespace, name="app:v1", add=["uat"]))
    assert checked["changed"] is True and checked["environments_after"] == ["uat"]
    stream = get_stream(streams, namespace, "app")
    assert stream["metadata"]["resourceVersion"] == version and spec_annotations(stream, "v1") is None

    ok(tag_environments(namespace=namespace, name="app:v1", add=["uat"]))
    version = get_stream(streams, namespace, "app")["metadata"]["resourceVersion"]
    checked = ok(tag_environments(check=True, namespace=namespace, name="app:v1", remove=["uat"]))
    assert checked["changed"] is True and checked["environments_after"] == ["default"]
    checked = ok(tag_environments(check=True, namespace=namespace, name="app:v1", add=["uat"]))
    assert checked["changed"] is False
    assert get_stream(streams, namespace, "app")["metadata"]["resourceVersion"] == version


def test_diff_shows_the_list_before_and_after(lab, registry_api, streams, namespace, tag_environments):
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    result = ok(tag_environments(diff=True, namespace=namespace, name="app:v1", add=["test", "uat"]))
    assert result["diff"]["before"] == {"environments": ["default"]}
    assert result["diff"]["after"] == {"environments": ["test", "uat"]}
    result = ok(tag_environments(diff=True, check=True, namespace=namespace, name="app:v1", environments=["prod"]))
    assert result["diff"]["before"] == {"environments": ["test", "uat"]}
    assert result["diff"]["after"] == {"environments": ["prod"]}
    assert "diff" not in ok(tag_environments(namespace=namespace, name="app:v1", add=["test"]))


def test_spec_tag_keeps_every_other_annotation_and_field(lab, registry_api, streams, namespace, tag_environments):
    spec = {
        "lookupPolicy": {"local": True},
        "tags": [
            {"name": "latest", "annotations": {"description": "tracks upstream", "openshift.io/display-name": "App",
                                               "environment": "hand-written"},
             "from": {"kind": "DockerImage", "name": "quay.example.com/team/app:latest"},
             "importPolicy": {"scheduled": True, "importMode": "Legacy"},
             "referencePolicy": {"type": "Local"}, "generation": 2},
            {"name": "stable", "from": {"kind": "ImageStreamTag", "name": "app:latest"},
             "referencePolicy": {"type": "Source"}},
        ],
    }
    make_stream(streams, namespace, "app", spec=spec, labels={"team": "a"}, annotations={"owner": "team-a"})
    digest = record_push(registry_api, lab, namespace, "app", "latest", namespace)
    record_push(registry_api, lab, namespace, "app", "v9", namespace + "v9")
    before = get_stream(streams, namespace, "app")

    result = ok(tag_environments(namespace=namespace, name="app:latest", add=["uat", "test"]))
    assert result["changed"] and result["digest"] == digest
    after = get_stream(streams, namespace, "app")
    expected = copy.deepcopy(before["spec"])
    expected["tags"][0]["annotations"][KEY] = "test,uat"
    assert after["spec"] == expected
    assert after["status"] == before["status"]
    for field in ("labels", "annotations", "uid", "name", "namespace"):
        assert after["metadata"].get(field) == before["metadata"].get(field)

    # The proposal's key is a separate annotation: setting it leaves ours alone.
    result = ok(tag_environments(namespace=namespace, name="app:latest", annotation_key="environment",
                                 environments=["prod"]))
    # the spec tag already carries environment: hand-written (a valid name): that is the list before
    assert result["environments_before"] == ["hand-written"] and result["changed"]
    annotations = spec_annotations(get_stream(streams, namespace, "app"), "latest")
    assert annotations == {"description": "tracks upstream", "openshift.io/display-name": "App",
                           "environment": "prod", KEY: "test,uat"}


def test_hand_written_values_are_read_tolerantly_and_written_canonically(streams, namespace, tag_environments):
    make_stream(streams, namespace, "app", spec={"tags": [{"name": "v1", "annotations": {KEY: " uat,\n test ,test"}}]})
    # Nothing to change: the hand-written value is left as it is.
    same = ok(tag_environments(namespace=namespace, name="app:v1", add=["test"]))
    assert same["changed"] is False and same["environments_after"] == ["test", "uat"]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == " uat,\n test ,test"
    # A change writes the canonical form.
    ok(tag_environments(namespace=namespace, name="app:v1", add=["prod"]))
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "prod,test,uat"
    set_annotation_by_hand(streams, namespace, "app", "v1", '["uat", "test"]')
    result = ok(tag_environments(namespace=namespace, name="app:v1", remove=["uat"]))
    assert result["environments_before"] == ["test", "uat"]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "test"
    # An unreadable value stops add/remove, and the exact list repairs it, showing the old value.
    set_annotation_by_hand(streams, namespace, "app", "v1", "test; uat")
    refused = tag_environments(namespace=namespace, name="app:v1", add=["prod"])
    assert refused["failed"] and '"test; uat"' in refused["msg"]
    repaired = ok(tag_environments(namespace=namespace, name="app:v1", environments=["uat", "test"]))
    assert repaired["changed"] and repaired["environments_before"] is None
    assert any('"test; uat"' in warning for warning in repaired["warnings"])
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1")[KEY] == "test,uat"


def test_auth_from_k8s_auth_environment_variables(lab, registry_api, streams, namespace, make_token,
                                                  tag_environments, unique):
    """AWX's credential injects K8S_AUTH_HOST / _API_KEY / _SSL_CA_CERT; no auth option is given."""
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    token = make_token("sa-" + unique, "promoter", roles={namespace: "registry-editor"})
    envvars = {"K8S_AUTH_HOST": "https://127.0.0.1:%d" % dict(lab.layout.clusters)[lab.layout.registry_cluster],
               "K8S_AUTH_API_KEY": token, "K8S_AUTH_SSL_CA_CERT": lab.ca.cert_path}
    result = ok(tag_environments(auth={}, envvars=envvars, namespace=namespace, name="app:v1", add=["uat"]))
    assert result["changed"] and spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "uat"}
    managers = [entry["manager"] for entry in get_stream(streams, namespace, "app")["metadata"]["managedFields"]]
    assert "segmented.registry" in managers


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------


def test_sibling_pushes_between_read_and_write_are_retried(lab, registry_api, streams, namespace, tag_environments):
    """A thread keeps recording pushes to another tag of the stream (each bumps the
    resourceVersion) while the module edits this tag: the module must retry (attempts > 1 at
    least once), land its edit, and lose none of the pushes."""
    make_stream(streams, namespace, "app", spec={"tags": [{"name": "base", "annotations": {"note": "keep"}}]})
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    stop = threading.Event()
    pushed = []
    errors = []
    resource = DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")

    def pusher():
        count = 0
        while not stop.is_set():
            count += 1
            digest = fake_digest("%s-sibling-%d" % (namespace, count))
            current = resource.get(name="app", namespace=namespace).to_dict()
            updated, _changed = image.apply_push(current, "sibling", digest, lab.layout.integrated_endpoint,
                                                 image.rfc3339_now())
            try:
                resource.status.replace(body=updated, namespace=namespace)
                pushed.append(digest)
            except ApiException as exc:
                if exc.status != 409:
                    errors.append(exc.status)
                    return
            time.sleep(0.002)

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    attempts = []
    expected = []
    try:
        for round_ in range(8):
            env = "env-%02d" % round_
            # the pusher writes every few milliseconds, far more often than real pushes land on
            # one stream: on 2 busy cores the default 10 attempts ran out once in a CI run
            result = ok(tag_environments(namespace=namespace, name="app:v1", add=[env], max_attempts=30))
            assert result["changed"] is True
            expected.append(env)
            attempts.append(result["attempts"])
            if round_ >= 2 and any(a > 1 for a in attempts):
                break
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert len(pushed) > 10, "the sibling pusher did not run"
    assert any(a > 1 for a in attempts), "no run met a conflict: attempts %s" % attempts
    final = get_stream(streams, namespace, "app")
    assert spec_annotations(final, "v1") == {KEY: ",".join(sorted(expected))}
    assert spec_annotations(final, "base") == {"note": "keep"}
    sibling = [item for item in final["status"]["tags"] if item["tag"] == "sibling"][0]
    assert [event["image"] for event in sibling["items"]][0] == pushed[-1]  # the last push stands
    assert {event["image"] for event in sibling["items"]} == set(pushed)  # none lost
    print("\nsibling pushes: %d; module attempts per run: %s" % (len(pushed), attempts))


STORM_HOSTS = 24
STORM_TAGS = ["pushed-a", "spec", "pushed-b"]


def storm_inventory(path, lab, namespace, stream, out):
    hosts = {}
    for index in range(1, STORM_HOSTS + 1):
        host = {"storm_env": "env-%02d" % index}
        if index % 2 == 0:
            host["storm_old"] = "old-%02d" % index
        hosts["storm-%02d" % index] = host
    inventory = {"all": {"children": {"storm": {
        "hosts": hosts,
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "storm_namespace": namespace, "storm_stream": stream, "storm_tags": STORM_TAGS,
                 "storm_kubeconfig": lab.kubeconfig, "storm_context": lab.layout.registry_cluster,
                 "storm_out": out}}}}}
    with open(path, "w") as handle:
        yaml.safe_dump(inventory, handle)
    return hosts


def storm_stream(registry_api, lab, streams, namespace, name):
    old = ",".join(["keep"] + ["old-%02d" % i for i in range(2, STORM_HOSTS + 1, 2)])
    make_stream(streams, namespace, name, spec={"tags": [
        {"name": "spec", "annotations": {KEY: old, "description": "spec tag"},
         "from": {"kind": "DockerImage", "name": "quay.example.com/app:spec"}, "referencePolicy": {"type": "Source"}}]})
    for tag in ("pushed-a", "pushed-b", "spec"):
        record_push(registry_api, lab, namespace, name, tag, "%s/%s:%s" % (namespace, name, tag))


def serial_result(hosts, initial):
    """The lists after applying every host's edits one after the other."""
    lists = dict((tag, set(values)) for tag, values in initial.items())
    for name in sorted(hosts):
        for tag in STORM_TAGS:
            lists[tag] |= {hosts[name]["storm_env"]}
            lists[tag] -= {hosts[name].get("storm_old")}
    return dict((tag, ",".join(sorted(values))) for tag, values in lists.items())


def run_storm(run_playbook, tmp_path, lab, namespace, stream, forks, label):
    out = tmp_path / label
    out.mkdir()
    inventory = tmp_path / ("%s-inventory.yml" % label)
    hosts = storm_inventory(str(inventory), lab, namespace, stream, str(out))
    started = time.monotonic()
    runner = run_playbook(STORM, inventory=str(inventory), envvars={"ANSIBLE_FORKS": str(forks)})
    seconds = time.monotonic() - started
    assert runner.status == "successful", runner.stdout_text[-5000:]
    results = []
    for name in hosts:
        with open(out / ("%s.json" % name)) as handle:
            results.extend(json.load(handle))
    assert len(results) == len(hosts) * len(STORM_TAGS)
    assert not any(result.get("failed") for result in results)
    return hosts, results, seconds


def final_lists(streams, namespace, stream):
    current = get_stream(streams, namespace, stream)
    return dict((tag, (spec_annotations(current, tag) or {}).get(KEY)) for tag in STORM_TAGS), current


def test_storm_of_parallel_runs_equals_the_serial_result(lab, registry_api, streams, namespace, run_playbook,
                                                         tmp_path):
    """24 hosts, forks 24: each adds its environment to the 3 tags of one stream (and the even
    ones remove their old environment), all at once; three rounds, each on a fresh stream, must
    end exactly where the same edits run one at a time (forks 1) end."""
    initial = {"pushed-a": set(), "pushed-b": set(),
               "spec": {"keep"} | {"old-%02d" % i for i in range(2, STORM_HOSTS + 1, 2)}}

    storm_stream(registry_api, lab, streams, namespace, "serial")
    hosts, _results, serial_seconds = run_storm(run_playbook, tmp_path, lab, namespace, "serial", 1, "serial")
    serial, _stream = final_lists(streams, namespace, "serial")
    expected = serial_result(hosts, initial)
    assert serial == expected
    assert expected["pushed-a"] == ",".join("env-%02d" % i for i in range(1, STORM_HOSTS + 1))
    assert expected["spec"] == ",".join(["env-%02d" % i for i in range(1, STORM_HOSTS + 1)] + ["keep"])

    timings = []
    for round_ in range(1, 4):
        name = "storm-%d" % round_
        storm_stream(registry_api, lab, streams, namespace, name)
        before = get_stream(streams, namespace, name)
        _hosts, results, seconds = run_storm(run_playbook, tmp_path, lab, namespace, name, STORM_HOSTS, name)
        lists, after = final_lists(streams, namespace, name)
        assert lists == serial, "round %d" % round_
        # Everything else is as it was: the spec tag's other fields, every push.
        assert after["status"] == before["status"]
        spec_before = [t for t in before["spec"]["tags"] if t["name"] == "spec"][0]
        spec_after = [t for t in after["spec"]["tags"] if t["name"] == "spec"][0]
        assert spec_after["from"] == spec_before["from"]
        assert spec_after["annotations"]["description"] == "spec tag"
        attempts = [result["attempts"] for result in results]
        timings.append((round_, round(seconds, 1), max(attempts), sum(1 for a in attempts if a > 1)))
        histogram = dict((n, attempts.count(n)) for n in sorted(set(attempts)))
        print("\nstorm round %d: %.1fs, attempts histogram %s" % (round_, seconds, histogram))
    print("\nstorm: %d hosts x %d tags; serial (forks 1) %.1fs; parallel rounds (round, seconds, max attempts, "
          "runs that retried): %s" % (STORM_HOSTS, len(STORM_TAGS), serial_seconds, timings))


# ---------------------------------------------------------------------------------------------
# bad inputs: a clear error each, and nothing written
# ---------------------------------------------------------------------------------------------


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD_INPUTS = {
    # id: (module options, extra setup, words the message must contain)
    "unknown-environment": (dict(name="app:v1", add=["qa"], known_environments=KNOWN), None,
                            ['"qa" is not a known environment', "prod, test, uat"]),
    "invalid-name": (dict(name="app:v1", add=["Prod"]), None, ['"Prod" is not a valid environment name', "DNS-1123"]),
    "invalid-name-semicolon": (dict(name="app:v1", add=["test;uat"]), None, ['"test;uat"', "commas"]),
    "default-given": (dict(name="app:v1", remove=["default"]), None, ["not an environment you can give",
                                                                      "environments: []"]),
    "malformed-annotation": (dict(name="app:spec", add=["prod"]), "malformed",
                             ['"test;uat"', KEY, "cannot be read", "Fix the annotation by hand"]),
    "missing-stream": (dict(name="nosuch:v1", add=["test"]), None, ["nosuch", "not found"]),
    "missing-tag": (dict(name="app:v9", add=["test"]), None, ['no tag "v9"', "spec, v1"]),
    "no-permission": (dict(name="app:v1", add=["test"]), "no-rights", ["no permission", "403", "registry-editor"]),
    "read-only": (dict(name="app:v1", add=["test"]), "read-only", ["no permission to update", "403"]),
    "unreachable": (dict(name="app:v1", add=["test"]), "unreachable", ["cannot reach the API server", "127.0.0.1"]),
    "add-and-environments": (dict(name="app:v1", add=["test"], environments=["uat"]), None, ["cannot be combined"]),
    "bad-name-format": (dict(name="app/v1", add=["test"]), None, ['"app/v1" is not an image stream tag', "<stream>:<tag>"]),
    "name-and-stream": (dict(name="app:v1", stream="app", tag="v1", add=["test"]), None, ["mutually exclusive"]),
    "nothing-to-do": (dict(name="app:v1"), None, ["nothing to do"]),
    "add-and-remove-same": (dict(name="app:v1", add=["uat"], remove=["uat"]), None, ["both add and remove"]),
    "bad-annotation-key": (dict(name="app:v1", add=["test"], annotation_key="Not A Key"), None, ["annotation_key"]),
    "bad-namespace": (dict(name="app:v1", add=["test"], namespace="My_Project"), None, ["not a namespace name"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_writes_nothing(case, lab, registry_api, streams, namespace, make_token,
                                                       tag_environments, unique):
    options, setup, words = BAD_INPUTS[case]
    make_stream(streams, namespace, "app", spec={"tags": [
        {"name": "spec", "annotations": {KEY: "test", "description": "x"}}]})
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    auth = None
    port = dict(lab.layout.clusters)[lab.layout.registry_cluster]
    if setup == "malformed":
        set_annotation_by_hand(streams, namespace, "app", "spec", "test;uat")
    elif setup == "no-rights":
        auth = {"host": "https://127.0.0.1:%d" % port, "ca_cert": lab.ca.cert_path,
                "api_key": make_token("sa-" + unique, "nobody")}
    elif setup == "read-only":
        auth = {"host": "https://127.0.0.1:%d" % port, "ca_cert": lab.ca.cert_path,
                "api_key": make_token("sa-" + unique, "viewer", roles={namespace: "registry-viewer"})}
    elif setup == "unreachable":
        auth = {"host": "https://127.0.0.1:%d" % closed_port(), "api_key": "not-a-real-token"}
    before = get_stream(streams, namespace, "app")

    result = tag_environments(auth=auth, **dict({"namespace": namespace}, **options))

    assert result.get("failed") is True, "%s: no error: %s" % (case, result)
    for word in words:
        assert word in result["msg"], "%s: %r not in %r" % (case, word, result["msg"])
    after = get_stream(streams, namespace, "app")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], case


# ---------------------------------------------------------------------------------------------
# the info module
# ---------------------------------------------------------------------------------------------


def test_info_lists_namespaces_cluster_and_filters(lab, registry_api, streams, make_token, unique,
                                                   tag_environments, tag_environments_info):
    core = kclient.CoreV1Api(registry_api)
    first, second = "tei-a-" + unique, "tei-b-" + unique
    for name in (first, second):
        core.create_namespace({"metadata": {"name": name}})
    make_stream(streams, first, "app", spec={"tags": [
        {"name": "spec", "annotations": {KEY: "prod,test"}, "from": {"kind": "DockerImage", "name": "x.example.com/a:1"}},
        {"name": "bad", "annotations": {KEY: "uat prod"}}]})
    d1 = record_push(registry_api, lab, first, "app", "v1", first + "v1")
    record_push(registry_api, lab, second, "db", "v1", second + "v1")
    ok(tag_environments(namespace=second, name="db:v1", add=["uat"]))

    both = ok(tag_environments_info(namespace=[first, second]))
    assert both["list_calls"] == 2 and both["namespaces"] == sorted([first, second])
    rows = [(t["namespace"], t["stream"], t["tag"], t["environments"]) for t in both["tags"]]
    assert rows == [(first, "app", "bad", None), (first, "app", "spec", ["prod", "test"]),
                    (first, "app", "v1", ["default"]), (second, "db", "v1", ["uat"])]
    assert [t["digest"] for t in both["tags"]][2] == d1
    assert both["tags"][1]["digest"] is None
    assert '"uat prod"' in both["tags"][0]["error"] and KEY in both["tags"][0]["error"]
    assert [(e["namespace"], e["tag"]) for e in both["errors"]] == [(first, "bad")]

    one = ok(tag_environments_info(namespace=second))
    assert one["list_calls"] == 1 and [t["tag"] for t in one["tags"]] == ["v1"]

    prod = ok(tag_environments_info(namespace=[first, second], environment="prod"))
    assert [(t["namespace"], t["tag"]) for t in prod["tags"]] == [(first, "spec")]
    assert len(prod["errors"]) == 1  # left out of the filtered tags, still reported
    default = ok(tag_environments_info(namespace=[first, second], environment="default"))
    assert [(t["namespace"], t["tag"]) for t in default["tags"]] == [(first, "v1")]

    everything = ok(tag_environments_info())
    assert everything["list_calls"] == 1 and everything["namespaces"] == ["*"]
    mine = [(t["namespace"], t["tag"]) for t in everything["tags"] if t["namespace"] in (first, second)]
    assert mine == [(first, "bad"), (first, "spec"), (first, "v1"), (second, "v1")]


# ---------------------------------------------------------------------------------------------
# playbooks promote.yml / demote.yml
# ---------------------------------------------------------------------------------------------


def test_promote_and_demote_playbooks(lab, registry_api, streams, namespace, run_playbook):
    make_stream(streams, namespace, "app")
    digest = record_push(registry_api, lab, namespace, "app", "v1", namespace)
    # reconcile=false: the whitelist edits alone (the recorded digests are not real images; the
    # promotion that follows an edit is tested in test_reconcile.py)
    survey = {"project": namespace, "image": "app:v1", "env": "uat", "reconcile": False}

    promoted = run_playbook("playbooks/promote.yml", extravars=survey)
    assert promoted.status == "successful", promoted.stdout_text[-4000:]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "uat"}
    assert "%s/app:v1 (%s): environments default -> uat (changed)" % (namespace, digest) in text(promoted)
    assert changed_count(promoted) == 1

    again = run_playbook("playbooks/promote.yml", extravars=survey)
    assert again.status == "successful"
    assert "environments uat -> uat (unchanged: nothing to do)" in text(again) and changed_count(again) == 0

    promoted = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "stream": "app", "tag": "v1",
                                                                "env": "prod", "reconcile": False})
    assert promoted.status == "successful", promoted.stdout_text[-4000:]
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "prod,uat"}

    for environment, after in (("uat", "prod"), ("prod", None)):
        demoted = run_playbook("playbooks/demote.yml", extravars=dict(survey, env=environment))
        assert demoted.status == "successful", demoted.stdout_text[-4000:]
        assert (spec_annotations(get_stream(streams, namespace, "app"), "v1") or {}).get(KEY) == after
    assert "environments prod -> default (changed)" in text(demoted)

    unknown = run_playbook("playbooks/promote.yml", extravars=dict(survey, env="qa"))
    assert unknown.status == "failed"
    assert '"qa" is not a known environment' in text(unknown)
    incomplete = run_playbook("playbooks/promote.yml", extravars={"project": namespace, "env": "uat"})
    assert incomplete.status == "failed"
    assert "Give the image stream tag and the environment as extra variables" in text(incomplete)
    assert (spec_annotations(get_stream(streams, namespace, "app"), "v1") or {}).get(KEY) is None


def test_promote_uses_k8s_auth_environment_when_the_inventory_has_no_credentials(
        lab, registry_api, streams, namespace, run_playbook, make_token, unique, tmp_path):
    """A registry host without segmented_registry_k8s_auth: the K8S_AUTH_* variables apply (AWX)."""
    make_stream(streams, namespace, "app")
    record_push(registry_api, lab, namespace, "app", "v1", namespace)
    token = make_token("sa-" + unique, "promoter", roles={namespace: "registry-editor"})
    inventory = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "segmented_registry_environments": [
                     {"name": name, "route_host": "%s-registry.apps.registry.lab.local" % name,
                      "endpoint": "localhost:%d" % port} for name, port in (("test", 5101), ("uat", 5102))]},
        "hosts": {"registry": {"segmented_registry_role": "registry"}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    port = dict(lab.layout.clusters)[lab.layout.registry_cluster]
    envvars = {"K8S_AUTH_HOST": "https://127.0.0.1:%d" % port, "K8S_AUTH_API_KEY": token,
               "K8S_AUTH_SSL_CA_CERT": lab.ca.cert_path}
    runner = run_playbook("playbooks/promote.yml", inventory=str(path), envvars=envvars,
                          extravars={"project": namespace, "image": "app:v1", "env": "test", "reconcile": False,
                                     "segmented_registry_check_reachable": False})
    assert runner.status == "successful", scrub(runner.stdout_text[-4000:], token)
    assert token not in runner.stdout_text
    assert spec_annotations(get_stream(streams, namespace, "app"), "v1") == {KEY: "test"}
