#!/usr/bin/env python3
"""labctl: the local lab of real clusters and registries that every run and test stands on.

  labctl up       build (once, cached) and start etcd, a kube-apiserver and kube-controller-manager
                  per cluster (--consumers N: N consumer clusters, lab/fleet.py), the integrated
                  registry (default) and its token server, the router, and the registry cluster's node with its images, their mirror
                  registry and the lab's S3 object store (lab/objectstore.py) as a pod
                  (--no-node: without the node). The environment registries are not started
                  here: roles/registry_cluster deploys them (playbooks/registry_cluster.yml,
                  site.yml), as on a real registry cluster
  labctl down     stop everything (--purge also deletes the state: certificates, storage)
  labctl status   what runs, whether it answers, memory in use (per cluster too)
  labctl inventory  the path of the inventory the lab runs on (ansible-playbook -i "$(lab/labctl inventory)")
  labctl push     build a multi-layer image, push it to the integrated registry, record it in
                  the ImageStream like OpenShift's registry does
  labctl where    every repository:tag and digest in every registry of the lab
  labctl pull     pull an image as a node of one cluster would: with the registries.conf and
                  policy.json rendered from that cluster's Image, ImageDigestMirrorSets and
                  ImageTagMirrorSets (lab/nodepull.py), through containers/image (skopeo), with
                  the node's copy of the global pull secret (lab/machine_config.py: it lags the
                  API object, as on OpenShift)

What the lab consists of is read from its inventory (the same inventory the playbooks use):
inventories/lab, or the one labctl up --consumers N wrote into the lab's state (lab/fleet.py).
"""
import argparse
import base64
import concurrent.futures
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import jinja2
import requests
import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials import CredentialsError, mint_token
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE
from ansible_collections.segmented.registry.plugins.module_utils.oci.client import RegistryClient
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError
from lab import fleet, image, images, integrated_service, machine_config, netns, node, nodepull, objectstore, pki, processes, service_ca

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
#: The lab's own processes run as modules of the lab package, beside the collection's code.
PACKAGE_ENV = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, ".venv", "collections")])}

#: kubernetes.config builds clients one at a time (Lab.api_client)
_CLIENT_LOCK = threading.Lock()

ETCD_CLIENT_PORT = 12379
ETCD_PEER_PORT = 12380
ETCD_METRICS_PORT = 12381
TOKEN_SERVER_PORT = 5110
SERVICE_CIDR = "10.96.0.0/16"  # virtual service IPs; on the node's cluster kube-proxy maps them to pods
KUBERNETES_SERVICE_NAMES = ("10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                            "kubernetes.default.svc.cluster.local")  # how pods address the API server
INTEGRATED_SERVICE = "integrated"
# the lab auditor's right to read the environment registries (labctl where): pull and catalog of the
# collection's environmentregistries resource, which no OpenShift role grants
ENVIRONMENT_READER = "segmented-registry-lab:environment-reader"
# the promotion job's identity in inventories/lab (roles/registry_cluster makes it) and what it reads in
# a source namespace
PROMOTER = "segmented-registry-promotion/promoter"
PROMOTION_SOURCE_READER = "segmented-registry:promotion-source-reader"
BUILD_NAMESPACE = "myproject"  # where the lab inventory's builder pushes (inventories/lab/hosts.yml)
ROUTER_DOMAIN = "apps.registry.lab.local"  # the registry cluster's ingress domain (*.apps...)
ROUTER_HTTPS_PORT = 443
ROUTER_HTTP_PORT = 80
# EndpointSlices refuse loopback addresses (127.0.0.0/8), so lab processes that back a Service
# run inside the lab's endpoint network namespace (lab/netns.py, made by labctl up) and listen on
# its address (netns.command(argv) is the command line that runs argv there).
ENDPOINT_ADDRESS = netns.ADDRESS
REGISTRY_TEMPLATE = os.path.join(REPO, "roles", "registry_cluster", "templates", "registry-config.yml.j2")
# the lab's fixed ports: a consumer cluster lab/fleet.py adds gets an API server port none of them uses
FIXED_PORTS = frozenset({
    ETCD_CLIENT_PORT, ETCD_PEER_PORT, ETCD_METRICS_PORT, TOKEN_SERVER_PORT, ROUTER_HTTPS_PORT, ROUTER_HTTP_PORT,
    images.MIRROR_PORT, node.KUBELET_PORT, node.KUBELET_HEALTHZ_PORT, node.PROXY_HEALTHZ_PORT, node.PROXY_METRICS_PORT,
})
# lab processes that serve every cluster at once: status gives each cluster an equal share of them
SERVING_EVERY_CLUSTER = ("openshift-defaults", "machine-config")
KCM_CONTROLLERS = ",".join([
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    # what Deployments, Jobs, Services and volumes need (pods run on the registry cluster's node)
    "deployment-controller", "replicaset-controller", "statefulset-controller", "daemonset-controller",
    "job-controller", "cronjob-controller", "ttl-after-finished-controller", "disruption-controller",
    "endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller",
    "persistentvolume-binder-controller", "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller", "persistentvolume-expander-controller",
    "persistentvolume-attach-detach-controller", "ephemeral-volume-controller", "resourcequota-controller",
    "node-lifecycle-controller", "taint-eviction-controller", "pod-garbage-collector-controller",
])


class LabError(Exception):
    pass


def state_dir():
    return os.environ.get("SEGMENTED_REGISTRY_LAB_STATE") or os.path.join(REPO, "lab", ".state")


def venv_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def wait_for(what, probe, timeout=120, interval=0.5):
    """Call ``probe`` until it returns a true value; raise LabError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # a probe fails in many ways while a server starts
            last = exc
        time.sleep(interval)
    raise LabError("%s did not become ready in %ds%s" % (what, timeout, ": %s" % last if last else ""))


def memory_by_cluster(rss_mib, clusters, registry_cluster):
    """The memory of each cluster from ``rss_mib`` ({component: MiB}): {"clusters": {cluster:
    {component: MiB, ..., "total_mib"}}, "consumer_mean_mib"}. A cluster's are its API server and
    controller manager and an equal share of each process that serves every cluster
    (SERVING_EVERY_CLUSTER: machine-config, the node-pull stand-in's copies of each cluster's pull
    secret, and openshift-defaults). etcd, one for all, is not shared out: compare memory_mib of two
    lab sizes for all a consumer cluster adds."""
    report = {}
    for cluster in clusters:
        parts = {name: rss_mib.get(name, 0.0) for name in ("apiserver-" + cluster, "kcm-" + cluster)}
        parts.update({name + " (share)": round(rss_mib.get(name, 0.0) / len(clusters), 1)
                      for name in SERVING_EVERY_CLUSTER})
        report[cluster] = dict(parts, total_mib=round(sum(parts.values()), 1))
    consumers = [report[c]["total_mib"] for c in clusters if c != registry_cluster]
    return {"clusters": report, "consumer_mean_mib": round(sum(consumers) / len(consumers), 1) if consumers else 0.0}


class Layout:
    """Which clusters, registries and ports make the lab: read from its inventory (default: the one
    the lab in state_dir() runs on, lab/fleet.py). ``consumers`` is every consumer cluster of the lab
    as it was brought up, with the environment it is assigned (the host's segmented_registry_environment)."""

    def __init__(self, inventory=None):
        inventory = inventory or fleet.current(state_dir())
        out = subprocess.run(
            [venv_bin("ansible-inventory"), "-i", inventory, "--list"],
            check=True, capture_output=True, text=True,
        ).stdout
        hostvars = json.loads(out)["_meta"]["hostvars"]
        self.clusters = []  # [(name, apiserver port)]
        self.consumers = {}  # {consumer cluster: the environment it is assigned}, by name
        self.registry_cluster = None
        self.integrated_endpoint = None
        environments, registry_vars = None, {}
        for name, hv in sorted(hostvars.items()):
            if "segmented_registry_lab_apiserver_port" not in hv:
                continue
            self.clusters.append((name, int(hv["segmented_registry_lab_apiserver_port"])))
            if fleet.ENVIRONMENT_VAR in hv:
                self.consumers[name] = hv[fleet.ENVIRONMENT_VAR]
            if hv.get("segmented_registry_role") == "registry":
                self.registry_cluster = name
                self.integrated_endpoint = hv["segmented_registry_integrated_registry"]
                registry_vars = hv
            environments = hv.get("segmented_registry_environments", environments)
        if not self.registry_cluster or not environments:
            raise LabError(f"the lab's inventory {inventory} must name a registry cluster and its environments")
        # The integrated registry (``default``) is a lab process, as on OpenShift it belongs to the
        # platform: (environment, endpoint host:port, token service, SubjectAccessReview rule).
        self.lab_registries = [("default", self.integrated_endpoint, INTEGRATED_SERVICE, {"namespace_from": "repository"})]
        # The environment registries are what roles/registry_cluster deploys on the registry
        # cluster, reached through the router: (environment, endpoint).
        self.token_server_host = registry_vars.get("registry_cluster_token_server_route_host")
        self.registries = [("default", self.integrated_endpoint)] + [
            (env["name"], env.get("endpoint") or env["route_host"]) for env in environments]


class Lab:
    def __init__(self, state=None, layout=None):
        self.state = state or state_dir()
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.layout = layout or Layout(fleet.current(self.state))
        self.procs = processes.Supervisor(self.state)
        self.kubeconfig = os.path.join(self.state, "kubeconfig")
        self.trust_dir = os.path.join(self.state, "trust")  # only ca.crt: a cert dir for skopeo
        self._ca = None

    def per_cluster(self, seconds):
        """A wait the lab's four clusters need ``seconds`` for, longer in proportion for more: they
        start at once, on the same cores (labctl up --consumers)."""
        return seconds * max(1.0, len(self.layout.clusters) / 4)

    # -- certificates -------------------------------------------------------------------
    @property
    def ca(self):
        if self._ca is None:
            self._ca = pki.Authority(os.path.join(self.state, "pki"))
            os.makedirs(self.trust_dir, exist_ok=True)
            shutil.copyfile(self._ca.cert_path, os.path.join(self.trust_dir, "ca.crt"))
        return self._ca

    def _server_cert(self, name, extra_hosts=()):
        return self.ca.issue(name, name, hosts=("127.0.0.1", "localhost") + tuple(extra_hosts), server=True)

    def _admin_cert(self):
        return self.ca.issue("admin", "lab-admin", organizations=("system:masters",), client=True)

    # -- binaries -----------------------------------------------------------------------
    def binaries(self):
        script = os.path.join(HERE, "build", "build-binaries.sh")
        subprocess.run(["bash", script, "all"], check=True, stdout=sys.stderr)
        k8s_dir, etcd_dir, distribution_dir, containerd_dir, token_server_dir, s3server_dir, copier_dir = subprocess.run(
            ["bash", script, "paths"], check=True, capture_output=True, text=True
        ).stdout.split()
        bins = {name: os.path.join(k8s_dir, name) for name in (
            "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl")}
        bins["kubernetes-version"] = os.path.basename(k8s_dir).split("-", 1)[1]
        bins["etcd"] = os.path.join(etcd_dir, "etcd")
        bins["distribution"] = os.path.join(distribution_dir, "registry")
        bins["distribution-version"] = os.path.basename(distribution_dir).split("-", 1)[1]
        bins.update({name: os.path.join(containerd_dir, name) for name in ("containerd", "ctr")})
        bins["token-server"] = os.path.join(token_server_dir, "token-server")
        bins["token-server-version"] = os.path.basename(token_server_dir).split("-", 2)[2]
        bins["s3server"] = os.path.join(s3server_dir, "s3server")
        bins["s3server-version"] = os.path.basename(s3server_dir).split("-", 1)[1]
        bins["copier"] = os.path.join(copier_dir, "copier")
        bins["copier-version"] = os.path.basename(copier_dir).split("-", 1)[1]
        return bins

    # -- etcd ---------------------------------------------------------------------------
    def start_etcd(self, etcd):
        # a server certificate that may act as a client too: etcd's HTTP gateway (Lab.compact) calls
        # etcd's gRPC with it, and client-cert-auth asks it for client authentication
        cert, key = self.ca.issue("etcd-server", "etcd", hosts=("127.0.0.1", "localhost"), server=True, client=True)
        self.procs.start("etcd", [
            etcd, "--name", "lab", "--data-dir", os.path.join(self.state, "etcd"),
            "--listen-client-urls", f"https://127.0.0.1:{int(ETCD_CLIENT_PORT)}",
            "--advertise-client-urls", f"https://127.0.0.1:{int(ETCD_CLIENT_PORT)}",
            "--listen-peer-urls", f"http://127.0.0.1:{int(ETCD_PEER_PORT)}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{int(ETCD_PEER_PORT)}",
            "--initial-cluster", f"lab=http://127.0.0.1:{int(ETCD_PEER_PORT)}",
            "--cert-file", cert, "--key-file", key,
            "--client-cert-auth", "--trusted-ca-file", self.ca.cert_path,
            "--listen-metrics-urls", f"http://127.0.0.1:{int(ETCD_METRICS_PORT)}",
            "--unsafe-no-fsync",  # a lab on one disk: durability is not what we test
            "--log-level", "warn",
        ])
        wait_for("etcd", lambda: requests.get(f"http://127.0.0.1:{int(ETCD_METRICS_PORT)}/health",
                                              timeout=2).json()["health"] == "true")

    def compact(self, revision=None):
        """Compact etcd up to ``revision`` (default: its current one), as the API server does every 5
        minutes: a watch resumed from an earlier resourceVersion then ends with 410 Gone. Returns
        the revision."""
        cert, key = self.ca.issue("etcd-client", "kube-apiserver-etcd-client", client=True)
        url = f"https://127.0.0.1:{int(ETCD_CLIENT_PORT)}/v3/kv/"
        tls = {"cert": (cert, key), "verify": self.ca.cert_path}
        if revision is None:
            revision = requests.post(url + "range", json={"key": base64.b64encode(b"/").decode(), "limit": 1},
                                     timeout=10, **tls).json()["header"]["revision"]
        answer = requests.post(url + "compaction", json={"revision": revision, "physical": True}, timeout=30, **tls)
        if not answer.ok and "compacted" not in answer.text:  # the API server's own compaction was there first
            answer.raise_for_status()
        return int(revision)

    # -- API servers --------------------------------------------------------------------
    def start_apiserver(self, binary, cluster, port):
        cert, key = self._server_cert("apiserver-" + cluster, KUBERNETES_SERVICE_NAMES + (node.NODE_IP,))
        listen = ["--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"]
        node_flags = []
        if cluster == self.layout.registry_cluster:
            # The `kubernetes` Service cannot point at a loopback address: this API server advertises
            # the node's bridge address and listens there too (only loopback and the bridge may
            # connect: node.guard_port). Logs and exec: it calls the kubelet with a client certificate.
            node.guard_port(port)
            listen = ["--bind-address", "0.0.0.0", "--advertise-address", node.NODE_IP]
            kubelet_cert, kubelet_key = self.ca.issue(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organizations=("system:masters",),
                client=True)
            node_flags = ["--kubelet-client-certificate", kubelet_cert, "--kubelet-client-key", kubelet_key,
                          "--kubelet-certificate-authority", self.ca.cert_path,
                          "--kubelet-preferred-address-types", "InternalIP",
                          # ImageStream watches read etcd itself, not the watch cache, so that an etcd
                          # compaction (Lab.compact) gives a watcher that fell behind the 410 Gone an
                          # OpenShift API server gives one that fell out of its cache's window.
                          "--watch-cache-sizes", "imagestreams.image.openshift.io#0"]
        etcd_cert, etcd_key = self.ca.issue("etcd-client", "kube-apiserver-etcd-client", client=True)
        sa_key = self.ca.signing_key("sa-" + cluster)
        self.procs.start("apiserver-" + cluster, [
            binary,
            "--etcd-servers", f"https://127.0.0.1:{int(ETCD_CLIENT_PORT)}",
            "--etcd-prefix", "/clusters/" + cluster,
            "--etcd-cafile", self.ca.cert_path, "--etcd-certfile", etcd_cert, "--etcd-keyfile", etcd_key,
            "--secure-port", str(port), *listen,
            "--tls-cert-file", cert, "--tls-private-key-file", key,
            "--client-ca-file", self.ca.cert_path,
            "--authorization-mode", "RBAC",
            "--service-account-issuer", f"https://127.0.0.1:{int(port)}",
            "--service-account-key-file", sa_key, "--service-account-signing-key-file", sa_key,
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--cert-dir", os.path.join(self.state, "apiserver-" + cluster),
            "--profiling=false", "--v=1",
        ] + node_flags)

    def api_client(self, cluster):
        # one at a time: the client writes the kubeconfig's inline certificates to temporary files,
        # and names a file in its cache before writing it, so a thread beside it could read it empty
        # (`lab up` bootstraps the clusters in parallel: "no certificate or crl found")
        with _CLIENT_LOCK:
            return kconfig.new_client_from_config(config_file=self.kubeconfig, context=cluster)

    def _ready(self, cluster, port):
        cert, key = self._admin_cert()
        response = requests.get(
            f"https://127.0.0.1:{int(port)}/readyz", cert=(cert, key), verify=self.ca.cert_path, timeout=5
        )
        return response.status_code == 200

    def write_kubeconfig(self):
        cert, key = self._admin_cert()

        def b64(path):
            with open(path, "rb") as handle:
                return base64.b64encode(handle.read()).decode()

        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [
                {"name": name, "cluster": {"server": f"https://127.0.0.1:{int(port)}",
                                           "certificate-authority-data": b64(self.ca.cert_path)}}
                for name, port in self.layout.clusters
            ],
            "users": [{"name": "lab-admin", "user": {"client-certificate-data": b64(cert),
                                                     "client-key-data": b64(key)}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": "lab-admin"}}
                         for name, _ in self.layout.clusters],
            "current-context": self.layout.registry_cluster,
        }
        fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(config, handle)

    def bootstrap(self, cluster):
        """Make a bare Kubernetes look like the OpenShift the collection expects."""
        dyn = DynamicClient(self.api_client(cluster))
        documents = []
        for folder in ("crds", "rbac"):
            for name in sorted(os.listdir(os.path.join(HERE, folder))):
                with open(os.path.join(HERE, folder, name)) as handle:
                    documents.extend(d for d in yaml.safe_load_all(handle) if d)
        for doc in documents:
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            resource.server_side_apply(body=doc, field_manager="labctl", force_conflicts=True)
        crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")

        def established():
            for doc in documents:
                if doc["kind"] != "CustomResourceDefinition":
                    continue
                conditions = crds.get(name=doc["metadata"]["name"]).status.conditions or []
                if not any(c.type == "Established" and c.status == "True" for c in conditions):
                    return False
            return True

        wait_for("CRDs on " + cluster, established, timeout=self.per_cluster(60))
        dyn = DynamicClient(self.api_client(cluster))  # rediscover: the new kinds are served now
        # What every OpenShift cluster has: the cluster image config and the global pull secret.
        for doc in [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-config"}},
            {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
             "metadata": {"name": "pull-secret", "namespace": "openshift-config"},
             "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}},
            {"apiVersion": "config.openshift.io/v1", "kind": "Image", "metadata": {"name": "cluster"}, "spec": {}},
        ]:
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            try:
                resource.create(body=doc, namespace=doc["metadata"].get("namespace"))
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def start_controller_manager(self, binary, cluster):
        kubeconfig = os.path.join(self.state, f"kcm-{cluster}.kubeconfig")
        with open(self.kubeconfig) as handle:
            config = yaml.safe_load(handle)
        config["current-context"] = cluster
        fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(config, handle)
        self.procs.start("kcm-" + cluster, [
            binary, "--kubeconfig", kubeconfig,
            "--controllers", KCM_CONTROLLERS,
            "--service-account-private-key-file", self.ca.signing_key("sa-" + cluster),
            "--root-ca-file", self.ca.cert_path,
            "--leader-elect=false", "--use-service-account-credentials=false",
            "--secure-port=0", "--v=1",
        ] + (["--enable-hostpath-provisioner"] if cluster == self.layout.registry_cluster else []))

        def default_sa():
            kclient.CoreV1Api(self.api_client(cluster)).read_namespaced_service_account("default", "default")
            return True

        wait_for("kube-controller-manager of " + cluster + " (default service account)", default_sa,
                 timeout=self.per_cluster(90))

    def start_openshift_defaults(self):
        """lab/openshift_defaults.py: the builder and deployer service accounts and the default
        RoleBindings of openshift-controller-manager, in every namespace of every cluster."""
        clusters = [c for c, _ in self.layout.clusters]
        self.procs.start("openshift-defaults", [sys.executable, "-m", "lab.openshift_defaults",
                                                "--kubeconfig", self.kubeconfig]
                         + [arg for c in clusters for arg in ("--context", c)], env=PACKAGE_ENV)

        def defaults_made():
            if not self.procs.pid("openshift-defaults"):
                raise LabError("lab/openshift_defaults.py exited:\n" + self.procs.tail("openshift-defaults"))
            for cluster in clusters:
                kclient.RbacAuthorizationV1Api(self.api_client(cluster)).read_namespaced_role_binding(
                    "system:deployers", "default")
            return True

        wait_for("OpenShift's namespace defaults (lab/openshift_defaults.py)", defaults_made, timeout=self.per_cluster(90))

    @property
    def service_ca_dir(self):
        return os.path.join(self.state, "service-ca")

    def start_service_ca(self):
        """lab/service_ca.py: serving certificates for annotated Services of the registry cluster,
        signed by the lab's service CA, as OpenShift's service-ca operator."""
        service_ca.authority(self.service_ca_dir)  # made here: the router trusts it from its start
        self.procs.start("service-ca", [sys.executable, "-m", "lab.service_ca", "--kubeconfig", self.kubeconfig,
                                        "--context", self.layout.registry_cluster, "--ca-dir", self.service_ca_dir],
                         env=PACKAGE_ENV)
        if not self.procs.pid("service-ca"):
            raise LabError("lab/service_ca.py exited:\n" + self.procs.tail("service-ca"))

    # -- registries ---------------------------------------------------------------------
    def start_token_server(self, binary):
        """The collection's token server (components/token-server), reviewing tokens on the registry
        cluster with the lab's admin client certificate."""
        cert, key = self._server_cert("tokenserver")
        signing_cert, signing_key = self.ca.issue("token-signing", "segmented-registry-lab token signer")
        admin_cert, admin_key = self._admin_cert()
        apiserver_port = dict(self.layout.clusters)[self.layout.registry_cluster]
        config = {
            "listen": f"127.0.0.1:{int(TOKEN_SERVER_PORT)}", "tls_cert": cert, "tls_key": key,
            "signing_cert": signing_cert, "signing_key": signing_key, "token_ttl_seconds": 300,
            # it stands in for OpenShift's integrated registry, which limits no one's reviews
            "reviews_per_second_per_user": 100000, "review_burst_per_user": 1000000,
            "token_reviews_per_second": 100000, "token_review_burst": 1000000,
            "kubernetes": {"server": f"https://127.0.0.1:{int(apiserver_port)}", "ca_file": self.ca.cert_path,
                           "client_cert": admin_cert, "client_key": admin_key},
            "services": {service: dict(rule, issuer="segmented-registry-lab")
                         for _, _, service, rule in self.layout.lab_registries},
        }
        path = os.path.join(self.state, "tokenserver.json")
        with open(path, "w") as handle:
            json.dump(config, handle, indent=1)
        self.procs.start("tokenserver", [binary, "--config", path])

        def healthy():
            if not self.procs.pid("tokenserver"):  # a configuration error ends it: say why
                raise LabError("the token server exited:\n" + self.procs.tail("tokenserver"))
            return requests.get(f"https://127.0.0.1:{int(TOKEN_SERVER_PORT)}/healthz", verify=self.ca.cert_path,
                                timeout=2).ok

        wait_for("token server", healthy)
        return signing_cert

    def _http_secret(self):
        path = os.path.join(self.state, "registry-http-secret")
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        with open(path) as handle:
            return handle.read().strip()

    def start_registries(self, signing_cert):
        with open(REGISTRY_TEMPLATE) as handle:
            template = jinja2.Template(handle.read(), undefined=jinja2.StrictUndefined)
        for env, endpoint, service, _ in self.layout.lab_registries:
            folder = os.path.join(self.state, "registries", env)
            os.makedirs(os.path.join(folder, "storage"), exist_ok=True)
            cert, key = self._server_cert("registry-" + env)
            config = template.render(
                registry_cluster_config_environment=env,
                registry_cluster_config_storage_root=os.path.join(folder, "storage"),
                registry_cluster_config_listen="127.0.0.1:" + endpoint.rsplit(":", 1)[1],
                registry_cluster_config_tls_cert=cert,
                registry_cluster_config_tls_key=key,
                registry_cluster_config_token_realm=f"https://localhost:{int(TOKEN_SERVER_PORT)}/token",
                registry_cluster_config_token_service=service,
                registry_cluster_config_token_issuer="segmented-registry-lab",
                registry_cluster_config_token_rootcertbundle=signing_cert,
            )
            with open(os.path.join(folder, "config.yml"), "w") as handle:
                handle.write(config)
            self.procs.start("registry-" + env, ["docker-registry", "serve", os.path.join(folder, "config.yml")],
                             env={"REGISTRY_HTTP_SECRET": self._http_secret()})
        for env, endpoint, _, _ in self.layout.lab_registries:
            wait_for("registry " + env, lambda e=endpoint: requests.get(
                f"https://{e}/v2/", verify=self.ca.cert_path, timeout=2).status_code == 401)

    # -- the router (lab/router.py) -----------------------------------------------------
    def start_router(self):
        """HAProxy configured from the registry cluster's Routes, on 127.0.0.1:443 (and :80)."""
        folder = os.path.join(self.state, "router")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        cert, key = self.ca.issue("router-default", "*." + ROUTER_DOMAIN, hosts=("*." + ROUTER_DOMAIN,), server=True)
        default = pki.write_pem_bundle(os.path.join(folder, "default.pem"), cert, key)
        # the default destination CA of reencrypt Routes: the service CA (OpenShift's), and the lab CA
        # for the lab's own backends (tests/integration/test_lab_router.py)
        destination_ca = os.path.join(folder, "default-destination-ca.crt")
        with open(destination_ca, "w") as handle:
            for path in (service_ca.authority(self.service_ca_dir).cert_path, self.ca.cert_path):
                with open(path) as part:
                    handle.write(part.read())
        settings = {
            "kubeconfig": self.kubeconfig, "context": self.layout.registry_cluster,
            "work_dir": os.path.join(folder, "haproxy"), "domain": ROUTER_DOMAIN,
            "https_bind": f"127.0.0.1:{int(ROUTER_HTTPS_PORT)}", "http_bind": f"127.0.0.1:{int(ROUTER_HTTP_PORT)}",
            "default_certificate": default, "default_destination_ca": destination_ca,
            "router_name": "default", "canonical_hostname": "router-default." + ROUTER_DOMAIN,
            "hosts_file": "/etc/hosts", "hosts_address": "127.0.0.1",
        }
        path = os.path.join(self.state, "router.json")
        with open(path, "w") as handle:
            json.dump(settings, handle, indent=1)
        self.procs.start("router", [sys.executable, "-m", "lab.router", "--config", path], env=PACKAGE_ENV)

        def listening():
            if not self.procs.pid("router"):
                raise LabError("the router exited:\n" + self.procs.tail("router"))
            with socket.create_connection(("127.0.0.1", ROUTER_HTTPS_PORT), timeout=2):
                return True

        wait_for(f"router (haproxy on 127.0.0.1:{int(ROUTER_HTTPS_PORT)})", listening, timeout=60)

    # -- the machine-config stand-in (lab/machine_config.py) -----------------------------
    def start_machine_config(self):
        """Every cluster's pull secret rolled out to its nodes' copies, with the pools' status."""
        machine_config.lag_from_env(os.environ)  # a bad SEGMENTED_REGISTRY_LAB_NODE_LAG: say so here
        path = os.path.join(self.state, "machine-config.json")
        with open(path, "w") as handle:
            json.dump({"kubeconfig": self.kubeconfig, "state": self.state,
                       "clusters": [c for c, _ in self.layout.clusters]}, handle, indent=1)
        self.procs.start("machine-config", [sys.executable, "-m", "lab.machine_config", "--config", path],
                         env=PACKAGE_ENV)

        def rolled_out():
            if not self.procs.pid("machine-config"):
                raise LabError("the machine-config stand-in exited:\n" + self.procs.tail("machine-config"))
            return all(os.path.exists(machine_config.node_file(self.state, c)) for c, _ in self.layout.clusters)

        wait_for("machine-config (every cluster's node copy of its pull secret)", rolled_out, timeout=self.per_cluster(120))

    # -- the whole lab ------------------------------------------------------------------
    def node(self, bins=None):
        return node.Node(self, wait_for, bins)

    def up_node(self, bins):
        """The registry cluster's node, with the images its pods run served by the mirror registry."""
        images.start_mirror(self)
        wait_for("registry mirror", lambda: requests.get(
            f"https://{images.MIRROR_HOST}/v2/", verify=self.ca.cert_path, timeout=2).ok)
        refs = images.publish(self, bins)
        self.node(bins).up(SERVICE_CIDR, images.MIRROR_HOST, refs["pause"])
        # what inventories/lab gives roles/registry_cluster as its images
        with open(os.path.join(self.state, "images.json"), "w") as handle:
            json.dump(refs, handle, indent=1, sort_keys=True)
        objectstore.apply(self, refs["s3"], wait_for)
        return refs

    def up(self, with_node=True):
        started = time.monotonic()
        bins = self.binaries()
        built = time.monotonic()
        self.start_etcd(bins["etcd"])
        for cluster, port in self.layout.clusters:
            self.start_apiserver(bins["kube-apiserver"], cluster, port)
        self.write_kubeconfig()
        for cluster, port in self.layout.clusters:
            try:
                wait_for("kube-apiserver of " + cluster, lambda c=cluster, p=port: self._ready(c, p),
                         timeout=self.per_cluster(180))
            except LabError as exc:
                raise LabError(f"{exc}\n{self.procs.tail('apiserver-' + cluster)}")
        with concurrent.futures.ThreadPoolExecutor(len(self.layout.clusters)) as pool:
            list(pool.map(self.bootstrap, [c for c, _ in self.layout.clusters]))
            list(pool.map(lambda c: self.start_controller_manager(bins["kube-controller-manager"], c),
                          [c for c, _ in self.layout.clusters]))
        self.start_openshift_defaults()
        self.start_service_ca()
        signing_cert = self.start_token_server(bins["token-server"])
        self.start_registries(signing_cert)
        netns.ensure()
        self.start_router()
        integrated_service.start(self, service_ca.authority(self.service_ca_dir), self.layout.integrated_endpoint,
                                 f"127.0.0.1:{int(TOKEN_SERVER_PORT)}")
        self.start_machine_config()
        result = {}
        if with_node or self.node().configured():  # a node once brought up comes back with the lab
            result["images"] = self.up_node(bins)
        done = time.monotonic()
        return dict(result, start_seconds=round(done - built, 1), build_or_cache_seconds=round(built - started, 1))

    def components(self):
        names = ["etcd"]
        for cluster, _ in self.layout.clusters:
            names += ["apiserver-" + cluster, "kcm-" + cluster]
        names += ["openshift-defaults", "service-ca"]
        names.append("tokenserver")
        names += ["registry-" + env for env, _, _, _ in self.layout.lab_registries]
        names += ["router", "integrated-service", "machine-config"]
        if self.node().configured():
            names += ["registry-mirror"] + list(node.COMPONENTS)
        return names

    def down(self, purge=False):
        lab_node = self.node(self.binaries())
        if lab_node.configured():
            lab_node.down(purge=purge, service_cidr=SERVICE_CIDR)
        for name in reversed(self.components()):
            self.procs.stop(name)
        netns.remove()
        if purge:
            shutil.rmtree(self.state, ignore_errors=True)

    def status(self):
        rows = []
        for name in self.components():
            pid = self.procs.pid(name)
            rows.append({"component": name, "pid": pid, "running": bool(pid),
                         "rss_mib": round(self.procs.rss_bytes(name) / 2**20, 1)})
        extra = {}
        if self.node().configured():  # containerd shims and the pods' own processes
            rss = self.node().pod_rss_bytes()
            rows.append({"component": "pods", "pid": None, "running": True, "rss_mib": round(rss / 2**20, 1)})
            extra["objectstore"] = {"endpoint": objectstore.ENDPOINT, "buckets": list(objectstore.BUCKETS),
                                    "answers": objectstore.healthy()}
        return dict({
            "state": self.state, "kubeconfig": self.kubeconfig, "ca": os.path.join(self.trust_dir, "ca.crt"),
            "components": rows,
            "endpoint_namespace": {"name": netns.NAME, "address": ENDPOINT_ADDRESS, "present": netns.exists()},
            "all_running": all(r["running"] for r in rows) and netns.exists(),
            "memory_mib": round(sum(r["rss_mib"] for r in rows), 1),
            "memory_by_cluster": memory_by_cluster({r["component"]: r["rss_mib"] for r in rows},
                                                   [c for c, _ in self.layout.clusters], self.layout.registry_cluster),
            "clusters": {c: f"https://127.0.0.1:{int(p)}" for c, p in self.layout.clusters},
            "registries": dict(self.layout.registries),
            "router": {"https": f"127.0.0.1:{int(ROUTER_HTTPS_PORT)}", "http": f"127.0.0.1:{int(ROUTER_HTTP_PORT)}",
                       "domain": ROUTER_DOMAIN, "hosts_file": "/etc/hosts"},
        }, **extra)

    # -- an image, pushed the way a build pushes it -------------------------------------
    def builder_token(self, namespace, seconds=3600):
        """A TokenRequest token of the ``builder`` service account of ``namespace`` on the registry
        cluster, bound to system:image-builder as OpenShift does for every project."""
        api = self.api_client(self.layout.registry_cluster)
        core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
        for create in (
            lambda: core.create_namespace({"metadata": {"name": namespace}}),
            lambda: core.create_namespaced_service_account(namespace, {"metadata": {"name": "builder"}}),
            lambda: rbac.create_namespaced_role_binding(namespace, {
                "metadata": {"name": "system:image-builders"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:image-builder"},
                "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": namespace}]}),
        ):
            try:
                create()
            except ApiException as exc:
                if exc.status != 409:
                    raise
        return mint_token(api, f"{namespace}/builder", seconds)

    def promotion_source(self, namespace):
        """Make ``namespace`` a promotion source, as ``registry_cluster_pushers_source_namespaces`` does
        on your clusters (the tests' namespaces are new each run, so no inventory names them): the
        promoter bound there to segmented-registry:promotion-source-reader."""
        ns, name = PROMOTER.split("/")
        try:
            kclient.RbacAuthorizationV1Api(self.api_client(self.layout.registry_cluster)).create_namespaced_role_binding(
                namespace, {"metadata": {"name": f"{PROMOTION_SOURCE_READER}:{ns}:{name}"},
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                        "name": PROMOTION_SOURCE_READER},
                            "subjects": [{"kind": "ServiceAccount", "namespace": ns, "name": name}]})
        except ApiException as exc:
            if exc.status != 409:
                raise

    def push(self, namespace, stream, tag, layers, layer_size, seed=None):
        """Push an image into ``namespace`` of the integrated registry as its builder does; the
        namespace becomes a promotion source (``promotion_source``)."""
        token = self.builder_token(namespace)
        self.promotion_source(namespace)
        with tempfile.TemporaryDirectory(prefix="labpush-") as tmp:
            layout = os.path.join(tmp, "oci")
            image.build_oci_layout(layout, layers=layers, layer_size=layer_size,
                                   seed=seed or f"{namespace}/{stream}:{tag}")
            registry = self.layout.integrated_endpoint
            digest = image.push(layout, f"{registry}/{namespace}/{stream}:{tag}",
                                username="builder", password=token, ca_dir=self.trust_dir)
        image.record_push(self.api_client(self.layout.registry_cluster), namespace, stream, tag, digest, registry)
        return {"reference": f"{registry}/{namespace}/{stream}:{tag}", "digest": digest}

    # -- a pull as a node of a cluster pulls ---------------------------------------------

    def node_pull_files(self, cluster):
        """registries.conf and policy.json of a node of ``cluster``, rendered from its Image
        ``cluster``, ImageDigestMirrorSets and ImageTagMirrorSets as the machine-config operator
        renders them; written to <state>/nodes/<cluster>/. Returns {file name: path}."""
        dyn = DynamicClient(self.api_client(cluster))

        def items(kind):
            listing = dyn.resources.get(api_version="config.openshift.io/v1", kind=kind).get()
            return sorted((o.to_dict() for o in listing.items), key=lambda o: o["metadata"]["name"])

        image_config = next((o for o in items("Image") if o["metadata"]["name"] == "cluster"), None)
        try:
            files = nodepull.render(image_config, items("ImageDigestMirrorSet"), items("ImageTagMirrorSet"))
        except nodepull.RenderError as exc:
            raise LabError(f"cluster {cluster}: {exc}")
        folder = os.path.join(self.state, "nodes", cluster)
        os.makedirs(folder, exist_ok=True)
        paths = {}
        for name, text in files.items():
            paths[name] = os.path.join(folder, name)
            # whole files only: another pull of the same cluster may be reading this one
            fd, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, paths[name])
        return paths

    def pull(self, cluster, reference, authfile=None):
        """Pull ``reference`` with skopeo (containers/image, as CRI-O) through ``cluster``'s node
        files. Credentials: ``authfile``, else a worker node's copy of the cluster's global pull
        secret (openshift-config/pull-secret), as lab/machine_config.py rolls it out: what a node
        uses, which lags the API object."""
        if cluster not in dict(self.layout.clusters):
            raise LabError(f"--cluster {cluster!r} is not a lab cluster; use one of {', '.join((c for c, _ in self.layout.clusters))}")
        paths = self.node_pull_files(cluster)
        if authfile is None:
            authfile = machine_config.node_file(self.state, cluster)
            if not os.path.exists(authfile):
                raise LabError(f"the nodes of cluster {cluster} have no copy of the pull secret yet ({authfile}): "
                               "is machine-config running (labctl status)?")
        with tempfile.TemporaryDirectory(prefix="labpull-") as tmp:
            digestfile = os.path.join(tmp, "digest")
            proc = subprocess.run(
                ["skopeo", "--registries-conf", paths["registries.conf"], "--policy", paths["policy.json"],
                 "copy", "--quiet", "--src-authfile", authfile, "--src-cert-dir", self.trust_dir,
                 "--digestfile", digestfile, "docker://" + reference, "dir:" + os.path.join(tmp, "image")],
                capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"})
            if proc.returncode != 0:
                detail = proc.stderr.strip()[-1500:]
                if "rejected by policy" in detail:
                    raise LabError("the policy.json of cluster %s refuses %s (config.openshift.io/v1 Image cluster, "
                                   "spec.registrySources): %s" % (cluster, reference, detail))
                raise LabError(f"a node of cluster {cluster} cannot pull {reference}: {detail}")
            with open(digestfile) as handle:
                digest = handle.read().strip()
        with open(paths["registries.conf"]) as handle:
            route = nodepull.mirrors_for(handle.read(), reference)
        return {"cluster": cluster, "image": reference, "digest": digest,
                "mirrors": [m["location"] for m in route["mirrors"]], "source_blocked": route["source_blocked"],
                "registries_conf": paths["registries.conf"], "policy_json": paths["policy.json"]}

    def image_references(self):
        """The references of the images the node's pods run, by name, as ``labctl up`` pushed them
        to the mirror (and wrote them to <state>/images.json, which inventories/lab reads)."""
        with open(os.path.join(self.state, "images.json")) as handle:
            return json.load(handle)

    def registry_logs(self, env):
        """The log files of one registry: the integrated registry's process log, or the container
        logs (CRI format, one file per container start) of an environment registry's pods."""
        if env == "default":
            return [self.procs.log_path("registry-default")]
        pattern = os.path.join(self.node().dir, "pod-logs", f"{env}_registry-*", "registry", "*.log")
        return sorted(glob.glob(pattern))

    # -- what landed where --------------------------------------------------------------
    def service_account_token(self, namespace, name, cluster_roles, seconds=600, audiences=None):
        """A TokenRequest token (for ``audiences``; None: the API server's) of service account
        ``namespace/name`` on the registry cluster, which gets each of ``cluster_roles`` in every
        namespace (a ClusterRoleBinding each)."""
        api = self.api_client(self.layout.registry_cluster)
        core, rbac = kclient.CoreV1Api(api), kclient.RbacAuthorizationV1Api(api)
        creations = [lambda: core.create_namespace({"metadata": {"name": namespace}}),
                     lambda: core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})]
        for cluster_role in cluster_roles:
            creations.append(lambda role=cluster_role: rbac.create_cluster_role_binding({
                "metadata": {"name": f"{role}:{namespace}:{name}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}))
        for create in creations:
            try:
                create()
            except ApiException as exc:
                if exc.status != 409:
                    raise
        return mint_token(api, f"{namespace}/{name}", seconds, audiences=audiences)

    def auditor_token(self):
        """A token of the lab's auditor, who reads every registry: the integrated one (registry-viewer,
        the API server's audiences) and the environment registries (the lab's ClusterRole
        ENVIRONMENT_READER, the token server's audience), as the collection's audit identity would."""
        api = self.api_client(self.layout.registry_cluster)
        try:
            kclient.RbacAuthorizationV1Api(api).create_cluster_role({
                "metadata": {"name": ENVIRONMENT_READER},
                "rules": [{"apiGroups": ["segmented.registry"], "resources": ["environmentregistries"],
                           "verbs": ["pull", "catalog"]}]})
        except ApiException as exc:
            if exc.status != 409:
                raise
        default = kclient.CoreV1Api(api).create_namespaced_service_account_token(
            "default", "default", {"spec": {"expirationSeconds": 600}}).spec.audiences
        return self.service_account_token("segmented-registry-lab", "auditor", ["registry-viewer", ENVIRONMENT_READER],
                                          audiences=list(default) + [TOKEN_SERVER_AUDIENCE])

    def where(self, namespace=None):
        """Every repository:tag and its digest in every registry of the lab (of one namespace),
        read with the collection's own registry client."""
        token = self.auditor_token()
        report = {}
        for env, endpoint in self.layout.registries:
            client = RegistryClient(endpoint, password=token, ca_cert=self.ca.cert_path, name=env,
                                    token_realm_hosts=[self.layout.token_server_host])
            try:
                tags = {}
                for repo in client.catalog():
                    if namespace and not repo.startswith(namespace + "/"):
                        continue
                    for tag in sorted(client.list_tags(repo)):
                        found = client.head_manifest(repo, tag)
                        tags[f"{repo}:{tag}"] = found["digest"] if found else None
            finally:
                client.close()
            report[env] = {"endpoint": endpoint, "tags": tags}
        return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab (builds the binaries once)")
    up.add_argument("--consumers", type=int,
                    help="how many consumer clusters (at least 3; default: as many as the lab has, 3 at first): "
                         "writes the lab's inventory with them (lab/fleet.py); another count than a running "
                         "lab's is refused (labctl down first)")
    up.add_argument("--no-node", dest="node", action="store_false",
                    help="without the registry cluster's node (containerd, kubelet, kube-proxy, kube-scheduler),"
                         " unless a node was brought up before (it comes back with every up until down --purge)")
    down = sub.add_parser("down", help="stop the lab")
    down.add_argument("--purge", action="store_true", help="also delete certificates, etcd data and storage")
    sub.add_parser("status", help="show what runs (exit 1 if anything is down)")
    sub.add_parser("inventory", help="print the path of the inventory the lab runs on")
    push = sub.add_parser("push", help="push a built multi-layer image to the integrated registry")
    push.add_argument("--namespace", default=BUILD_NAMESPACE)
    push.add_argument("--stream", default="app")
    push.add_argument("--tag", default="v1")
    push.add_argument("--layers", type=int, default=3)
    push.add_argument("--layer-size", type=int, default=1 << 20, help="bytes of content per layer")
    push.add_argument("--seed", help="content seed (default: the reference; same seed, same digest)")
    where = sub.add_parser("where", help="list every repository:tag and digest in every registry")
    where.add_argument("--namespace", help="only the repositories of this namespace (project)")
    pull = sub.add_parser("pull", help="pull an image as a node of a cluster would (its registries.conf, policy.json)")
    pull.add_argument("--cluster", required=True, help="the cluster whose node configuration applies")
    pull.add_argument("--authfile", help="credentials (containers-auth.json); default: a worker node's copy of "
                                         "the cluster's global pull secret (lab/machine_config.py)")
    pull.add_argument("image", help="image reference, e.g. registry.example.com/ns/app@sha256:...")
    args = parser.parse_args(argv)
    if args.command == "inventory":
        print(fleet.current(state_dir()))
        return 0
    try:
        state = state_dir()
        if args.command == "up":  # which inventory: before Lab() reads it
            os.makedirs(state, mode=0o700, exist_ok=True)  # as Lab makes it: it holds the lab's keys
            procs = processes.Supervisor(state)
            fleet.prepare(state, args.consumers, running=any(procs.pid(name) for name in procs.names()),
                          reserved_ports=FIXED_PORTS)
        lab = Lab(state)
        if args.command == "up":
            timing = lab.up(with_node=args.node)
            result = dict(lab.status(), **timing)
        elif args.command == "down":
            lab.down(purge=args.purge)
            result = {"stopped": True, "purged": args.purge}
        elif args.command == "status":
            result = lab.status()
        elif args.command == "where":
            result = lab.where(args.namespace)
        elif args.command == "pull":
            result = lab.pull(args.cluster, args.image, args.authfile)
        else:
            result = lab.push(args.namespace, args.stream, args.tag, args.layers, args.layer_size, args.seed)
    except (LabError, subprocess.CalledProcessError, ApiException, requests.RequestException, RegistryError,
            CredentialsError, image.PushError, image.RecordError, fleet.FleetError) as exc:
        print(f"labctl {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0 if args.command != "status" or result["all_running"] else 1


if __name__ == "__main__":
    sys.exit(main())
