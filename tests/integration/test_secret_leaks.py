"""No registry credential leaks from any playbook (issue 22): every playbook of the collection runs
at -vvv against the lab inventory - promote.yml, audit.yml, rotate_credentials.yml, then site.yml
(which imports validate.yml, registry_cluster.yml, credentials.yml, consumer_cluster.yml and
reconcile.yml, each run as that playbook runs) and site.yml again with ``--check --diff`` while every
token is due for renewal - and neither their output, the runner's artefacts nor any file written
meanwhile holds a credential of the lab's pull/push Secrets in any form: the token, its base64,
base64 ``user:token``, the decoded ``.dockerconfigjson`` and the Secret's base64 data of it; nor any
JWT at all (a minted TokenRequest token of the promoter, say).

The needles are read from the consumer clusters before and after the runs (the rotation replaces
every token: both generations are needles). One lab state for all runs: the playbooks the site
imports are not run a second time on their own."""
import base64
import json
import os
import re
import shutil
import time

import ansible_runner
import pytest
from kubernetes import client as kclient

from lab import machine_config
from tests.integration.conftest import LAB_INVENTORY, REPO

CONSUMERS = ("test", "uat", "prod")
# the Secrets roles/credentials writes on the consumer clusters (pull and push)
MANAGED = "app.kubernetes.io/managed-by=segmented.registry,segmented.registry/credential"
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
SMALL = 16 * 1024


def _b64(data):
    return base64.b64encode(data)


def needles_of(lab):
    """Every form of every credential in the lab's managed pull/push Secrets."""
    needles = set()
    for cluster in CONSUMERS:
        core = kclient.CoreV1Api(lab.api_client(cluster))
        for item in core.list_secret_for_all_namespaces(label_selector=MANAGED).items:
            data = item.data[".dockerconfigjson"]
            text = base64.b64decode(data)
            needles.update({data.encode(), text})
            for entry in json.loads(text)["auths"].values():
                token = entry["password"].encode()
                pair = entry["username"].encode() + b":" + token
                needles.update({token, _b64(token), _b64(pair), entry["auth"].encode()})
    return needles


def kubelet_token_volume(folder, name):
    """Whether ``folder/name`` is a pod's service account token volume on the lab's node: the kubelet
    writes a JWT there for every pod, and writes it again when it renews it (at 80 % of its hour),
    as on OpenShift (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/kube-api-access-*):
    the platform's token for the pod, not a credential of ours; a suite that has run for about 50
    minutes sees the pods of its first minutes renewed during this test's runs."""
    return os.path.basename(folder) == "kubernetes.io~projected" and name.startswith("kube-api-access-")


def files_written_since(start, roots, skip):
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skip and not os.path.islink(os.path.join(folder, d))
                       and not kubelet_token_volume(folder, d)]
            for name in files:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if info.st_mtime >= start and os.path.isfile(path) and info.st_size <= 64 * 1024 * 1024:
                    yield path


def scan(data, needles):
    """What in ``data`` is a secret: the needles found, and whether a JWT is in it."""
    return [needle for needle in needles if needle in data] + JWT.findall(data)


@pytest.fixture
def workdir(tmp_path):
    """The runs' private data dirs: removed whatever the outcome (a leak stays in no test artefact)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_no_playbook_leaks_a_credential_in_any_form(lab, workdir, unique):
    namespace = f"leak-{unique}"
    kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": namespace}})
    start = time.time() - 1
    lab.push(namespace, "app", "v1", 1, SMALL)
    before = needles_of(lab)
    runs = [("promote.yml", {"project": namespace, "image": "app:v1", "env": "test"}, {}),
            ("audit.yml", {"project": namespace}, {}),
            ("rotate_credentials.yml", {"grace": 1}, {}),
            ("site.yml", {"project": namespace}, {}),
            ("site.yml", {"credentials_renew_before": 604799, "project": namespace}, {"cmdline": "--check --diff"})]
    outputs = []
    for index, (playbook, extravars, options) in enumerate(runs):
        began = time.time()
        data_dir = workdir / f"runner-{index}"
        data_dir.mkdir()
        runner = ansible_runner.run(private_data_dir=str(data_dir),
                                    playbook=os.path.join(REPO, "playbooks", playbook), inventory=LAB_INVENTORY,
                                    extravars=extravars, verbosity=3, quiet=True,
                                    envvars={"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg")}, **options)
        text = runner.stdout.read()
        print(f"{playbook} {options.get('cmdline', '')}: {time.time() - began:.0f} s")
        assert runner.status == "successful", f"{playbook}: {text[-4000:]}"
        outputs.append((playbook, text.encode()))
    assert "create generation Secret" in outputs[-1][1].decode(), "the check run planned no new token"
    after = needles_of(lab)
    assert after - before, "the rotation replaced no token"
    needles = before | after

    hits = [f"output of {playbook} (run {index})" for index, (playbook, text) in enumerate(outputs) if scan(text, needles)]
    # a positive control: a file written now with one needle must be found by the same scan
    control = workdir / "control" / "leak.txt"
    control.parent.mkdir()
    control.write_bytes(b"x " + sorted(after)[0] + b" x")
    # etcd's data, and the lab nodes' copies of the global pull secret (lab/machine_config.py: on
    # OpenShift /var/lib/kubelet/config.json, where a node keeps its pull credentials by design)
    nodes = {os.path.dirname(machine_config.node_file(lab.state, cluster, pool))
             for cluster in CONSUMERS for pool in machine_config.POOLS}
    skip = {os.path.join(lab.state, "etcd"), os.path.join(REPO, ".venv"), "/proc", "/sys"} | nodes
    roots = [workdir, "/tmp", "/var/tmp", os.path.expanduser("~/.ansible"), REPO, lab.state]
    scanned = 0
    for path in set(files_written_since(start, [str(root) for root in roots if os.path.isdir(root)], skip)):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:  # written and removed again meanwhile (another job's temporary file)
            continue
        scanned += 1
        if scan(data, needles):
            hits.append(path)
    assert str(control) in hits, "the scan missed the control file"
    hits.remove(str(control))
    print(f"leak check: {len(needles)} needles, {len(outputs)} runs, {scanned} files written during the runs")
    assert scanned > 10  # the runner's artefacts at least
    assert hits == [], sorted(hits)[:20]
