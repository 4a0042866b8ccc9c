"""Unit tests of lab/images.py (the OCI images the node runs) and of the lab CA re-issuing a
certificate that lacks a requested name (lab/pki.py). No network, no cluster."""

import gzip
import io
import json
import os
import re
import subprocess
import tarfile

from cryptography import x509

from lab import image, images, pki


def _entries(tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF pretend binary")
    return [images._entry("bin", directory=True), images._entry("tmp", directory=True),
            images._entry("bin/tool", source=str(binary), mode=0o755),
            images._entry("bin/sh", link="/bin/tool"),
            images._entry("etc/motd", data=b"hello\n")]


def test_write_image_is_deterministic_and_a_valid_layout(tmp_path):
    first = images.write_image(str(tmp_path / "a"), _entries(tmp_path), {"Entrypoint": ["/bin/tool"]}, "v1")
    second = images.write_image(str(tmp_path / "b"), _entries(tmp_path), {"Entrypoint": ["/bin/tool"]}, "v1")
    assert first == second
    assert image.verify_layout(str(tmp_path / "a")) == []
    digest, manifest = image.load_manifest(str(tmp_path / "a"), "v1")
    assert digest == first and len(manifest["layers"]) == 1
    with open(image._blob_path(str(tmp_path / "a"), manifest["config"]["digest"]), "rb") as handle:
        config = json.load(handle)
    assert config["config"]["Entrypoint"] == ["/bin/tool"] and config["config"]["Env"] == [images.PATH_ENV]
    with open(image._blob_path(str(tmp_path / "a"), manifest["layers"][0]["digest"]), "rb") as handle:
        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(handle.read())))
    members = {m.name: m for m in layer.getmembers()}
    assert members["bin/tool"].mode == 0o755 and members["bin/tool"].mtime == 0
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/tool"
    assert layer.extractfile("etc/motd").read() == b"hello\n"


def test_a_changed_file_changes_the_digest(tmp_path):
    before = images.write_image(str(tmp_path / "a"), _entries(tmp_path), {}, "v1")
    entries = _entries(tmp_path)
    (tmp_path / "tool").write_bytes(b"\x7fELF another binary")  # same size, other bytes
    after = images.write_image(str(tmp_path / "b"), entries, {}, "v1")
    assert before != after


def test_token_server_image_is_the_one_binary_run_as_a_user(tmp_path):
    binary = tmp_path / "token-server"
    binary.write_bytes(b"\x7fELF pretend token server")
    layout = str(tmp_path / "oci")
    images.write_image(layout, images.token_server_entries(str(binary)), images.TOKEN_SERVER_IMAGE_CONFIG, "abc")
    _digest, manifest = image.load_manifest(layout, "abc")
    with open(image._blob_path(layout, manifest["config"]["digest"]), "rb") as handle:
        config = json.load(handle)["config"]
    assert config["Entrypoint"] == ["/token-server", "--config", "/etc/token-server/config.json"]
    assert config["User"] == "1001" and config["ExposedPorts"] == {"8080/tcp": {}}
    with open(image._blob_path(layout, manifest["layers"][0]["digest"]), "rb") as handle:
        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(handle.read())))
    [member] = layer.getmembers()
    assert member.name == "token-server" and member.mode == 0o755 and member.isfile()


def test_token_server_reference_carries_the_source_hash_of_the_build():
    assert images.token_server_reference("0123456789ab") == "localhost:5104/segmented-registry/token-server:0123456789ab"
    reference = images.token_server_reference()
    version = reference.rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    paths = subprocess.run(["bash", images.BUILD_SCRIPT, "paths"], check=True, capture_output=True, text=True).stdout
    built = [path for path in paths.split() if "/token-server-" in path]
    assert built and all(path.endswith("/token-server-" + version) for path in built)


def test_copier_image_is_the_one_binary_run_as_a_user(tmp_path):
    binary = tmp_path / "copier"
    binary.write_bytes(b"\x7fELF pretend copier")
    layout = str(tmp_path / "oci")
    images.write_image(layout, images.copier_entries(str(binary)), images.COPIER_IMAGE_CONFIG, "abc")
    _digest, manifest = image.load_manifest(layout, "abc")
    with open(image._blob_path(layout, manifest["config"]["digest"]), "rb") as handle:
        config = json.load(handle)["config"]
    assert config["Entrypoint"] == ["/copier"] and config["User"] == "1001"
    with open(image._blob_path(layout, manifest["layers"][0]["digest"]), "rb") as handle:
        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(handle.read())))
    [member] = layer.getmembers()
    assert member.name == "copier" and member.mode == 0o755 and member.isfile()


def test_copier_reference_carries_the_source_hash_of_the_build():
    assert images.copier_reference("0123456789ab") == "localhost:5104/segmented-registry/copier:0123456789ab"
    reference = images.copier_reference()
    version = reference.rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    paths = subprocess.run(["bash", images.BUILD_SCRIPT, "paths"], check=True, capture_output=True, text=True).stdout
    built = [path for path in paths.split() if "/copier-" in path]
    assert built and all(path.endswith("/copier-" + version) for path in built)
    refs = images.references("v3.1.2", "v1.36.3", "0123456789ab", "v1.2.0-abc", "fedcba987654")
    assert refs["copier"] == "localhost:5104/segmented-registry/copier:fedcba987654"


def _names(cert_path):
    with open(cert_path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def test_a_certificate_is_reissued_only_when_it_lacks_a_requested_name(tmp_path):
    ca = pki.Authority(str(tmp_path / "pki"))
    cert, _key = ca.issue("apiserver", "apiserver", hosts=("127.0.0.1", "localhost"), server=True)
    with open(cert, "rb") as handle:
        original = handle.read()
    ca.issue("apiserver", "apiserver", hosts=("localhost", "127.0.0.1"), server=True)
    with open(cert, "rb") as handle:
        assert handle.read() == original  # same names: reused
    ca.issue("apiserver", "apiserver", hosts=("127.0.0.1", "localhost", "10.96.0.1", "kubernetes.default.svc"),
             server=True)
    assert _names(cert) == {"127.0.0.1", "localhost", "10.96.0.1", "kubernetes.default.svc"}
    assert os.stat(cert).st_size > 0
