"""The integrated registry's Service: how pods of the registry cluster reach the lab's integrated registry.

On OpenShift the integrated registry runs as pods behind the Service ``image-registry`` in
``openshift-image-registry``; pods reach it at ``image-registry.openshift-image-registry.svc:5000``
over TLS with a serving certificate of the service CA, and it is its own token endpoint
(``/openshift/token``: basic auth whose password is an API token of the cluster). The lab's
integrated registry is a process on 127.0.0.1:5100 whose token realm is the lab token server on
127.0.0.1:5110 (README, "Registries"), which no pod can reach. This stand-in gives pods the same
address and the same certificate chain as OpenShift's:

* a selector-less Service ``openshift-image-registry/image-registry`` (port 5000) whose
  EndpointSlice names the host's end of the lab's endpoint link (``netns.HOST_ADDRESS``, not a
  loopback address; a pod's connection to it is delivered on this machine, nothing leaves it);
* Debian's ``haproxy`` listening there: TLS with a certificate of the lab's service CA for the
  Service's names, forwarding HTTP to the integrated registry (TLS, verified against the lab CA)
  and ``/openshift/token`` to the lab token server's ``/token`` (TLS, verified). Requests keep
  their Host header, so the registry's upload locations name the Service.

What it leaves out: the registry's own token endpoint answers with the lab token server's JWTs
(OpenShift's registry issues its own); a client that follows the challenge's realm
(``https://localhost:5110/token``) from a pod must be told the in-cluster realm
(``REALM``), as the collection's copy Jobs are (their ``realms`` setting).
"""
import os

from kubernetes.dynamic import DynamicClient

from lab import netns, pki

NAMESPACE = "openshift-image-registry"
NAME = "image-registry"
PORT = 5000
HOST = f"{NAME}.{NAMESPACE}.svc"
ADDRESS = f"{HOST}:{int(PORT)}"
REALM = f"https://{ADDRESS}/openshift/token"
LABELS = {"app.kubernetes.io/managed-by": "segmented-registry-lab"}


def manifests():
    """The Namespace, the selector-less Service and its EndpointSlice on the registry cluster."""
    meta = {"namespace": NAMESPACE, "labels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": LABELS}},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta, name=NAME),
         "spec": {"ports": [{"name": "5000-tcp", "port": PORT, "targetPort": PORT, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": dict(meta, name=NAME + "-lab", labels=dict(LABELS, **{"kubernetes.io/service-name": NAME})),
         "addressType": "IPv4",
         "endpoints": [{"addresses": [netns.HOST_ADDRESS], "conditions": {"ready": True}}],
         "ports": [{"name": "5000-tcp", "port": PORT, "protocol": "TCP"}]},
    ]


def haproxy_config(serving_pem, ca_file, registry, token_server):
    """HAProxy's configuration: TLS on the endpoint address, the registry and its token path behind it."""
    check = f"ssl verify required ca-file {ca_file} sni str(localhost) verifyhost localhost"
    return "\n".join([
        "global",
        "  maxconn 2000",
        "defaults",
        "  mode http",
        "  timeout connect 5s",
        "  timeout client 300s",
        "  timeout server 300s",
        "frontend integrated",
        f"  bind {netns.HOST_ADDRESS}:{int(PORT)} ssl crt {serving_pem}",
        "  use_backend token if { path /openshift/token }",
        "  default_backend registry",
        "backend registry",
        f"  server registry {registry} {check}",
        "backend token",
        "  http-request set-path /token",
        f"  server token {token_server} {check}",
        "",
    ])


def start(lab, service_authority, registry, token_server):
    """Write the serving certificate and configuration, start haproxy, apply the objects."""
    folder = os.path.join(lab.state, "integrated-service")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    cert, key = service_authority.issue("integrated-service", HOST, hosts=(HOST, HOST + ".cluster.local"), server=True)
    serving = pki.write_pem_bundle(os.path.join(folder, "serving.pem"), cert, key)
    config = os.path.join(folder, "haproxy.cfg")
    with open(config, "w") as handle:
        handle.write(haproxy_config(serving, lab.ca.cert_path, registry, token_server))
    lab.procs.start("integrated-service", ["haproxy", "-W", "-db", "-f", config])
    api = lab.api_client(lab.layout.registry_cluster)
    dyn = DynamicClient(api)
    for doc in manifests():
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        resource.server_side_apply(body=doc, namespace=doc["metadata"].get("namespace"),
                                   field_manager="labctl", force_conflicts=True)
