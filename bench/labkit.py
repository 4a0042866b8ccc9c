"""The lab as the benchmark uses it: endpoints from the lab's inventory (lab/labctl.py's Layout),
the promoter's token, the collection's OCI client, ImageStream writes in bulk, and
ansible-playbook runs with the peak memory of the module process they start.

The benchmark imports nothing from tests/."""
import json
import os
import subprocess
import sys
import threading
import time

import requests
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE, mint_token
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Environment
from ansible_collections.segmented.registry.plugins.module_utils.oci import client as oci
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import parse_manifest
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import parse_challenge
from lab import fleet, image, labctl

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_BIN = os.path.join(REPO, ".venv", "bin")

LAB_INVENTORY = fleet.current(labctl.state_dir())  # inventories/lab, or the one labctl up --consumers wrote
PROMOTER = ("segmented-registry-promotion", "promoter")  # made by roles/registry_cluster (registry_cluster_pushers)
KEY = "segmented.registry/environments"


def log(text):
    print(text, file=sys.stderr, flush=True)


class Bench:
    """The running lab, its endpoints and the promoter's credentials."""

    def __init__(self):
        self.lab = labctl.Lab()
        if not self.lab.status()["all_running"]:
            sys.exit("the lab is not running: lab/labctl up")
        layout = self.lab.layout
        self.integrated = layout.integrated_endpoint
        self.environments = {env: endpoint for env, endpoint in layout.registries
                             if env != "default"}
        self.services = {env: "env-" + env if env != "default" else labctl.INTEGRATED_SERVICE for env, _endpoint in layout.registries}
        self.ca = self.lab.ca.cert_path
        # for the integrated registry (the API server's own audiences, those of a TokenRequest that
        # names none) and the environment registries' token server (its audience), as a promotion's
        own = kclient.CoreV1Api(self.api()).create_namespaced_service_account_token(
            PROMOTER[1], PROMOTER[0], {"spec": {"expirationSeconds": 600}}).spec.audiences
        self.token = mint_token(self.api(), "/".join(PROMOTER), 7200, audiences=list(own) + [TOKEN_SERVER_AUDIENCE])

    def api(self):
        return self.lab.api_client(self.lab.layout.registry_cluster)

    def inventory_environments(self, **policies):
        """The lab's environments as the engine takes them (``{name: Environment}``), with
        ``policies`` (``{name: {"after": ...}}``)."""
        return {env: Environment(name=env, route_host=endpoint.split(":")[0], endpoint=endpoint,
                                 ca_cert=self.ca, **policies.get(env, {}))
                for env, endpoint in self.environments.items()}

    def client(self, env, stats=None, token=None, **options):
        """The collection's OCI client of environment ``env`` (``default``: the integrated registry)."""
        endpoint = self.integrated if env == "default" else self.environments[env]
        options.setdefault("token_realm_hosts", [self.lab.layout.token_server_host])
        return oci.RegistryClient(endpoint, password=token or self.token, ca_cert=self.ca, name=env,
                                  stats=stats, **options)

    def realm(self, env):
        """The token realm the registry of ``env`` names in its challenge."""
        endpoint = self.integrated if env == "default" else self.environments[env]
        answer = requests.get(f"https://{endpoint}/v2/", verify=self.ca, timeout=10)
        return parse_challenge(answer.headers.get("WWW-Authenticate"))[1]["realm"]

    def bearer(self, env, repositories, actions="pull"):
        """A registry token for ``repositories`` from the token server, as the simplest client gets it."""
        query = [("service", self.services[env])] + [("scope", f"repository:{repo}:{actions}")
                                                     for repo in sorted(repositories)]
        answer = requests.get(self.realm(env), params=query, auth=("promoter", self.token), verify=self.ca,
                              timeout=30)
        answer.raise_for_status()
        return answer.json()["token"]

    # -- registry cluster ---------------------------------------------------------------
    def ensure_namespace(self, name):
        try:
            kclient.CoreV1Api(self.api()).create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    def streams(self):
        return DynamicClient(self.api()).resources.get(api_version="image.openshift.io/v1", kind="ImageStream")

    def _update(self, namespace, stream, change, status=False):
        resource = self.streams()
        for _attempt in range(10):
            body = resource.get(name=stream, namespace=namespace).to_dict()
            change(body)
            try:
                (resource.status if status else resource).replace(body=body, namespace=namespace)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError(f"could not update {namespace}/{stream}")

    def approve_all(self, namespace, stream, tags, value):
        """Write the approval annotation on many tags of a stream in one ImageStream update."""
        def change(body):
            spec_tags = {t["name"]: t for t in (body.get("spec") or {}).get("tags") or []}
            for tag in tags:
                item = spec_tags.setdefault(tag, {"name": tag, "referencePolicy": {"type": "Source"}})
                item.setdefault("annotations", {})[KEY] = value
            body.setdefault("spec", {})["tags"] = [spec_tags[name] for name in sorted(spec_tags)]
        self._update(namespace, stream, change)

    def record_all(self, namespace, stream, tags, digest):
        """Record many tags of one digest in the ImageStream status in one status update, as
        OpenShift's registry records pushes (the ImageStream is created when missing)."""
        try:
            self.streams().create(body={"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
                                        "metadata": {"name": stream, "namespace": namespace}, "spec": {}},
                                  namespace=namespace)
        except ApiException as exc:
            if exc.status != 409:
                raise

        def change(body):
            status = body.get("status") or {}
            for tag in tags:
                status = image.add_tag_event(status, tag, image.make_tag_event(
                    self.integrated, namespace, stream, digest, body["metadata"].get("generation") or 1,
                    image.rfc3339_now()))[0]
            status["dockerImageRepository"] = f"{self.integrated}/{namespace}/{stream}"
            body["status"] = status
        self._update(namespace, stream, change, status=True)

    def tag_in_source(self, namespace, stream, tags, digest, from_stream):
        """Tags of ``digest`` (in ``from_stream``) in ``stream`` of the integrated registry: its blobs
        mounted, its manifest PUT under each tag; recorded in the ImageStream."""
        builder = self.client("default", token=self.lab.builder_token(namespace))
        origin, repository = f"{namespace}/{from_stream}", f"{namespace}/{stream}"
        try:
            manifest = builder.get_manifest(origin, digest)
            if origin != repository:
                for blob in parse_manifest(manifest["data"], manifest["media_type"])["blobs"]:
                    if not builder.mount_blob(repository, blob["digest"], origin)[0]:
                        raise RuntimeError(f"the integrated registry refused to mount {blob['digest']}")
            for tag in tags:
                builder.put_manifest(repository, tag, manifest["data"], manifest["media_type"])
        finally:
            builder.close()
        self.record_all(namespace, stream, tags, digest)

    def access_logs(self, env):
        """The access log files of ``env``'s registry (its pods' container logs; the integrated
        registry's process log for ``default``)."""
        return self.lab.registry_logs(env)


# ---------------------------------------------------------------------------------------------
# ansible-playbook runs
# ---------------------------------------------------------------------------------------------


def _descends_from(pid, root):
    while pid and pid != "1":
        if pid == root:
            return True
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = handle.read().rsplit(")", 1)[1].split()[1]  # the parent's pid
        except (OSError, IndexError):
            return False
    return False


class ModuleMemory:
    """Samples the peak resident memory (VmHWM) and the lifetime of the processes below ``root``
    (a pid) whose command line names ``needle`` (the module AnsiballZ runs) while a playbook runs;
    other runs of the module on the machine are not counted."""

    def __init__(self, needle, root, interval=0.05):
        self.needle = needle.encode()
        self.root = str(root)
        self.interval = interval
        self.peak_kib = 0
        self.seen = {}  # pid -> (first seen, last seen)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            now = time.monotonic()
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        if self.needle not in handle.read() or not _descends_from(pid, self.root):
                            continue
                    with open(f"/proc/{pid}/status") as handle:
                        for line in handle:
                            if line.startswith("VmHWM:"):
                                self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    continue
                first = self.seen.get(pid, (now, now))[0]
                self.seen[pid] = (first, now)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def lifetime(self):
        """Seconds between the first and the last sample of the module processes (sampling resolution)."""
        if not self.seen:
            return None
        return round(max(last for _first, last in self.seen.values()) -
                     min(first for first, _last in self.seen.values()), 2)


def save_figures(figures, path):
    """Write ``figures`` as JSON to ``path`` (None: nowhere)."""
    if path:
        with open(path, "w") as handle:
            json.dump(figures, handle, indent=1)


def report(figures, path):
    """Save ``figures`` to ``path`` (None: nowhere) and print them."""
    save_figures(figures, path)
    print(json.dumps(figures, indent=1))


def run_playbook(playbook, extravars=None, inventory=LAB_INVENTORY, module=None, options=(), env=None):
    """``ansible-playbook -i inventory playbook -e extravars [options]`` as a job runs it, with the
    environment variables ``env`` added (a callback, its settings): ``(wall seconds, stdout,
    memory)`` where memory samples the processes of ``module`` (None: not sampled)."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, playbook, *options]
    if extravars:
        argv += ["-e", json.dumps(extravars)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=VENV_BIN + ":" + os.environ["PATH"],
               ANSIBLE_NOCOLOR="1", **(env or {}))
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    memory = ModuleMemory(f"AnsiballZ_{module}", proc.pid) if module else None
    if memory:
        memory.__enter__()
    try:
        stdout = proc.communicate()[0]
    finally:
        seconds = time.monotonic() - started
        if memory:
            memory.__exit__()
    if proc.returncode != 0:
        raise RuntimeError(f"{playbook} failed:\n{stdout[-3000:]}")
    return seconds, stdout, memory
