"""service_ca: the lab's stand-in for OpenShift's service CA (the service-ca operator's serving cert signer).

On OpenShift a Service annotated ``service.beta.openshift.io/serving-cert-secret-name: <name>``
gets a Secret ``<name>`` of type ``kubernetes.io/tls`` in its namespace, with ``tls.crt`` and
``tls.key`` (PEM) for the name ``<service>.<namespace>.svc``, signed by the cluster's service CA;
deleting the Secret makes a new certificate (openshift/service-ca-operator README; OKD docs,
"Securing service traffic using service serving certificate secrets"). The router's default
destination CA for a ``reencrypt`` Route without ``destinationCACertificate`` is that service CA.

A ConfigMap annotated ``service.beta.openshift.io/inject-cabundle: "true"`` gets the service CA's
certificate as its data key ``service-ca.crt``, put back when it is changed or removed (the
operator's configmap cabundle injector; its README). Clients in pods trust Services' serving
certificates through it (the collection's copy Jobs do).

This controller does the same on the registry cluster with the lab's own service CA
(``<state>/service-ca``, lab/pki.py): one thread watches Services, one watches Secrets; a
Service with the annotation whose Secret is missing gets one (annotated with the originating
Service's name and uid, owned by the Service so that it goes with it), and a deleted Secret is
issued again. A Secret of that name that another Service or someone else made is left alone, as
OpenShift does (it reports the conflict on the Service; the lab logs it). Watches end every
RESYNC_SECONDS and everything is listed again; on any error the thread waits (1, 2, 4 ... 30 s).

    python -m lab.service_ca --kubeconfig <lab kubeconfig> --context <cluster> --ca-dir <dir>
"""
import argparse
import base64
import datetime
import signal
import sys
import threading

from cryptography import x509
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch
from kubernetes.client.rest import ApiException

from lab import pki
from lab.openshift_defaults import backoff, log

SECRET_NAME_ANNOTATION = "service.beta.openshift.io/serving-cert-secret-name"
ORIGIN_NAME_ANNOTATION = "service.beta.openshift.io/originating-service-name"
ORIGIN_UID_ANNOTATION = "service.beta.openshift.io/originating-service-uid"
EXPIRY_ANNOTATION = "service.beta.openshift.io/expiry"
INJECT_ANNOTATION = "service.beta.openshift.io/inject-cabundle"
CABUNDLE_KEY = "service-ca.crt"
CA_COMMON_NAME = "segmented-registry lab service CA"
RESYNC_SECONDS = 300


def service_names(service):
    """The DNS names a serving certificate of ``service`` (a dict) holds, as the service CA's."""
    meta = service["metadata"]
    return (f"{meta['name']}.{meta['namespace']}.svc", f"{meta['name']}.{meta['namespace']}.svc.cluster.local")


def wanted_secret_name(service):
    return ((service["metadata"].get("annotations") or {}).get(SECRET_NAME_ANNOTATION)) or None


def serving_secret(service, authority):
    """The Secret (a dict) the service CA writes for ``service``: tls.crt and tls.key for its names."""
    meta = service["metadata"]
    names = service_names(service)
    cert_pem, key_pem = authority.issue_pem(names[0], hosts=names, server=True)
    expiry = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {
            "name": wanted_secret_name(service), "namespace": meta["namespace"],
            "annotations": {ORIGIN_NAME_ANNOTATION: meta["name"], ORIGIN_UID_ANNOTATION: meta["uid"],
                            EXPIRY_ANNOTATION: expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta["uid"]}],
        },
        "data": {"tls.crt": base64.b64encode(cert_pem).decode(), "tls.key": base64.b64encode(key_pem).decode()},
    }


class Signer:
    """The serving certificates of one cluster."""

    def __init__(self, api_client, authority, stop):
        self.core = kclient.CoreV1Api(api_client)
        self.api_client = api_client
        self.authority = authority
        self.stop = stop
        self.lock = threading.Lock()  # both threads may issue for the same Service

    def ensure(self, service):
        """Write the Secret of ``service`` (a dict) if it has the annotation and the Secret is missing."""
        name = wanted_secret_name(service)
        if not name or service["metadata"].get("deletionTimestamp"):
            return
        namespace = service["metadata"]["namespace"]
        with self.lock:
            try:
                existing = self.core.read_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                existing = None
            if existing is not None:
                origin = (existing.metadata.annotations or {}).get(ORIGIN_UID_ANNOTATION)
                if origin != service["metadata"]["uid"]:
                    log(f"service {namespace}/{service['metadata']['name']}: Secret {name} exists and was not "
                        "made for this Service; left alone")
                return
            try:
                self.core.create_namespaced_secret(namespace, serving_secret(service, self.authority))
            except ApiException as exc:
                if exc.status in (403, 404, 409):  # namespace going away, or made meanwhile
                    return
                raise
            log(f"service {namespace}/{service['metadata']['name']}: issued Secret {name}")

    def _services(self):
        listing = self.core.list_service_for_all_namespaces()
        return listing, [self.api_client.sanitize_for_serialization(s) for s in listing.items]

    def run_services(self):
        self._loop(self._sync_services)

    def run_secrets(self):
        self._loop(self._sync_secrets)

    def _sync_services(self):
        listing, services = self._services()
        for service in services:
            self.ensure(service)
        for event in watch.Watch().stream(self.core.list_service_for_all_namespaces,
                                          resource_version=listing.metadata.resource_version,
                                          timeout_seconds=RESYNC_SECONDS, _request_timeout=(10, RESYNC_SECONDS + 30)):
            if self.stop.is_set():
                return
            if event["type"] in ("ADDED", "MODIFIED"):
                self.ensure(self.api_client.sanitize_for_serialization(event["object"]))

    def _sync_secrets(self):
        listing = self.core.list_secret_for_all_namespaces(field_selector="type=kubernetes.io/tls")
        for event in watch.Watch().stream(self.core.list_secret_for_all_namespaces,
                                          field_selector="type=kubernetes.io/tls",
                                          resource_version=listing.metadata.resource_version,
                                          timeout_seconds=RESYNC_SECONDS, _request_timeout=(10, RESYNC_SECONDS + 30)):
            if self.stop.is_set():
                return
            secret = event["object"]
            origin = (secret.metadata.annotations or {}).get(ORIGIN_NAME_ANNOTATION)
            if event["type"] != "DELETED" or not origin:
                continue
            try:
                service = self.core.read_namespaced_service(origin, secret.metadata.namespace)
            except ApiException as exc:
                if exc.status == 404:  # the Service went first: nothing to issue
                    continue
                raise
            self.ensure(self.api_client.sanitize_for_serialization(service))

    def run_configmaps(self):
        self._loop(self._sync_configmaps)

    def inject(self, configmap):
        """Put the CA into ``configmap`` (a V1ConfigMap) if it asks for it and does not hold it."""
        meta = configmap.metadata
        if (meta.annotations or {}).get(INJECT_ANNOTATION) != "true" or meta.deletion_timestamp:
            return
        with open(self.authority.cert_path) as handle:
            bundle = handle.read()
        if (configmap.data or {}).get(CABUNDLE_KEY) == bundle:
            return
        try:
            self.core.patch_namespaced_config_map(meta.name, meta.namespace, {"data": {CABUNDLE_KEY: bundle}})
        except ApiException as exc:
            if exc.status in (403, 404):  # namespace or ConfigMap going away
                return
            raise
        log(f"configmap {meta.namespace}/{meta.name}: injected the service CA bundle")

    def _sync_configmaps(self):
        listing = self.core.list_config_map_for_all_namespaces()
        for configmap in listing.items:
            self.inject(configmap)
        for event in watch.Watch().stream(self.core.list_config_map_for_all_namespaces,
                                          resource_version=listing.metadata.resource_version,
                                          timeout_seconds=RESYNC_SECONDS, _request_timeout=(10, RESYNC_SECONDS + 30)):
            if self.stop.is_set():
                return
            if event["type"] in ("ADDED", "MODIFIED"):
                self.inject(event["object"])

    def _loop(self, sync):
        failures = 0
        while not self.stop.is_set():
            try:
                sync()
                failures = 0
            except ApiException as exc:
                if exc.status == 410:  # the watch's resource version is gone: list again
                    continue
                failures += 1
                log(f"API error {exc.status} {exc.reason}; again in {backoff(failures)}s")
                self.stop.wait(backoff(failures))
            except Exception as exc:  # connection refused, reset, timeouts: the thread must go on
                failures += 1
                log(f"{type(exc).__name__}: {exc}; again in {backoff(failures)}s")
                self.stop.wait(backoff(failures))


def authority(ca_dir):
    """The lab's service CA (made on first use, kept until labctl down --purge)."""
    return pki.Authority(ca_dir, common_name=CA_COMMON_NAME)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="service_ca", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", required=True, help="the cluster (kubeconfig context)")
    parser.add_argument("--ca-dir", required=True, help="the service CA's folder (ca.crt, ca.key)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signer = Signer(kconfig.new_client_from_config(config_file=args.kubeconfig, context=args.context),
                    authority(args.ca_dir), stop)
    for target in (signer.run_services, signer.run_secrets, signer.run_configmaps):
        threading.Thread(target=target, daemon=True).start()
    log(f"service CA signing serving certificates on {args.context} "
        f"(CA valid until {datetime.datetime.isoformat(signer.authority.cert.not_valid_after_utc)})")
    while not stop.wait(3600):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
