"""Pure parts of lab/service_ca.py: the Secret the lab's service CA writes for an annotated Service."""
import base64

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab import service_ca

SERVICE = {"metadata": {"name": "token-server", "namespace": "segmented-registry", "uid": "u-1",
                        "annotations": {service_ca.SECRET_NAME_ANNOTATION: "token-server-tls"}}}


def test_the_secret_holds_a_serving_certificate_for_the_service_names_signed_by_the_service_ca(tmp_path):
    authority = service_ca.authority(str(tmp_path))
    secret = service_ca.serving_secret(SERVICE, authority)
    assert (secret["type"], secret["metadata"]["name"], secret["metadata"]["namespace"]) == (
        "kubernetes.io/tls", "token-server-tls", "segmented-registry")
    assert secret["metadata"]["annotations"][service_ca.ORIGIN_UID_ANNOTATION] == "u-1"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["token-server.segmented-registry.svc", "token-server.segmented-registry.svc.cluster.local"]
    assert cert.issuer == authority.cert.subject
    assert authority.cert.subject.rfc4514_string() == "CN=" + service_ca.CA_COMMON_NAME
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    cert.verify_directly_issued_by(authority.cert)


def test_only_an_annotated_service_wants_a_secret():
    assert service_ca.wanted_secret_name(SERVICE) == "token-server-tls"
    assert service_ca.wanted_secret_name({"metadata": {"name": "s", "namespace": "n"}}) is None
