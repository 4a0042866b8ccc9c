"""lab/integrated_service.py: the integrated registry's Service, as pods reach it (no lab needed)."""
import ipaddress

from lab import integrated_service, netns


def test_the_service_has_an_endpoint_pods_can_reach_and_openshift_s_name():
    namespace, service, endpoints = integrated_service.manifests()
    assert (namespace["metadata"]["name"], service["metadata"]["name"]) == ("openshift-image-registry", "image-registry")
    assert "selector" not in service["spec"] and service["spec"]["ports"][0]["port"] == 5000
    assert endpoints["metadata"]["labels"]["kubernetes.io/service-name"] == "image-registry"
    address = endpoints["endpoints"][0]["addresses"][0]
    assert address == netns.HOST_ADDRESS and not ipaddress.ip_address(address).is_loopback
    assert integrated_service.ADDRESS == "image-registry.openshift-image-registry.svc:5000"
    assert integrated_service.REALM == "https://image-registry.openshift-image-registry.svc:5000/openshift/token"


def test_haproxy_serves_tls_and_sends_the_token_path_to_the_token_server_verified():
    config = integrated_service.haproxy_config("/s/serving.pem", "/ca.crt", "localhost:5100", "127.0.0.1:5110")
    assert f"bind {netns.HOST_ADDRESS}:5000 ssl crt /s/serving.pem" in config
    assert "use_backend token if { path /openshift/token }" in config
    assert "http-request set-path /token" in config
    for server in ("server registry localhost:5100 ", "server token 127.0.0.1:5110 "):
        line = next(line for line in config.splitlines() if server in line)
        assert "ssl verify required ca-file /ca.crt" in line and "verifyhost localhost" in line
