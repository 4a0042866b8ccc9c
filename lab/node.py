"""The registry cluster's node: containerd + runc, a CNI bridge, kubelet, kube-proxy, kube-scheduler.

Everything runs on this machine as root and keeps its state under ``<state>/node``:

* containerd v2 (built from its Go module, CRI plugin, overlayfs) with Debian's runc, its own root,
  state, socket and network-namespace folder, pulling through ``certs.d`` hosts files that trust
  the lab CA;
* CNI: Debian's containernetworking-plugins (bridge, host-local, loopback, portmap) on the bridge
  ``labbr0`` (10.244.0.1/24, made here). Pods get routes to the pod and service ranges only, no
  default route; ``_fence`` keeps forwarding on the bridge and Services in the pod range, so
  nothing a pod (or a Service) sends leaves the machine;
* kubelet, kube-proxy (iptables) and kube-scheduler built by ``lab/build/build-binaries.sh``, each
  with a certificate of its usual identity (``system:node:<node>``, ``system:kube-proxy``,
  ``system:kube-scheduler``) from the lab CA.

The kubelet serves on the bridge address (its node IP), the API server reaches it there for logs.
A pod reaches the API server through the ``kubernetes`` Service: the registry cluster's API server
advertises the bridge address (an endpoint may not be a loopback address) and kube-proxy DNATs
10.96.0.1:443 to it; ``guard_port`` lets only loopback and the bridge connect.
"""
import datetime
import glob
import json
import os
import shutil
import subprocess
import time

import requests
import yaml
from kubernetes import client as kclient
from kubernetes.client.rest import ApiException

NODE_NAME = "lab-node"
BRIDGE = "labbr0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"  # the bridge's address: the pods' gateway and the node's InternalIP
CGROUP_ROOT = "/labnode"
STORAGE_CLASS = "lab-hostpath"
KUBELET_PORT = 16450
KUBELET_HEALTHZ_PORT = 16451
PROXY_HEALTHZ_PORT = 16453
PROXY_METRICS_PORT = 16454
CNI_BIN_DIR = "/usr/lib/cni"
COMPONENTS = ("containerd", "kubelet", "kube-proxy", "kube-scheduler")


def _run(argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def _write(path, text, private=False):
    """Write ``text`` to ``path`` unless it holds that already: a running kube-proxy exits when
    its configuration file changes (even to the same content), so ``labctl up`` on a running lab
    must leave unchanged files alone."""
    try:
        with open(path) as handle:
            if handle.read() == text:
                return path
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def guard_port(port):
    """Accept TCP connections to ``port`` from loopback and the bridge only, over IPv4 and IPv6 (the
    registry cluster's API server listens on every address so that pods reach it at the node's
    bridge address)."""
    rules = [["-i", "lo", "-j", "ACCEPT"], ["-i", BRIDGE, "-j", "ACCEPT"], ["-j", "DROP"]]
    for rule in rules:
        rule[:0] = ["INPUT", "-p", "tcp", "--dport", str(port)]
        rule[-2:-2] = ["-m", "comment", "--comment", "segmented-registry lab: API server for loopback and pods only"]
    for tool in ("iptables", "ip6tables"):
        if all(_run([tool, "-C"] + rule, check=False).returncode == 0 for rule in rules):
            continue
        for rule in rules:  # drop any partial set, then append the three in order
            while _run([tool, "-D"] + rule, check=False).returncode == 0:
                pass
        for rule in rules:
            _run([tool, "-A"] + rule)


class Node:
    """The node of the registry cluster of ``lab`` (a labctl.Lab). ``bins`` maps a component to its
    binary; ``wait_for(what, probe, timeout)`` is labctl's wait, raising its error on timeout."""

    def __init__(self, lab, wait_for, bins=None):
        self.lab = lab
        self.wait_for = wait_for
        self.bins = bins or {}
        self.dir = os.path.join(lab.state, "node")
        self.cluster = lab.layout.registry_cluster
        self.port = dict(lab.layout.clusters)[self.cluster]
        self.sock = os.path.join(self.dir, "containerd", "containerd.sock")

    def configured(self):
        """True once ``up`` ran in this state (status then lists the node)."""
        return os.path.isdir(self.dir)

    # -- host network ---------------------------------------------------------------------
    def prepare_network(self, service_cidr):
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        addresses = _run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
        if NODE_IP + "/" not in addresses:
            _run(["ip", "addr", "add", NODE_IP + "/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        # Service IPs that kube-proxy does not translate go onto the bridge, never out of eth0.
        _run(["ip", "route", "replace", service_cidr, "dev", BRIDGE])
        for rule in self._fence(service_cidr):
            if _run(["iptables", "-t", "mangle", "-C"] + rule, check=False).returncode != 0:
                _run(["iptables", "-t", "mangle", "-I"] + rule)

    @staticmethod
    def _fence(service_cidr):
        """Rules that keep the node's traffic on this machine. The bridge plugin turns ip_forward on
        (as on every node); in the mangle table, which kube-proxy leaves alone and which comes before
        its filter rules: nothing is forwarded between the bridge and another interface, and no
        connection to a Service IP is translated to an address outside the pod range (a Service
        whose EndpointSlice names another host leads nowhere, for pods and for this machine)."""
        comment = ["-m", "comment", "--comment", "segmented-registry lab: node traffic stays on this machine"]
        return [
            ["FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE] + comment + ["-j", "DROP"],
            ["FORWARD", "!", "-i", BRIDGE, "-o", BRIDGE] + comment + ["-j", "DROP"],
            ["POSTROUTING", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", service_cidr,
             "!", "-d", POD_CIDR] + comment + ["-j", "DROP"],
        ]

    def teardown_network(self, service_cidr):
        if self.bins.get("kube-proxy"):
            _run([self.bins["kube-proxy"], "--cleanup"], check=False)
        for rule in self._fence(service_cidr):
            _run(["iptables", "-t", "mangle", "-D"] + rule, check=False)
        _run(["ip", "route", "del", service_cidr, "dev", BRIDGE], check=False)
        _run(["ip", "link", "del", BRIDGE], check=False)

    # -- cgroups --------------------------------------------------------------------------
    @staticmethod
    def prepare_cgroups():
        """kubelet's cgroupRoot must exist in every cgroup v1 hierarchy (cpuset needs its cpus/mems)."""
        for hierarchy in sorted(glob.glob("/sys/fs/cgroup/*")):
            if os.path.islink(hierarchy) or not os.path.isdir(hierarchy):
                continue
            path = hierarchy + CGROUP_ROOT
            os.makedirs(path, exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if os.path.exists(os.path.join(path, name)):
                    with open(os.path.join(hierarchy, name)) as src:
                        value = src.read().strip()
                    with open(os.path.join(path, name), "w") as dst:
                        dst.write(value)

    # -- containerd -----------------------------------------------------------------------
    def write_containerd_config(self, mirror_host, sandbox_image):
        base = os.path.join(self.dir, "containerd")
        certs = os.path.join(self.dir, "certs.d", mirror_host)
        for path in (base, certs):
            os.makedirs(path, exist_ok=True)
        shutil.copyfile(self.lab.ca.cert_path, os.path.join(certs, "ca.crt"))
        _write(os.path.join(certs, "hosts.toml"), f"server = \"https://{mirror_host}\"\nca = \"{os.path.join(certs, 'ca.crt')}\"\n")
        runtime, images = 'plugins."io.containerd.cri.v1.runtime"', 'plugins."io.containerd.cri.v1.images"'
        config = "\n".join([
            "version = 4",
            f"root = \"{os.path.join(base, 'root')}\"",
            f"state = \"{os.path.join(base, 'state')}\"",
            "imports = []",
            '[plugins."io.containerd.server.v1.grpc"]', f'  address = "{self.sock}"',
            '[plugins."io.containerd.server.v1.ttrpc"]', f'  address = "{self.sock}.ttrpc"',
            '[plugins."io.containerd.internal.v1.opt"]', f"  path = \"{os.path.join(base, 'opt')}\"",
            '[plugins."io.containerd.grpc.v1.cri"]',
            "  disable_tcp_service = true",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            f"[{runtime}]",
            # this VM withholds CAP_SYS_RESOURCE: a negative oom_score_adj fails every sandbox
            "  restrict_oom_score_adj = true",
            "  netns_mounts_under_state_dir = true",  # network namespaces under <state>/node too
            f"[{runtime}.containerd]",
            '  default_runtime_name = "runc"',
            f"[{runtime}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{runtime}.containerd.runtimes.runc.options]",
            "  SystemdCgroup = false",
            f"[{runtime}.cni]",
            f'  bin_dirs = ["{CNI_BIN_DIR}"]',
            f"  conf_dir = \"{os.path.join(self.dir, 'cni', 'net.d')}\"",
            f"[{images}]",
            '  snapshotter = "overlayfs"',
            f"[{images}.pinned_images]",
            f'  sandbox = "{sandbox_image}"',
            f"[{images}.registry]",
            f"  config_path = \"{os.path.join(self.dir, 'certs.d')}\"",
            "",
        ])
        return _write(os.path.join(base, "config.toml"), config)

    def write_cni_config(self, service_cidr):
        conflist = {
            "cniVersion": "0.4.0", "name": "lab",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": os.path.join(self.dir, "cni", "ipam"),
                          "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                          "routes": [{"dst": service_cidr}]}},  # no default route
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        os.makedirs(os.path.join(self.dir, "cni", "net.d"), exist_ok=True)
        _write(os.path.join(self.dir, "cni", "net.d", "10-lab.conflist"), json.dumps(conflist, indent=1))

    # -- identities -----------------------------------------------------------------------
    def _kubeconfig(self, name, common_name, organizations=()):
        cert, key = self.lab.ca.issue(name, common_name, organizations=organizations, client=True)
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": self.cluster, "cluster": {
                "server": f"https://127.0.0.1:{int(self.port)}", "certificate-authority": self.lab.ca.cert_path}}],
            "users": [{"name": common_name, "user": {"client-certificate": cert, "client-key": key}}],
            "contexts": [{"name": self.cluster, "context": {"cluster": self.cluster, "user": common_name}}],
            "current-context": self.cluster,
        }
        return _write(os.path.join(self.dir, name + ".kubeconfig"), yaml.safe_dump(config), private=True)

    def grant_node_identity(self):
        """Without the Node authorizer (the lab runs RBAC only), the kubelet's user gets the
        ``system:node`` ClusterRole, and ``system:auth-delegator`` for its webhook authorization."""
        rbac = kclient.RbacAuthorizationV1Api(self.lab.api_client(self.cluster))
        for role in ("system:node", "system:auth-delegator"):
            body = {"metadata": {"name": "lab-node:" + role},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                  "name": "system:node:" + NODE_NAME}]}
            try:
                rbac.create_cluster_role_binding(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def ensure_storage_class(self):
        """The default StorageClass: kube-controller-manager's host-path provisioner (enabled with
        --enable-hostpath-provisioner on this cluster), which makes a folder per claim under
        /tmp/hostpath_pv and deletes it with the claim. Single-node test clusters only, which this is."""
        storage = kclient.StorageV1Api(self.lab.api_client(self.cluster))
        try:
            storage.create_storage_class({
                "metadata": {"name": STORAGE_CLASS,
                             "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate"})
        except ApiException as exc:
            if exc.status != 409:
                raise

    # -- processes ------------------------------------------------------------------------
    def start_containerd(self, config):
        # its shim is found on PATH: the one built with it first
        path = os.path.dirname(self.bins["containerd"]) + os.pathsep + os.environ.get("PATH", "")
        self.lab.procs.start("containerd", [self.bins["containerd"], "--config", config, "--log-level", "warn"],
                             env={"PATH": path})
        self._wait("containerd", lambda: os.path.exists(self.sock) and _run(
            [self.bins["ctr"], "--address", self.sock, "version"], check=False).returncode == 0, timeout=30)

    def start_kubelet(self):
        kubelet_dir = os.path.join(self.dir, "kubelet")
        os.makedirs(kubelet_dir, exist_ok=True)
        cert, key = self.lab.ca.issue("kubelet-serving", NODE_NAME, hosts=(NODE_IP, NODE_NAME), server=True)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine has cgroup v1 only
            "cgroupDriver": "cgroupfs", "cgroupRoot": CGROUP_ROOT,
            "failSwapOn": False,
            "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ_PORT,
            "tlsCertFile": cert, "tlsPrivateKeyFile": key,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": self.lab.ca.cert_path}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": "unix://" + self.sock,
            "podLogsDir": os.path.join(self.dir, "pod-logs"),
            "resolvConf": "",  # no cluster DNS and no outside name server
            "clusterDomain": "cluster.local",
            # OpenShift's kubelet configuration (machine-config-operator's kubelet template) sets
            # 250; a full node leaves new pods Pending ("Too many pods"), and the suite's scratch
            # namespaces (removed when the session ends) hold pods until then
            "maxPods": 250,
            # the disk is shared with every build and test: evict on real exhaustion only
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "serializeImagePulls": False,
        }
        path = _write(os.path.join(kubelet_dir, "config.yaml"), yaml.safe_dump(config))
        kubeconfig = self._kubeconfig("kubelet", "system:node:" + NODE_NAME, organizations=("system:nodes",))
        self.lab.procs.start("kubelet", [
            self.bins["kubelet"], "--config", path, "--kubeconfig", kubeconfig,
            "--root-dir", kubelet_dir, "--hostname-override", NODE_NAME, "--node-ip", NODE_IP, "--v=1",
        ])

    def start_kube_proxy(self):
        kubeconfig = self._kubeconfig("kube-proxy", "system:kube-proxy")
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": kubeconfig},
            "hostnameOverride": NODE_NAME, "mode": "iptables", "clusterCIDR": POD_CIDR,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{int(PROXY_HEALTHZ_PORT)}",
            "metricsBindAddress": f"127.0.0.1:{int(PROXY_METRICS_PORT)}",
            "nodePortAddresses": [POD_CIDR],  # NodePorts on the bridge only, never on eth0
            # leave the machine's conntrack settings alone
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        path = _write(os.path.join(self.dir, "kube-proxy.yaml"), yaml.safe_dump(config))
        self.lab.procs.start("kube-proxy", [self.bins["kube-proxy"], "--config", path, "--v=1"])

    def start_scheduler(self):
        kubeconfig = self._kubeconfig("kube-scheduler", "system:kube-scheduler")
        self.lab.procs.start("kube-scheduler", [
            self.bins["kube-scheduler"], "--kubeconfig", kubeconfig,
            "--leader-elect=false", "--secure-port=0", "--v=1",
        ])

    def ready(self, since=None):
        """The node reports Ready (in a heartbeat sent at or after ``since``, a UTC datetime: a
        restarted kubelet's node keeps its old status until the kubelet posts a new one)."""
        core = kclient.CoreV1Api(self.lab.api_client(self.cluster))
        node = core.read_node(NODE_NAME)
        return any(c.type == "Ready" and c.status == "True" and (since is None or c.last_heartbeat_time >= since)
                   for c in node.status.conditions or [])

    def up(self, service_cidr, mirror_host, sandbox_image):
        os.makedirs(self.dir, exist_ok=True)
        self.prepare_network(service_cidr)
        self.prepare_cgroups()
        self.write_cni_config(service_cidr)
        self.start_containerd(self.write_containerd_config(mirror_host, sandbox_image))
        self.grant_node_identity()
        self.ensure_storage_class()
        self.start_scheduler()
        self.start_kube_proxy()
        # a kubelet started now must post a fresh status; one that was running already posts it only
        # when something changes or every few minutes, and its Ready stands as it is
        started = None if self.lab.procs.pid("kubelet") else \
            datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.start_kubelet()
        self._wait("kubelet", lambda: self.ready(since=started), timeout=90, what=f"node {NODE_NAME} Ready")
        # healthy once its first sync has programmed every Service (the `kubernetes` one included)
        self._wait("kube-proxy", lambda: requests.get(
            f"http://127.0.0.1:{int(PROXY_HEALTHZ_PORT)}/healthz", timeout=2).status_code == 200, timeout=60)

    def _wait(self, name, probe, timeout, what=None):
        try:
            self.wait_for(what or name, probe, timeout=timeout)
        except Exception as exc:
            raise type(exc)(f"{exc}\n{self.lab.procs.tail(name)}") from None

    # -- stop -----------------------------------------------------------------------------
    def _shims(self):
        """Pids of the containerd shims serving this node's containerd (they outlive it)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and self.sock.encode() in argv:
                pids.append(int(entry))
        return pids

    def down(self, purge=False, service_cidr=None):
        """Stop the kubelet first (so nothing restarts), then every pod's containers, the node's
        processes, and unmount what they mounted under the node's folder."""
        self.lab.procs.stop("kubelet")
        if self.lab.procs.pid("containerd"):
            ctr = [self.bins["ctr"], "--address", self.sock, "--namespace", "k8s.io"]
            for task in _run(ctr + ["tasks", "ls", "--quiet"], check=False).stdout.split():
                _run(ctr + ["tasks", "delete", "--force", task], check=False)
        for name in ("kube-proxy", "kube-scheduler", "containerd"):
            self.lab.procs.stop(name)
        deadline = time.monotonic() + 10
        while self._shims() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self._shims():
            os.kill(pid, 9)
        self.unmount_all()
        if purge:
            self.teardown_network(service_cidr)
            for hierarchy in glob.glob("/sys/fs/cgroup/*" + CGROUP_ROOT):
                for sub in sorted(glob.glob(hierarchy + "/**/", recursive=True), key=len, reverse=True):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass

    def unmount_all(self):
        """Unmount (deepest first) every mount point under the node's folder: secret and token
        volumes, container root file systems, shared memory, network namespaces."""
        prefix = os.path.realpath(self.dir) + "/"
        with open("/proc/self/mountinfo") as handle:
            points = [line.split()[4] for line in handle]
        for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
            _run(["umount", "-l", point], check=False)

    def pod_rss_bytes(self):
        """Resident memory of the shims and of every process in the node's pod cgroups."""
        pids = set(self._shims())
        for procs in glob.glob(f"/sys/fs/cgroup/memory{CGROUP_ROOT}/**/cgroup.procs", recursive=True):
            try:
                with open(procs) as handle:
                    pids.update(int(p) for p in handle.read().split())
            except OSError:
                continue
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{int(pid)}/status") as handle:
                    total += next((int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:")), 0)
            except OSError:
                continue
        return total
