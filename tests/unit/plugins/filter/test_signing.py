"""segmented.registry.signing_trust (plugins/filter/signing.py): which token signing certificates the
registries trust, and when the one a rotation replaced is retired (pure logic)."""
import base64
import datetime

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.signing import (
    RETIRE_AFTER,
    FilterModule,
    signing_rotation,
    signing_trust,
)

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
CURRENT, PREVIOUS = "-----BEGIN CERTIFICATE-----\ncurrent\n-----END CERTIFICATE-----", \
    "-----BEGIN CERTIFICATE-----\nprevious\n-----END CERTIFICATE-----"


def secret(previous=True, retire_after=None):
    data = {"tls.crt": base64.b64encode((CURRENT + "\n").encode()).decode(), "tls.key": "a2V5"}
    if previous:
        data["previous.crt"] = base64.b64encode(PREVIOUS.encode()).decode()
    annotations = {RETIRE_AFTER: retire_after} if retire_after else {}
    return {"metadata": {"name": "token-server-signing", "annotations": annotations}, "data": data}


def test_the_replaced_certificate_is_trusted_until_its_grace_has_passed():
    trust = signing_trust(secret(retire_after="2026-12-04T12:00:01Z"), NOW, 360)
    assert trust == {"certs": [CURRENT, PREVIOUS], "patch": None, "retire_after": "2026-12-04T12:00:01Z"}


@pytest.mark.parametrize("at", ["2026-12-04T12:00:00Z", "2026-12-04T11:00:00+00:00", "2026-12-04T13:00:00+02:00"])
def test_after_its_grace_the_replaced_certificate_goes_and_the_patch_removes_it(at):
    trust = signing_trust(secret(retire_after=at), NOW, 360)
    assert trust["certs"] == [CURRENT]
    assert trust["patch"] == {"metadata": {"annotations": {RETIRE_AFTER: None}}, "data": {"previous.crt": None}}


def test_a_replaced_certificate_without_the_annotation_starts_its_grace_now():
    trust = signing_trust(secret(), NOW.isoformat(), "360")
    assert trust["certs"] == [CURRENT, PREVIOUS]
    assert trust["patch"] == {"metadata": {"annotations": {RETIRE_AFTER: "2026-12-04T12:06:00Z"}}}


@pytest.mark.parametrize("given", [secret(previous=False), {}, None])
def test_nothing_replaced_nothing_to_do(given):
    expected = [CURRENT] if given else []
    assert signing_trust(given, NOW, 0) == {"certs": expected, "patch": None, "retire_after": None}


@pytest.mark.parametrize("args, message", [
    ((secret(retire_after="tomorrow"), NOW, 1), "is not an RFC 3339 time"),
    ((secret(retire_after="2026-12-04T12:00:00"), NOW, 1), "has no time zone"),
    ((secret(), NOW, -1), "registry_cluster_signing_previous_grace_seconds"),
    ((secret(), NOW, "soon"), "registry_cluster_signing_previous_grace_seconds"),
    (([], NOW, 1), "takes the Secret object"),
])
def test_bad_input_is_named(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        signing_trust(*args)


def test_registered():
    assert FilterModule().filters()["signing_trust"] is signing_trust
    assert FilterModule().filters()["signing_rotation"] is signing_rotation


NEW = "-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n"


def test_a_rotation_keeps_the_replaced_certificate_until_its_grace_ends():
    before = secret(previous=True, retire_after="2026-12-01T00:00:00Z")
    rotation = signing_rotation(before, NEW, "2026-12-04T12:00:00Z", "360")
    assert rotation == {"certs": {"tls.crt": base64.b64encode(NEW.encode()).decode(), "previous.crt": before["data"]["tls.crt"]},
                        "annotations": {RETIRE_AFTER: "2026-12-04T12:06:00Z"}}
    # what the registries then trust: the new certificate, and the replaced one until its grace ends
    after = {"data": rotation["certs"], "metadata": {"annotations": rotation["annotations"]}}
    assert signing_trust(after, NOW, 360)["certs"] == [NEW.strip(), CURRENT]
    assert signing_trust(after, NOW + datetime.timedelta(seconds=360), 360)["certs"] == [NEW.strip()]


@pytest.mark.parametrize("before", [{}, None, {"metadata": {"name": "token-server-signing"}, "data": {"tls.key": "a2V5"}}])
def test_the_first_key_replaces_nothing(before):
    assert signing_rotation(before, NEW, NOW, 360) == {
        "certs": {"tls.crt": base64.b64encode(NEW.encode()).decode()}, "annotations": {}}


@pytest.mark.parametrize("args, message", [
    ((secret(), NEW, NOW, -1), "signing_rotation: the grace -1 .*registry_cluster_signing_previous_grace_seconds"),
    ((secret(), NEW, "2026-12-04T12:00:00", 1), "signing_rotation: now .* has no time zone"),
    (([], NEW, NOW, 1), "signing_rotation takes the Secret object"),
])
def test_bad_rotation_input_is_named(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        signing_rotation(*args)
