"""openshift_defaults: what OpenShift's controllers give every namespace, on every lab cluster.

A stand-in (lab/README.md) for two controllers of openshift-controller-manager
(openshift/openshift-controller-manager, commit 26d20feae8892f648f5b06ed3f5492fe6ffb4532):

- the builder and deployer service-accounts controllers (pkg/cmd/controller/serviceaccount.go):
  every namespace has the service accounts ``builder`` and ``deployer`` (``default`` comes from
  kube-controller-manager's serviceaccount-controller, which the lab runs);
- the default-rolebindings controller (pkg/authorization/defaultrolebindings/project_policy.go):
  every namespace has the RoleBindings ``system:image-pullers`` (group
  ``system:serviceaccounts:<namespace>`` -> ClusterRole ``system:image-puller``),
  ``system:image-builders`` (service account ``builder`` -> ``system:image-builder``) and
  ``system:deployers`` (service account ``deployer`` -> ``system:deployer``). Like OpenShift's it
  creates a binding that is missing and never changes one that exists (remove its subjects to
  disable it).

The cluster roles these bindings name are in lab/rbac/ (OpenShift's bootstrap policy). One thread per
cluster lists the namespaces, service accounts and role bindings, creates what is missing, then
watches namespaces and does the same for each namespace added. The watch ends every RESYNC_SECONDS
and the thread lists again (which also re-creates a service account or binding deleted since);
on any error it waits (1, 2, 4 ... up to 30 s) and lists again: it never exits on its own.

    python -m lab.openshift_defaults --kubeconfig <lab kubeconfig> --context <cluster> ...
"""
import argparse
import signal
import sys
import threading
import time

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch
from kubernetes.client.rest import ApiException

SERVICE_ACCOUNTS = ("builder", "deployer")
RESYNC_SECONDS = 300
MAX_BACKOFF_SECONDS = 30
# openshift-controller-manager's descriptions of its bindings (project_policy.go)
_AUTO = "  It is auto-managed by a controller; remove subjects to disable."
_BINDINGS = (
    # (binding name, cluster role, subject kind, subject name or None for the namespace's SA group, description)
    ("system:image-pullers", "system:image-puller", "Group", None,
     "Allows all pods in this namespace to pull images from this namespace." + _AUTO),
    ("system:image-builders", "system:image-builder", "ServiceAccount", "builder",
     "Allows builds in this namespace to push images to this namespace." + _AUTO),
    ("system:deployers", "system:deployer", "ServiceAccount", "deployer",
     "Allows deploymentconfigs in this namespace to rollout pods in this namespace." + _AUTO),
)
BINDING_NAMES = tuple(b[0] for b in _BINDINGS)


def service_account(namespace, name):
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def role_binding(namespace, name):
    """The RoleBinding ``name`` (one of BINDING_NAMES) of ``namespace`` as OpenShift makes it."""
    _, role, kind, subject, description = next(b for b in _BINDINGS if b[0] == name)
    if kind == "Group":
        subjects = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                     "name": "system:serviceaccounts:" + namespace}]
    else:
        subjects = [{"kind": "ServiceAccount", "name": subject, "namespace": namespace}]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"openshift.io/description": description}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


def missing(namespaces, service_accounts, role_bindings):
    """What to create: [(kind, body)] for the active ``namespaces`` (names), given the existing
    ``service_accounts`` and ``role_bindings`` as sets of (namespace, name)."""
    result = []
    for namespace in sorted(namespaces):
        result += [("ServiceAccount", service_account(namespace, name)) for name in SERVICE_ACCOUNTS
                   if (namespace, name) not in service_accounts]
        result += [("RoleBinding", role_binding(namespace, name)) for name in BINDING_NAMES
                   if (namespace, name) not in role_bindings]
    return result


def active(namespace):
    """Whether a Namespace object (kubernetes client model) gets defaults: not being deleted."""
    return namespace.metadata.deletion_timestamp is None and (
        namespace.status is None or namespace.status.phase != "Terminating")


def backoff(failures):
    """Seconds to wait after ``failures`` consecutive failures (1, 2, 4, ... at most 30)."""
    return min(MAX_BACKOFF_SECONDS, 2 ** max(0, failures - 1))


def added_namespace(event):
    """The name of the namespace a watch event adds and that gets defaults, or None. (The client's
    watch raises ApiException for an ERROR event: 410 Gone when the resource version is too old.)"""
    if event["type"] == "ADDED" and active(event["object"]):
        return event["object"].metadata.name
    return None


class Cluster:
    """The defaults of one cluster, kept by one thread."""

    def __init__(self, name, api_client, stop, log):
        self.name, self.stop, self.log = name, stop, log
        self.core = kclient.CoreV1Api(api_client)
        self.rbac = kclient.RbacAuthorizationV1Api(api_client)

    def create(self, objects):
        for kind, body in objects:
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            try:
                if kind == "ServiceAccount":
                    self.core.create_namespaced_service_account(namespace, body)
                else:
                    self.rbac.create_namespaced_role_binding(namespace, body)
            except ApiException as exc:
                # 409: made meanwhile; 403/404: the namespace is being deleted or is gone
                if exc.status in (403, 404, 409):
                    continue
                raise
            self.log(f"cluster {self.name}: created {kind} {namespace}/{name}")

    def sync_all(self):
        """Create what every namespace misses; return the namespace list's resource version."""
        listing = self.core.list_namespace()
        names = {ns.metadata.name for ns in listing.items if active(ns)}
        accounts = {(sa.metadata.namespace, sa.metadata.name)
                    for sa in self.core.list_service_account_for_all_namespaces().items}
        bindings = {(rb.metadata.namespace, rb.metadata.name)
                    for rb in self.rbac.list_role_binding_for_all_namespaces().items}
        self.create(missing(names, accounts, bindings))
        return listing.metadata.resource_version

    def sync_namespace(self, namespace):
        accounts = {(namespace, sa.metadata.name)
                    for sa in self.core.list_namespaced_service_account(namespace).items}
        bindings = {(namespace, rb.metadata.name)
                    for rb in self.rbac.list_namespaced_role_binding(namespace).items}
        self.create(missing({namespace}, accounts, bindings))

    def watch(self, resource_version):
        stream = watch.Watch().stream(self.core.list_namespace, resource_version=resource_version,
                                      timeout_seconds=RESYNC_SECONDS, _request_timeout=(10, RESYNC_SECONDS + 30))
        for event in stream:
            if self.stop.is_set():
                return
            name = added_namespace(event)
            if name:
                self.sync_namespace(name)

    def run(self):
        failures = 0
        while not self.stop.is_set():
            try:
                version = self.sync_all()
                failures = 0
                self.watch(version)
            except ApiException as exc:
                if exc.status == 410:  # the watch's resource version is gone: list again
                    continue
                failures += 1
                self.log(f"cluster {self.name}: API error {exc.status} {exc.reason}; again in {backoff(failures)}s")
                self.stop.wait(backoff(failures))
            except Exception as exc:  # connection refused, reset, timeouts: the thread must go on
                failures += 1
                self.log(f"cluster {self.name}: {type(exc).__name__}: {exc}; again in {backoff(failures)}s")
                self.stop.wait(backoff(failures))


_LOG_LOCK = threading.Lock()


def log(message):
    """One line on stdout (the lab's log file), whole: the cluster threads write in turn."""
    with _LOG_LOCK:
        sys.stdout.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + message + "\n")
        sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="openshift_defaults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", action="append", required=True, help="a cluster (kubeconfig context)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for context in args.context:
        cluster = Cluster(context, kconfig.new_client_from_config(config_file=args.kubeconfig, context=context),
                          stop, log)
        threading.Thread(target=cluster.run, name=context, daemon=True).start()
    log("keeping OpenShift's namespace defaults on " + ", ".join(args.context))
    while not stop.wait(3600):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
