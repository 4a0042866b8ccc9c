"""Pure parts of the lab's router (lab/router.py): which Routes are admitted, which endpoints
back them, what goes into haproxy.cfg, and the managed block of the hosts file."""
from lab import router

SETTINGS = {"work_dir": "/w", "https_bind": "127.0.0.1:443", "http_bind": "127.0.0.1:80",
            "default_certificate": "/d.pem", "default_destination_ca": "/ca.crt"}


def _route(name, created="2026-01-01T00:00:00Z", host=None, tls=None, port=None, namespace="ns"):
    spec = {"to": {"kind": "Service", "name": "svc"}}
    if host:
        spec["host"] = host
    if tls:
        spec["tls"] = tls
    if port is not None:
        spec["port"] = {"targetPort": port}
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "spec": spec}


def _slice(namespace="ns", service="svc", address_type="IPv4", ready=True, ip="10.0.0.1"):
    return {"metadata": {"namespace": namespace, "name": service + "-x",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type,
            "ports": [{"name": "https", "port": 8443}, {"name": "metrics", "port": 9000}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]}


def test_the_older_route_keeps_a_host_and_a_default_host_is_name_namespace_domain():
    newer = _route("b", created="2026-02-01T00:00:00Z", host="a-ns.apps.lab")
    decisions = router.admit([newer, _route("a")], "apps.lab")
    assert decisions["ns:a"] == {"host": "a-ns.apps.lab", "admitted": True, "reason": None, "message": None}
    assert decisions["ns:b"]["reason"] == "HostAlreadyClaimed" and not decisions["ns:b"]["admitted"]


def test_unknown_termination_and_half_tls_material_are_not_admitted():
    decisions = router.admit([_route("a", tls={"termination": "bogus"}),
                              _route("b", tls={"termination": "edge", "certificate": "x"})], "apps.lab")
    assert decisions["ns:a"]["reason"] == decisions["ns:b"]["reason"] == "ExtendedValidationFailed"


def test_endpoints_are_the_ready_addresses_of_the_service_port_the_route_names():
    slices = [_slice(), _slice(ready=False, ip="10.0.0.9"), _slice(service="other", ip="10.0.0.2"),
              _slice(address_type="FQDN", ip="example.com")]
    assert router.endpoints_of(slices, "ns", "svc", "https") == [("pod:ns:svc:https:10.0.0.1:8443", "10.0.0.1:8443")]
    assert router.endpoints_of(slices, "ns", "svc", 9000) == [("pod:ns:svc:metrics:10.0.0.1:9000", "10.0.0.1:9000")]
    assert len(router.endpoints_of(slices, "ns", "svc", None)) == 2
    assert router.endpoints_of([_slice(address_type="IPv6", ip="fd00::1")], "ns", "svc", "https")[0][1] == \
        "[fd00::1]:8443"


def test_reencrypt_without_destination_ca_verifies_the_service_name_with_the_default_ca():
    routes = [_route("r", tls={"termination": "reencrypt"}, port="https")]
    files = router.render(routes, [_slice()], router.admit(routes, "apps.lab"), SETTINGS)
    assert "ssl verifyhost svc.ns.svc verify required ca-file /ca.crt" in files["haproxy.cfg"]
    assert files["os_edge_reencrypt_be.map"] == "r-ns.apps.lab be_secure:ns:r\n"


def test_a_rejected_route_gets_no_backend():
    routes = [_route("a"), _route("b", created="2026-02-01T00:00:00Z", host="a-ns.apps.lab")]
    files = router.render(routes, [_slice()], router.admit(routes, "apps.lab"), SETTINGS)
    assert "be_http:ns:a" in files["haproxy.cfg"] and "ns:b" not in files["haproxy.cfg"]


def test_hosts_block_is_replaced_and_removed_leaving_other_lines():
    text = "127.0.0.1 localhost\n"
    with_block = router.hosts_block(text, {"b.apps.lab", "a.apps.lab"})
    assert with_block == f"127.0.0.1 localhost\n{router.HOSTS_BEGIN}\n127.0.0.1 a.apps.lab\n127.0.0.1 b.apps.lab\n{router.HOSTS_END}\n"
    assert router.hosts_block(with_block, {"a.apps.lab"}).count("apps.lab") == 1
    assert router.hosts_block(with_block, set()) == text


def test_insecure_edge_termination_policy_allows_or_redirects_plain_http():
    routes = [_route("allow", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Allow"}),
              _route("redirect", tls={"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Redirect"}),
              _route("none", tls={"termination": "edge"}), _route("plain")]
    files = router.render(routes, [], router.admit(routes, "apps.lab"), SETTINGS)
    assert files["os_http_be.map"] == "allow-ns.apps.lab be_edge_http:ns:allow\nplain-ns.apps.lab be_http:ns:plain\n"
    assert files["os_route_http_redirect.map"] == "redirect-ns.apps.lab 1\n"
