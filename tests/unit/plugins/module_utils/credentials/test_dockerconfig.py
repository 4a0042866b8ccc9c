import base64
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.credentials import dockerconfig as dc


def test_build_is_canonical_and_carries_auth():
    text = dc.build({"test-registry.example.com": ("serviceaccount", "tok3n")})
    assert text == dc.build({"test-registry.example.com": ("serviceaccount", "tok3n")})
    assert " " not in text
    item = json.loads(text)["auths"]["test-registry.example.com"]
    assert base64.b64decode(item["auth"]).decode() == "serviceaccount:tok3n"
    assert item["username"] == "serviceaccount" and item["password"] == "tok3n"


def test_parse_round_trip_and_auth_only_entries():
    text = dc.build({"a.example.com:5000": ("u", "p1"), "b.example.com": ("v", "p2")})
    assert dc.parse(text) == {"a.example.com:5000": {"username": "u", "password": "p1"},
                              "b.example.com": {"username": "v", "password": "p2"}}
    only_auth = json.dumps({"auths": {"c.example.com": {"auth": base64.b64encode(b"w:p:3").decode()}}})
    assert dc.parse(only_auth) == {"c.example.com": {"username": "w", "password": "p:3"}}


@pytest.mark.parametrize("text, why", [
    ("not json", "not JSON"),
    ('{"foo": {}}', '"auths"'),
    ('{"auths": {"x": 1}}', "not an object"),
    ('{"auths": {"x": {"auth": "@@@"}}}', "not base64"),
])
def test_parse_refuses_what_is_not_a_dockerconfig(text, why):
    with pytest.raises(dc.DockerConfigError, match=why):
        dc.parse(text)


def test_merge_keeps_other_entries_and_removes_named_ones():
    base = dc.build({"other.example.com": ("x", "keep-me"), "old.example.com": ("y", "drop-me")})
    merged = dc.merge(base, {"new.example.com": ("serviceaccount", "t")}, remove=["old.example.com"])
    parsed = dc.parse(merged)
    assert set(parsed) == {"other.example.com", "new.example.com"}
    assert parsed["other.example.com"]["password"] == "keep-me"
    assert dc.merge(None, {"a.example.com": ("u", "p")}) == dc.build({"a.example.com": ("u", "p")})


def test_secret_data_round_trip():
    text = dc.build({"r.example.com": ("u", "p")})
    data = dc.secret_data(text)
    assert list(data) == [".dockerconfigjson"]
    assert dc.from_secret_data(data) == text
    assert dc.from_secret_data({}) is None
    with pytest.raises(dc.DockerConfigError):
        dc.from_secret_data({".dockerconfigjson": "@@"})


def test_entry_refuses_bad_user_and_empty_password():
    with pytest.raises(dc.DockerConfigError):
        dc.entry("a:b", "p")
    with pytest.raises(dc.DockerConfigError):
        dc.entry("u", "")


def test_secret_forms_cover_every_encoding_found_in_a_secret():
    forms = dc.secret_forms("serviceaccount", "tok3n")
    data = dc.secret_data(dc.build({"r.example.com": ("serviceaccount", "tok3n")}))
    decoded = base64.b64decode(data[".dockerconfigjson"]).decode()
    assert "tok3n" in forms
    assert base64.b64encode(b"serviceaccount:tok3n").decode() in forms and base64.b64encode(b"serviceaccount:tok3n").decode() in decoded
    assert base64.b64encode(b"tok3n").decode() in forms
    # with its registry: the Secret's dockerconfigjson text and the Secret's base64 data of it too
    forms = dc.secret_forms("serviceaccount", "tok3n", "r.example.com")
    assert decoded in forms and data[".dockerconfigjson"] in forms
