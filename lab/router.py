#!/usr/bin/env python3
"""The lab's router: HAProxy configured from the registry cluster's Routes, as OpenShift's router.

OpenShift's default router (openshift/router) runs HAProxy and writes its configuration from
the Routes it admits and the endpoints of their Services; this is the lab's stand-in, with
Debian's ``haproxy``. It

- watches Routes (``route.openshift.io/v1``) and EndpointSlices (``discovery.k8s.io/v1``; a
  Service's endpoints are the slices labelled ``kubernetes.io/service-name``, as the router reads
  them) of one cluster, relisting after any watch error;
- admits each Route (oldest first: a host already claimed by an older Route is rejected with
  ``HostAlreadyClaimed``; a TLS certificate and key that do not parse or do not match are
  ``ExtendedValidationFailed``) and writes its ``status.ingress`` entry (host, routerName,
  routerCanonicalHostname, wildcardPolicy, condition ``Admitted``), keeping other routers' entries;
- renders ``haproxy.cfg`` the way the router's template does: one TLS port whose SNI decides
  between passthrough (TCP to the endpoints) and termination (a second frontend on a unix socket
  with the route certificates, or the default wildcard certificate); ``edge`` sends plain HTTP to
  the endpoints, ``reencrypt`` opens TLS to them and verifies it against the Route's
  ``destinationCACertificate`` (else the default destination CA and the name
  ``<service>.<namespace>.svc``); a plain HTTP port serves unsecured Routes and edge or reencrypt
  Routes with ``insecureEdgeTerminationPolicy`` Allow or Redirect; a Route whose Service has no ready
  endpoints answers 503;
- reloads HAProxy gracefully (master-worker mode, SIGUSR2) when the rendered files change;
- makes admitted hosts resolve: a managed block of ``<ip> <host>`` lines in a hosts file
  (``/etc/hosts`` in the lab), removed when the router stops.

Not modelled: path-based routes (``spec.path``), ``alternateBackends`` and weights, wildcard
routes, route annotations, router sharding. The lab's Route CRD has no API server defaulting: a
Route without ``spec.host`` gets ``<name>-<namespace>.<domain>`` from this router, in its status.

  router.py --config router.json     (labctl writes the file and starts the process)
"""
import argparse
import csv
import datetime
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import config as kconfig
from kubernetes.dynamic import DynamicClient

LOG = logging.getLogger("router")
HOSTS_BEGIN = "# BEGIN segmented-registry-lab routes (lab/router.py; removed when it stops)"
HOSTS_END = "# END segmented-registry-lab routes"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
STATS_SOCKET = "haproxy-stats.sock"  # in <work_dir>/run


# -- pure part: routes and endpoints in, admission and haproxy files out ---------------------
def route_host(route, domain):
    spec = route.get("spec") or {}
    meta = route["metadata"]
    return (spec.get("host") or f"{meta['name']}-{meta['namespace']}.{domain}").lower()


def _key(obj):
    return f"{obj['metadata']['namespace']}:{obj['metadata']['name']}"


def _check_tls(tls):
    """None, or why a Route's TLS material is unusable (the router's extended validation)."""
    cert, key = tls.get("certificate"), tls.get("key")
    if bool(cert) != bool(key):
        return "spec.tls.certificate and spec.tls.key must be given together"
    try:
        if cert:
            certificate = x509.load_pem_x509_certificate(cert.encode())
            private = serialization.load_pem_private_key(key.encode(), password=None)
            if certificate.public_key().public_numbers() != private.public_key().public_numbers():
                return "spec.tls.key does not match spec.tls.certificate"
        for field in ("caCertificate", "destinationCACertificate"):
            if tls.get(field):
                x509.load_pem_x509_certificates(tls[field].encode())
    except ValueError as exc:
        return f"unreadable TLS material: {exc}"
    return None


def admit(routes, domain):
    """Decide every Route: returns {key: {"host", "admitted", "reason", "message"}}.
    Older Routes claim their host first (creationTimestamp, then namespace/name)."""
    decisions, owners = {}, {}
    ordered = sorted(routes, key=lambda r: (r["metadata"].get("creationTimestamp") or "", _key(r)))
    for route in ordered:
        key, host = _key(route), route_host(route, domain)
        spec = route.get("spec") or {}
        tls = spec.get("tls") or {}
        termination = tls.get("termination")
        problem = None
        if (spec.get("to") or {}).get("kind", "Service") != "Service":
            problem = ("RouteNotAdmitted", "spec.to.kind must be Service")
        elif termination not in (None, "edge", "reencrypt", "passthrough"):
            problem = ("ExtendedValidationFailed", f"spec.tls.termination {termination!r} is not edge, reencrypt or passthrough")
        elif termination and _check_tls(tls):
            problem = ("ExtendedValidationFailed", _check_tls(tls))
        elif host in owners:
            problem = ("HostAlreadyClaimed", f"route {owners[host]} already exposes {host} and is older")
        if problem:
            decisions[key] = {"host": host, "admitted": False, "reason": problem[0], "message": problem[1]}
        else:
            owners[host] = key
            decisions[key] = {"host": host, "admitted": True, "reason": None, "message": None}
    return decisions


def endpoints_of(slices, namespace, service, prefer_port):
    """[(server name, "ip:port")] of the ready endpoints of ``namespace/service``; with
    ``prefer_port`` (the Route's spec.port.targetPort) only the port of that name or number."""
    servers = set()
    for es in slices:
        meta = es["metadata"]
        if meta["namespace"] != namespace or (meta.get("labels") or {}).get(SERVICE_NAME_LABEL) != service:
            continue
        if es.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices are ignored, as by the router
        for port in es.get("ports") or []:
            if prefer_port not in (None, "") and str(prefer_port) not in (port.get("name"), str(port.get("port"))):
                continue
            for endpoint in es.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False or not endpoint.get("addresses"):
                    continue
                ip = endpoint["addresses"][0]
                address = f"[{ip}]:{int(port['port'])}" if ":" in ip else f"{ip}:{int(port['port'])}"
                servers.add((f"pod:{namespace}:{service}:{port.get('name') or port['port']}:{address}",
                             address))
    return sorted(servers)


class Files:
    """What the router writes: haproxy.cfg, its map files and certificates (name -> text)."""

    def __init__(self):
        self.files = {}

    def add(self, name, text):
        self.files[name] = text
        return name


def render(routes, slices, decisions, settings):
    """All of HAProxy's files for these Routes. ``settings``: work_dir, https/http bind addresses,
    default_certificate (PEM path: cert + key), default_destination_ca (PEM path)."""
    out = Files()
    work = settings["work_dir"]
    sni_socket = os.path.join(work, "run", "haproxy-sni.sock")
    stats_socket = os.path.join(work, "run", STATS_SOCKET)
    tcp_map, https_map, http_map, redirect_map, crt_list = [], [], [], [], []
    backends = []
    for route in sorted(routes, key=_key):
        decision = decisions[_key(route)]
        if not decision["admitted"]:
            continue
        spec, host, key = route.get("spec") or {}, decision["host"], _key(route)
        namespace, service = route["metadata"]["namespace"], spec["to"]["name"]
        tls = spec.get("tls") or {}
        termination = tls.get("termination")
        prefer = (spec.get("port") or {}).get("targetPort")
        servers = endpoints_of(slices, namespace, service, prefer)
        if termination == "passthrough":
            name = "be_tcp:" + key
            tcp_map.append(f"{host} {name}")
            lines = ["backend " + name, "  mode tcp", "  balance source"]
            lines += ["  server %s %s weight 1" % s for s in servers]
        elif termination == "reencrypt":
            name = "be_secure:" + key
            https_map.append(f"{host} {name}")
            if tls.get("destinationCACertificate"):
                ca = out.add(f"cacerts/{key}.pem", tls["destinationCACertificate"].strip() + "\n")
                verify = f"verify required ca-file {os.path.join(work, ca)}"
            else:  # the service CA signs <service>.<namespace>.svc
                verify = f"verifyhost {service}.{namespace}.svc verify required ca-file {settings['default_destination_ca']}"
            lines = ["backend " + name, "  mode http", "  balance leastconn"]
            lines += [f"  server {s[0]} {s[1]} weight 1 ssl {verify}" for s in servers]
        else:
            name = ("be_edge_http:" if termination == "edge" else "be_http:") + key
            (https_map if termination == "edge" else http_map).append(f"{host} {name}")
            lines = ["backend " + name, "  mode http", "  balance leastconn"]
            lines += ["  server %s %s weight 1" % s for s in servers]
        if termination in ("edge", "reencrypt"):  # plain HTTP for a terminated route: its policy says
            policy = tls.get("insecureEdgeTerminationPolicy") or "None"
            if policy == "Allow":
                http_map.append(f"{host} {name}")
            elif policy == "Redirect":
                redirect_map.append(f"{host} 1")
        if termination in ("edge", "reencrypt") and tls.get("certificate"):
            pem = "\n".join(p.strip() for p in (tls["certificate"], tls["key"], tls.get("caCertificate") or "") if p)
            cert = out.add(f"certs/{key}.pem", pem + "\n")
            crt_list.append(f"{os.path.join(work, cert)} {host}")
        backends.append("\n".join(lines))
    maps = {
        "tcp": out.add("os_tcp_be.map", "".join(line + "\n" for line in tcp_map)),
        "https": out.add("os_edge_reencrypt_be.map", "".join(line + "\n" for line in https_map)),
        "http": out.add("os_http_be.map", "".join(line + "\n" for line in http_map)),
        "redirect": out.add("os_route_http_redirect.map", "".join(line + "\n" for line in redirect_map)),
        "crt": out.add("cert_config.map", "".join(line + "\n" for line in crt_list)),
    }
    path = {k: os.path.join(work, v) for k, v in maps.items()}
    host_key = "req.hdr(host),lower,field(1,:)"
    config = [
        "# Written by lab/router.py from the cluster's Routes and EndpointSlices; do not edit.",
        "global",
        "  maxconn 2000",
        "  tune.ssl.default-dh-param 2048",
        # the router's statistics (OpenShift's router serves them on port 1936): traffic(), the benchmarks
        f"  stats socket {stats_socket} mode 600 level user",
        "",
        "defaults",
        "  mode http",
        "  timeout connect 5s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout http-request 10s",
        "  timeout tunnel 1h",
        "",
        "frontend public",
        f"  bind {settings['http_bind']}",
        "  mode http",
        "  option forwardfor",
        "  http-request set-header X-Forwarded-Proto http",
        f"  http-request redirect scheme https code 302 if {{ {host_key},map({path['redirect']}) -m found }}",
        f"  use_backend %[{host_key},map({path['http']})]",
        "  default_backend openshift_default",
        "",
        "frontend public_ssl",
        f"  bind {settings['https_bind']}",
        "  mode tcp",
        "  tcp-request inspect-delay 5s",
        "  tcp-request content accept if { req_ssl_hello_type 1 }",
        "  use_backend %%[req.ssl_sni,lower,map(%s)] if { req.ssl_sni,lower,map(%s) -m found }"
        % (path["tcp"], path["tcp"]),
        "  default_backend be_sni",
        "",
        "backend be_sni",
        "  mode tcp",
        f"  server fe_sni unix@{sni_socket} weight 1 send-proxy",
        "",
        "frontend fe_sni",
        f"  bind unix@{sni_socket} ssl crt {settings['default_certificate']} crt-list {path['crt']} accept-proxy",
        "  mode http",
        "  option forwardfor",
        "  http-request set-header X-Forwarded-Proto https",
        "  http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        f"  use_backend %[{host_key},map({path['https']})]",
        "  default_backend openshift_default",
        "",
        "backend openshift_default",
        "  mode http",
        "  http-request deny deny_status 503",
        "",
    ]
    out.add("haproxy.cfg", "\n".join(config) + "\n".join(b + "\n" for b in backends))
    return out.files


def traffic(work_dir):
    """Bytes the router carried since HAProxy started: ``{"bytes_in", "bytes_out"}`` of its frontends
    (``show stat`` on its statistics socket; ``bytes_in`` is what clients sent through it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(os.path.join(work_dir, "run", STATS_SOCKET))
        conn.sendall(b"show stat\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    frontends = [row for row in rows if row.get("svname") == "FRONTEND" and row.get("pxname") == "public_ssl"]
    return {"bytes_in": sum(int(row["bin"] or 0) for row in frontends), "bytes_out": sum(int(row["bout"] or 0) for row in frontends)}


def ingress_status(decision, settings, previous):
    """This router's status.ingress entry; keeps lastTransitionTime when nothing changed."""
    condition = {"type": "Admitted", "status": "True" if decision["admitted"] else "False"}
    if not decision["admitted"]:
        condition.update(reason=decision["reason"], message=decision["message"])
    old = next((c for c in (previous or {}).get("conditions") or [] if c.get("type") == "Admitted"), None)
    same = old and all(old.get(k) == v for k, v in condition.items())
    condition["lastTransitionTime"] = old["lastTransitionTime"] if same and old.get("lastTransitionTime") else \
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"host": decision["host"], "routerName": settings["router_name"],
            "routerCanonicalHostname": settings["canonical_hostname"], "wildcardPolicy": "None",
            "conditions": [condition]}


def hosts_block(text, hosts, address="127.0.0.1"):
    """``text`` of a hosts file with the managed block replaced by ``hosts`` (none: no block)."""
    lines, inside = [], False
    for line in text.splitlines():
        if line == HOSTS_BEGIN:
            inside = True
        elif line == HOSTS_END:
            inside = False
        elif not inside:
            lines.append(line)
    if hosts:
        lines += [HOSTS_BEGIN] + [f"{address} {h}" for h in sorted(hosts)] + [HOSTS_END]
    return "\n".join(lines) + "\n"


# -- the process ------------------------------------------------------------------------------
class Router:
    def __init__(self, settings):
        self.settings = settings
        self.work = settings["work_dir"]
        api = kconfig.new_client_from_config(config_file=settings["kubeconfig"], context=settings["context"])
        self.dyn = DynamicClient(api)
        self.resources = {
            "routes": self.dyn.resources.get(api_version="route.openshift.io/v1", kind="Route"),
            "slices": self.dyn.resources.get(api_version="discovery.k8s.io/v1", kind="EndpointSlice"),
        }
        self.cache = {kind: {} for kind in self.resources}
        self.synced = {kind: False for kind in self.resources}
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.haproxy = None
        self.written = {}
        self.hosts = None

    # watches: list, then watch from the list's resourceVersion; relist after any error
    def _watch(self, kind):
        resource = self.resources[kind]
        while not self.stopping.is_set():
            try:
                listing = resource.get()
                items = {_key(o): o for o in listing.to_dict()["items"]}
                with self.lock:
                    self.cache[kind] = items
                    self.synced[kind] = True
                self.changed.set()
                version = listing.metadata.resourceVersion
                for event in resource.watch(resource_version=version, timeout=240):
                    if self.stopping.is_set():
                        return
                    raw = event["raw_object"]
                    if event["type"] == "ERROR":
                        LOG.info("%s watch ended: %s", kind, raw.get("message"))
                        break
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.cache[kind].pop(_key(raw), None)
                        else:
                            self.cache[kind][_key(raw)] = raw
                    self.changed.set()
            except Exception as exc:  # an API server restart, a timeout: relist
                LOG.warning("%s watch failed (%s); relisting", kind, exc)
                self.stopping.wait(1)

    def _write_files(self, files):
        changed = False
        for name, text in files.items():
            if self.written.get(name) == text:
                continue
            path = os.path.join(self.work, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
            self.written[name] = text
            changed = True
        for name in set(self.written) - set(files):
            os.unlink(os.path.join(self.work, name))
            del self.written[name]
            changed = True
        return changed

    def _reload(self, files):
        """Write the files and reload HAProxy if they changed (after checking the new config)."""
        if files == self.written and self.haproxy is not None and self.haproxy.poll() is None:
            return True
        staged = tempfile.mkdtemp(prefix="check-", dir=self.work)
        try:
            for name, content in files.items():  # check against the new maps and certificates
                for other in files:
                    content = content.replace(os.path.join(self.work, other), os.path.join(staged, other))
                os.makedirs(os.path.dirname(os.path.join(staged, name)), exist_ok=True)
                with open(os.path.join(staged, name), "w") as handle:
                    handle.write(content)
            check = subprocess.run(["haproxy", "-c", "-f", os.path.join(staged, "haproxy.cfg")],
                                   capture_output=True, text=True)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        if check.returncode != 0:
            LOG.error("new haproxy configuration refused, keeping the running one: %s",
                      (check.stderr or check.stdout).strip()[-2000:])
            return False
        if not self._write_files(files):
            return True
        if self.haproxy is None or self.haproxy.poll() is not None:
            os.makedirs(os.path.join(self.work, "run"), exist_ok=True)
            self.haproxy = subprocess.Popen(["haproxy", "-W", "-db", "-f", os.path.join(self.work, "haproxy.cfg")])
            LOG.info("haproxy started (pid %d)", self.haproxy.pid)
        else:
            self.haproxy.send_signal(signal.SIGUSR2)
            LOG.info("haproxy reloaded")
        return True

    def _update_hosts(self, hosts):
        if not self.settings.get("hosts_file") or hosts == self.hosts:
            return
        path = self.settings["hosts_file"]
        with open(path, "r+") as handle:  # in place: /etc/hosts may be a bind mount
            text = handle.read()
            new = hosts_block(text, hosts, self.settings.get("hosts_address", "127.0.0.1"))
            if new != text:
                handle.seek(0)
                handle.write(new)
                handle.truncate()
        self.hosts = hosts

    def _update_status(self, routes, decisions):
        resource = self.resources["routes"]
        for route in routes:
            decision = decisions[_key(route)]
            ingress = (route.get("status") or {}).get("ingress") or []
            mine = next((i for i in ingress if i.get("routerName") == self.settings["router_name"]), None)
            wanted = ingress_status(decision, self.settings, mine)
            if mine == wanted:
                continue
            others = [i for i in ingress if i.get("routerName") != self.settings["router_name"]]
            try:
                resource.status.patch(
                    body={"metadata": {"resourceVersion": route["metadata"]["resourceVersion"]},
                          "status": {"ingress": others + [wanted]}},
                    name=route["metadata"]["name"], namespace=route["metadata"]["namespace"],
                    content_type="application/merge-patch+json")
            except Exception as exc:  # 409 or gone: the watch brings the new version
                LOG.info("status of route %s not written: %s", _key(route), getattr(exc, "status", exc))

    def sync(self):
        with self.lock:
            if not all(self.synced.values()):
                return
            routes = [dict(r) for r in self.cache["routes"].values()]
            slices = list(self.cache["slices"].values())
        decisions = admit(routes, self.settings["domain"])
        if self._reload(render(routes, slices, decisions, self.settings)):
            self._update_hosts(frozenset(d["host"] for d in decisions.values() if d["admitted"]))
        self._update_status(routes, decisions)

    def run(self):
        shutil.rmtree(self.work, ignore_errors=True)  # files of an earlier run (keys of deleted routes)
        os.makedirs(os.path.join(self.work, "run"), mode=0o700)

        def stop(*_):
            self.stopping.set()
            self.changed.set()  # wake the main loop now

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self._reload(render([], [], {}, self.settings))
        for kind in self.resources:
            threading.Thread(target=self._watch, args=(kind,), daemon=True).start()
        while not self.stopping.is_set():
            if self.changed.wait(30):
                self.stopping.wait(0.1)  # let a burst of events settle
                self.changed.clear()
            try:
                self.sync()
            except Exception:
                LOG.exception("sync failed; retrying on the next change")
                self.changed.set()
                self.stopping.wait(1)
            if self.haproxy is not None and self.haproxy.poll() is not None:
                LOG.error("haproxy exited with %s; starting it again", self.haproxy.returncode)
                self.written = {}
                self.changed.set()
        self.stop()

    def stop(self):
        if self.settings.get("hosts_file"):
            self.hosts = None
            self._update_hosts(frozenset())
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="JSON settings written by labctl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with open(args.config) as handle:
        settings = json.load(handle)
    Router(settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
