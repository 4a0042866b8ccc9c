import pytest

from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec, Target, spec_problems


def test_names():
    assert labels.identity_name("pull", "prod-east") == "segmented-pull-prod-east"
    assert labels.credential_name("pull", "test") == "pull"
    assert labels.credential_name("push", "myproject") == "push-myproject"
    name = labels.generation_name("segmented-pull-test", 12)
    assert labels.generation_number(name, "segmented-pull-test") == 12
    assert labels.generation_number("segmented-pull-test-genx", "segmented-pull-test") is None
    assert labels.generation_number("segmented-pull-testa-gen1", "segmented-pull-test") is None


def test_selector():
    assert labels.selector(identity="x", cluster="c") == (
        "app.kubernetes.io/managed-by=segmented.registry,segmented.registry/cluster=c,segmented.registry/identity=x")


@pytest.mark.parametrize("expires, renew_before, now, keep", [
    (None, 100, 0, True),          # long-lived: never renewed
    (1000, 100, 800, True),        # 200 s left, renews at 100
    (1000, 100, 900, False),       # at the threshold
    (1000, 100, 2000, False),      # expired
])
def test_keep_generation(expires, renew_before, now, keep):
    assert labels.keep_generation(expires, renew_before, now) is keep


@pytest.mark.parametrize("expires, duration, now, outlives", [
    (None, 600, 0, False),
    (1000 + 600 + labels.EXPIRY_TOLERANCE, 600, 1000, False),
    (1000 + 600 + labels.EXPIRY_TOLERANCE + 1, 600, 1000, True),
])
def test_outlives_duration(expires, duration, now, outlives):
    assert labels.outlives_duration(expires, duration, now) is outlives


def test_expiry_text_round_trip_and_garbage_is_expired():
    assert labels.expires_epoch(labels.expires_text(None)) is None
    assert labels.expires_epoch(labels.expires_text(1234.7)) == 1234
    assert labels.expires_epoch("garbage") == 0


def test_due_for_revocation():
    assert not labels.due_for_revocation({}, 10)
    assert not labels.due_for_revocation({labels.ANNOTATION_REVOKE_AFTER: "20"}, 10)
    assert labels.due_for_revocation({labels.ANNOTATION_REVOKE_AFTER: "10"}, 10)
    assert labels.due_for_revocation({labels.ANNOTATION_REVOKE_AFTER: "x"}, 10)


def test_linked_text():
    assert labels.linked_text(["b", "a", "b"]) == "a,b"
    assert labels.linked_list("a,b") == ["a", "b"] and labels.linked_list("") == []


def good_spec(**changes):
    values = dict(cluster="test", access="pull", namespace="test", registry="test-registry.example.com",
                  secret_name="segmented-registry-pull", targets=[Target("myproject", ["default"])])
    values.update(changes)
    return Spec(**values)


def test_spec_problems_accepts_a_good_spec():
    assert spec_problems(good_spec()) == []
    assert spec_problems(good_spec(access="push", token_type="long_lived", duration=0)) == []


@pytest.mark.parametrize("changes, needle", [
    ({"cluster": "Prod_East"}, "cluster_name"),
    ({"namespace": "Bad"}, "namespace"),
    ({"registry": "https://x"}, "registry"),
    ({"secret_name": "Bad Name"}, "secret_name"),
    ({"targets": [Target("a"), Target("a")]}, "listed twice"),
    ({"targets": [Target("a", ["Bad!"])]}, "service_accounts"),
    ({"duration": 60}, "at least 600"),
    ({"renew_before": 604800}, "renew_before"),
    ({"grace": -1}, "grace"),
    ({"token_type": "long_lived"}, "token_type: long_lived cannot make a pull credential"),
])
def test_spec_problems_name_the_option(changes, needle):
    problems = spec_problems(good_spec(**changes))
    assert problems and needle in problems[0]
