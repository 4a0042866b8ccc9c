"""Unit tests of lab/images.py (the OCI images the node runs) and of the lab CA re-issuing a
certificate that lacks a requested name (lab/pki.py). No network, no cluster."""

import gzip
import io
import json
import os
import re
import subprocess
import tarfile

import pytest
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


def _only_file_and_config(tmp_path, name, entries, config):
    """The one file of a one-binary image (its tar member) and the image's config."""
    binary = tmp_path / name
    binary.write_bytes(b"\x7fELF pretend " + name.encode())
    layout = str(tmp_path / "oci")
    images.write_image(layout, entries(str(binary)), config, "abc")
    _digest, manifest = image.load_manifest(layout, "abc")
    with open(image._blob_path(layout, manifest["config"]["digest"]), "rb") as handle:
        config = json.load(handle)["config"]
    with open(image._blob_path(layout, manifest["layers"][0]["digest"]), "rb") as handle:
        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(handle.read())))
    [member] = layer.getmembers()
    assert member.name == name and member.mode == 0o755 and member.isfile()
    return config


def test_token_server_image_is_the_one_binary_run_as_a_user(tmp_path):
    config = _only_file_and_config(tmp_path, "token-server", images.token_server_entries, images.TOKEN_SERVER_IMAGE_CONFIG)
    assert config["Entrypoint"] == ["/token-server", "--config", "/etc/token-server/config.json"]
    assert config["User"] == "1001" and config["ExposedPorts"] == {"8080/tcp": {}}


def test_copier_image_is_the_one_binary_run_as_a_user(tmp_path):
    config = _only_file_and_config(tmp_path, "copier", images.copier_entries, images.COPIER_IMAGE_CONFIG)
    assert config["Entrypoint"] == ["/copier"] and config["User"] == "1001"


@pytest.mark.parametrize("name, reference", [("token-server", images.token_server_reference), ("copier", images.copier_reference)])
def test_a_component_reference_carries_the_source_hash_of_the_build(name, reference):
    assert reference("0123456789ab") == f"localhost:5104/segmented-registry/{name}:0123456789ab"
    version = reference().rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    paths = subprocess.run(["bash", images.BUILD_SCRIPT, "paths"], check=True, capture_output=True, text=True).stdout
    built = [path for path in paths.split() if f"/{name}-" in path]
    assert built and all(path.endswith(f"/{name}-" + version) for path in built)


def test_the_lab_references_name_the_copier_by_its_version():
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
