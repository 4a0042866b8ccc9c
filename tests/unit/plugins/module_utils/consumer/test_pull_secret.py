"""Entries merged into a global pull secret (pure): others kept, foreign ones never overwritten,
no credential in any message."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.consumer import pull_secret as ps

OURS = {"prod-registry.example.com": {"auth": "c2VjcmV0LXRva2Vu"}}
THEIRS = {"quay.io": {"auth": "dGhlaXJz"}}


def test_merge_keeps_other_entries_and_removes_only_its_own():
    config = {"auths": dict(THEIRS)}
    merged, owned, changed = ps.merge_auths(config, [], OURS, "Secret x/y")
    assert merged["auths"] == dict(THEIRS, **OURS) and owned == list(OURS) and changed == list(OURS)
    assert ps.merge_auths(merged, owned, OURS, "Secret x/y") == (merged, owned, [])
    restored, owned, changed = ps.merge_auths(merged, owned, {}, "Secret x/y")
    assert restored == config and owned == [] and changed == list(OURS)


def test_a_foreign_entry_for_the_same_registry_is_refused_without_showing_it():
    config = {"auths": {"prod-registry.example.com": {"auth": "Zm9yZWlnbg=="}}}
    with pytest.raises(ps.PullSecretError) as error:
        ps.merge_auths(config, [], OURS, "Secret openshift-config/pull-secret")
    assert "did not write" in str(error.value) and "Zm9yZWlnbg" not in str(error.value)


def test_decode_and_encode():
    secret = {"data": {ps.KEY: ps.encode({"auths": THEIRS})}}
    assert ps.decode(secret, "s") == {"auths": THEIRS}
    with pytest.raises(ps.PullSecretError, match="no .dockerconfigjson"):
        ps.decode({"data": {}}, "Secret a/b")
    with pytest.raises(ps.PullSecretError, match="not a JSON object"):
        ps.decode({"data": {ps.KEY: "bm90IGpzb24="}}, "Secret a/b")
