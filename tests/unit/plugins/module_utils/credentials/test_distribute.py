"""credentials.distribute.Credential against two in-memory API servers (fake_cluster.py): the
decisions (keep, renew, rotate, revoke, unlink) and the order of writes. The lab proves the same on
real API servers and registries (tests/integration/test_credentials.py)."""
import base64
import copy
import json

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.cluster import ROLE_BINDING, Cluster
from ansible_collections.segmented.registry.plugins.module_utils.credentials import distribute, labels
from ansible_collections.segmented.registry.plugins.module_utils.credentials.registry import SECRET_TYPE_TOKEN, NewGeneration
from ansible_collections.segmented.registry.plugins.module_utils.credentials.distribute import Credential
from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec, Target
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import CredentialsError
from tests.unit.plugins.module_utils.fake_cluster import ApiError, FakeApiServer

NOW = 1_000_000


class Server(FakeApiServer):
    """One API server as the tests read it: objects by (kind, namespace, name), ``get`` raising
    ``ApiError`` on 404, a write log, SelfSubjectAccessReview answers (``denied``: the rules
    refused), a token controller for long-lived token Secrets and TokenRequests bound to a Secret."""

    def __init__(self, name):
        super().__init__(allowed=lambda attributes: (attributes["verb"], attributes["resource"], attributes.get("namespace")) not in self.denied)
        self.name = name
        self.denied = set()

    def put(self, kind, namespace, body):
        body = copy.deepcopy(body)
        body.update(apiVersion=ROLE_BINDING.api_version if kind == "RoleBinding" else "v1", kind=kind)
        body.setdefault("metadata", {})["namespace"] = namespace
        return super().put(body)

    def get(self, kind, namespace, name):
        if (kind, namespace, name) not in self.objects:
            raise ApiError(404, f'"{name}" not found')
        return copy.deepcopy(self.objects[(kind, namespace, name)])

    def created(self, body):
        if body.get("type") == SECRET_TYPE_TOKEN:
            return dict(body, data={"token": base64.b64encode(b"long-lived-" + body["metadata"]["name"].encode()).decode()})
        return body

    def token(self, namespace, name, body):
        from datetime import datetime, timezone

        bound = body["spec"]["boundObjectRef"]
        assert self.get("Secret", namespace, bound["name"])["metadata"]["uid"] == bound["uid"]
        audience = ",".join(body["spec"].get("audiences") or ["api"])
        expires = datetime.fromtimestamp(NOW + body["spec"]["expirationSeconds"], timezone.utc).isoformat()
        return {"status": {"token": f"token-{namespace}-{name}-{bound['name']}-{audience}", "expirationTimestamp": expires}}


def make_credential(the_spec, registry, consumer, **kwargs):
    """The Credential of ``the_spec`` on the two fake servers (``consumer`` may be None)."""
    consumer_cluster = Cluster(consumer, f"cluster {the_spec.cluster}") if consumer is not None else None
    return Credential(the_spec, Cluster(registry, "the registry cluster"), consumer_cluster, **kwargs)


@pytest.fixture
def clusters():
    registry, consumer = Server("registry"), Server("test")
    registry.put("Namespace", None, {"metadata": {"name": "test"}})
    for ns in ("myproject", "openshift-config"):
        consumer.put("Namespace", None, {"metadata": {"name": ns}})
    consumer.put("ServiceAccount", "myproject", {"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "theirs"}]})
    consumer.put("ServiceAccount", "myproject", {"metadata": {"name": "deployer"}})
    return registry, consumer


def spec(**changes):
    values = dict(cluster="test", access="pull", namespace="test", registry="test-registry.example.com",
                  secret_name="segmented-registry-pull", duration=3600, renew_before=600,
                  targets=[Target("myproject", ["default"]), Target("openshift-config", [])])
    values.update(changes)
    return Spec(**values)


def run(clusters, now=NOW, check_mode=False, **changes):
    registry, consumer = clusters
    masked = set()
    credential = make_credential(spec(**changes), registry, consumer, check_mode=check_mode, mask=masked.add, now=now)
    result = credential.run()
    return result, masked, credential


def token_in(consumer, namespace):
    secret = consumer.get("Secret", namespace, "segmented-registry-pull")
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    return auths["test-registry.example.com"]["password"]


def test_first_run_mints_writes_then_links(clusters):
    registry, consumer = clusters
    result, masked, credential = run(clusters)
    assert result["changed"] and result["new_generation"]
    assert result["generation"] == "segmented-pull-test-gen1"
    assert registry.get("RoleBinding", "test", "segmented-pull-test")["roleRef"]["name"] == \
        "segmented-registry:environment-puller"
    token = token_in(consumer, "myproject")
    assert token.endswith("-segmented.registry/token-server")  # the token server's audience, not the API's
    assert token == token_in(consumer, "openshift-config") and token in masked
    writes = consumer.writes
    assert writes.index(("create", "Secret", "myproject", "segmented-registry-pull")) < writes.index(
        ("patch", "ServiceAccount", "myproject", "default"))
    assert consumer.get("ServiceAccount", "myproject", "default")["imagePullSecrets"] == [
        {"name": "theirs"}, {"name": "segmented-registry-pull"}]
    assert token not in json.dumps(result) and token not in json.dumps(credential.diff())


def test_second_run_writes_nothing(clusters):
    registry, consumer = clusters
    run(clusters)
    registry.writes.clear()
    consumer.writes.clear()
    result, _masked, _credential = run(clusters, now=NOW + 60)
    assert not result["changed"] and result["changes"] == []
    assert registry.writes == [] and consumer.writes == []


def test_near_expiry_renews_and_keeps_the_old_until_its_expiry(clusters):
    registry, consumer = clusters
    run(clusters)
    old = token_in(consumer, "myproject")
    result, _masked, _credential = run(clusters, now=NOW + 3100)  # 500 s left, renew_before 600
    assert result["reason"] == distribute.RENEW_REASON and result["generation"] == "segmented-pull-test-gen2"
    assert token_in(consumer, "myproject") != old
    annotations = registry.get("Secret", "test", "segmented-pull-test-gen1")["metadata"]["annotations"]
    assert annotations[labels.ANNOTATION_REVOKE_AFTER] == str(NOW + 3600)
    run(clusters, now=NOW + 3601)  # a later run revokes it
    with pytest.raises(ApiError):
        registry.get("Secret", "test", "segmented-pull-test-gen1")


def test_rotation_with_grace_then_revocation(clusters):
    registry, consumer = clusters
    run(clusters)
    result, _masked, _credential = run(clusters, now=NOW + 10, rotate=True, grace=30)
    assert result["retired"] == ["test/segmented-pull-test-gen1"] and result["revoked"] == []
    result, _masked, _credential = run(clusters, now=NOW + 20)
    assert result["revoked"] == [] and not result["changed"]
    result, _masked, _credential = run(clusters, now=NOW + 41)
    assert result["revoked"] == ["test/segmented-pull-test-gen1"]
    assert registry.get("Secret", "test", "segmented-pull-test-gen2")


def test_revoke_retired_revokes_what_an_earlier_run_retired_now(clusters):
    registry, consumer = clusters
    run(clusters)
    result, _masked, _credential = run(clusters, now=NOW + 10, rotate=True, grace=600, revoke_retired=True)
    assert result["retired"] == ["test/segmented-pull-test-gen1"] and result["revoked"] == []  # not this run's
    current = token_in(consumer, "myproject")
    result, _masked, _credential = run(clusters, now=NOW + 20, revoke_retired=True)  # grace not over
    assert result["revoked"] == ["test/segmented-pull-test-gen1"] and result["changed"]
    assert not result["new_generation"] and token_in(consumer, "myproject") == current
    assert [key[2] for key in registry.objects if key[0] == "Secret"] == ["segmented-pull-test-gen2"]
    assert not run(clusters, now=NOW + 30, revoke_retired=True)[0]["changed"]


def test_a_shortened_duration_replaces_a_generation_that_outlives_it(clusters):
    registry, _consumer = clusters
    run(clusters)  # duration 3600
    assert not run(clusters, now=NOW + 10, duration=3600 - labels.EXPIRY_TOLERANCE)[0]["changed"]  # within tolerance
    result, _masked, _credential = run(clusters, now=NOW + 10, duration=1200, renew_before=100)
    assert result["reason"] == distribute.DURATION_REASON and result["generation"] == "segmented-pull-test-gen2"
    annotations = registry.get("Secret", "test", "segmented-pull-test-gen1")["metadata"]["annotations"]
    assert annotations[labels.ANNOTATION_REVOKE_AFTER] == str(NOW + 10 + 1200)  # no longer than the new duration
    assert not run(clusters, now=NOW + 20, duration=1200, renew_before=100)[0]["changed"]


def test_an_identity_granted_in_another_namespace(clusters):
    registry, consumer = clusters
    registry.put("Namespace", None, {"metadata": {"name": "consumers"}})
    result, _masked, _credential = run(clusters, namespace="consumers", grant_namespace="test")
    assert result["identity"] == "consumers/segmented-pull-test" and registry.get("Secret", "consumers", "segmented-pull-test-gen1")
    binding = registry.get("RoleBinding", "test", "segmented-pull-test.consumers")
    assert binding["roleRef"]["name"] == "segmented-registry:environment-puller"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "segmented-pull-test", "namespace": "consumers"}]
    assert ("RoleBinding", "consumers", "segmented-pull-test.consumers") not in registry.objects
    assert not run(clusters, now=NOW + 5, namespace="consumers", grant_namespace="test")[0]["changed"]
    registry.put("Namespace", None, {"metadata": {"name": "uat"}})
    result, _masked, _credential = run(clusters, now=NOW + 6, namespace="consumers", grant_namespace="uat",
                                       registry="uat-registry.example.com")  # the cluster moved to uat
    assert registry.get("RoleBinding", "uat", "segmented-pull-test.consumers")
    assert ("RoleBinding", "test", "segmented-pull-test.consumers") not in registry.objects
    annotations = registry.get("ServiceAccount", "consumers", "segmented-pull-test")["metadata"]["annotations"]
    assert annotations[labels.ANNOTATION_GRANT_NAMESPACE] == "uat"  # the annotation follows the grant
    assert not run(clusters, now=NOW + 6, namespace="consumers", grant_namespace="uat",
                   registry="uat-registry.example.com")[0]["changed"]
    registry_, consumer_ = clusters
    make_credential(spec(state="absent", namespace="consumers", grant_namespace="uat"), registry_, consumer_, now=NOW + 7).run()
    assert not [key for key in registry.objects if key[0] in ("RoleBinding", "ServiceAccount", "Secret")]


def test_absent_removes_a_grant_outside_the_namespace_it_was_told(clusters):
    """A removal told the wrong grant namespace (the cluster moved, the inventory says the new one,
    the grant is still in the first) removes every grant of the identity, wherever it is."""
    registry, consumer = clusters
    registry.put("Namespace", None, {"metadata": {"name": "consumers"}})
    registry.put("Namespace", None, {"metadata": {"name": "uat"}})
    run(clusters, namespace="consumers", grant_namespace="test")
    credential = make_credential(spec(state="absent", namespace="consumers", grant_namespace="uat"), registry, consumer,
                                 now=NOW + 1)
    credential.run()
    assert not [key for key in registry.objects if key[0] in ("RoleBinding", "ServiceAccount", "Secret")]
    assert any("a grant of consumers/segmented-pull-test outside uat" in change for change in credential.changes)


def test_a_new_namespace_gets_the_same_token(clusters):
    registry, consumer = clusters
    run(clusters)
    token = token_in(consumer, "myproject")
    consumer.put("Namespace", None, {"metadata": {"name": "other"}})
    targets = [Target("myproject", ["default"]), Target("openshift-config", []), Target("other", [])]
    result, _masked, _credential = run(clusters, now=NOW + 5, targets=targets)
    assert not result["new_generation"] and token_in(consumer, "other") == token


def test_dropped_namespace_and_account_are_unlinked_and_removed(clusters):
    registry, consumer = clusters
    run(clusters, targets=[Target("myproject", ["default", "deployer"]), Target("openshift-config", [])])
    run(clusters, now=NOW + 5, targets=[Target("myproject", ["default"])])
    assert "imagePullSecrets" not in consumer.get("ServiceAccount", "myproject", "deployer") or \
        consumer.get("ServiceAccount", "myproject", "deployer")["imagePullSecrets"] == []
    with pytest.raises(ApiError):
        consumer.get("Secret", "openshift-config", "segmented-registry-pull")
    run(clusters, now=NOW + 6, targets=[Target("openshift-config", [])])
    assert consumer.get("ServiceAccount", "myproject", "default")["imagePullSecrets"] == [{"name": "theirs"}]


def test_missing_service_account_writes_nothing(clusters):
    registry, consumer = clusters
    with pytest.raises(CredentialsError, match="service account myproject/nosuch does not exist"):
        run(clusters, targets=[Target("myproject", ["default", "nosuch"])])
    assert registry.writes == [] and consumer.writes == []


def test_missing_rights_are_all_named_and_nothing_is_written(clusters):
    registry, consumer = clusters
    consumer.denied |= {("create", "secrets", "myproject"), ("patch", "serviceaccounts", "myproject")}
    with pytest.raises(CredentialsError) as error:
        run(clusters)
    assert "create secrets in namespace myproject" in str(error.value)
    assert "patch serviceaccounts in namespace myproject" in str(error.value)
    assert registry.writes == [] and consumer.writes == []


def test_foreign_secret_is_never_overwritten(clusters):
    registry, consumer = clusters
    consumer.put("Secret", "myproject", {"metadata": {"name": "segmented-registry-pull"}, "type": "Opaque"})
    with pytest.raises(CredentialsError, match="is not this credential's"):
        run(clusters)
    assert registry.writes == [] and consumer.writes == []


def test_check_mode_plans_without_writing(clusters):
    registry, consumer = clusters
    result, masked, _credential = run(clusters, check_mode=True)
    assert result["changed"] and any("create generation Secret" in change for change in result["changes"])
    assert registry.writes == [] and consumer.writes == [] and masked == set()


def test_check_mode_previews_what_an_earlier_step_would_make(clusters):
    """A site's check run: the environment namespace (the registry-cluster role) and a target
    namespace and service account (credentials_create_missing) are not there yet. The preview goes
    on with a warning for each; a real run fails on the first and writes nothing."""
    registry, consumer = clusters
    targets = [Target("newteam", ["builder"]), Target("myproject", ["default", "nosuch"])]
    result, _masked, credential = run(clusters, check_mode=True, namespace="newenv", targets=targets)
    assert result["changed"] and any("create generation Secret" in change for change in result["changes"])
    assert [warning.split(";")[0] for warning in credential.warnings] == [
        "namespace newenv (the environment) does not exist on the registry cluster",
        "cluster test: namespace newteam does not exist",
        "cluster test: service account newteam/builder does not exist",
        "cluster test: service account myproject/nosuch does not exist"]
    assert all("Check mode previews" in warning for warning in credential.warnings)
    assert registry.writes == [] and consumer.writes == []
    with pytest.raises(CredentialsError, match="namespace newenv .* does not exist .* Nothing was changed"):
        run(clusters, namespace="newenv", targets=targets)
    assert registry.writes == [] and consumer.writes == []


def test_absent_revokes_and_removes_only_its_identity(clusters):
    registry, consumer = clusters
    run(clusters)
    registry.writes.clear()
    registry_, consumer_ = clusters
    credential = make_credential(spec(state="absent"), registry_, consumer_, now=NOW + 5)
    result = credential.run()
    assert result["revoked"] == ["test/segmented-pull-test-gen1"]
    for kind, name in (("ServiceAccount", "segmented-pull-test"), ("RoleBinding", "segmented-pull-test")):
        with pytest.raises(ApiError):
            registry.get(kind, "test", name)
    assert consumer.get("ServiceAccount", "myproject", "default")["imagePullSecrets"] == [{"name": "theirs"}]
    with pytest.raises(ApiError):
        consumer.get("Secret", "myproject", "segmented-registry-pull")


def push_spec(**changes):
    return dict(dict(access="push", namespace="builds", registry="default-registry.example.com",
                     secret_name="segmented-registry-push", targets=[Target("myproject", [])]), **changes)


def push_token(consumer):
    secret = consumer.get("Secret", "myproject", "segmented-registry-push")
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]["default-registry.example.com"]["password"]


def test_long_lived_token_is_read_from_its_secret(clusters):
    registry, consumer = clusters
    registry.put("Namespace", None, {"metadata": {"name": "builds"}})
    result, _masked, _credential = run(clusters, **push_spec(token_type="long_lived"))
    assert result["expires"] is None
    assert push_token(consumer) == "long-lived-segmented-push-test-gen1"
    assert not run(clusters, now=NOW + 10 ** 7, **push_spec(token_type="long_lived"))[0]["changed"]


def test_push_credential_keeps_the_api_audience_and_image_pusher(clusters):
    """The integrated registry keeps OpenShift's model: an API token, system:image-pusher."""
    registry, consumer = clusters
    registry.put("Namespace", None, {"metadata": {"name": "builds"}})
    run(clusters, **push_spec())
    assert push_token(consumer).endswith("-api")
    assert registry.get("RoleBinding", "builds", "segmented-push-test")["roleRef"]["name"] == "system:image-pusher"
    assert labels.ANNOTATION_AUDIENCE in registry.get("Secret", "builds", "segmented-push-test-gen1")["metadata"]["annotations"]
    assert not run(clusters, now=NOW + 5, **push_spec())[0]["changed"]


def test_a_pull_credential_of_the_old_model_is_replaced_and_revoked(clusters):
    """A pull credential an earlier version made (an API token, system:image-puller): the next run
    binds environment-puller, mints for the token server, and revokes the API token at once."""
    registry, consumer = clusters
    run(clusters)
    registry.objects[("RoleBinding", "test", "segmented-pull-test")]["roleRef"]["name"] = "system:image-puller"
    del registry.objects[("Secret", "test", "segmented-pull-test-gen1")]["metadata"]["annotations"][labels.ANNOTATION_AUDIENCE]
    result, _masked, _credential = run(clusters, now=NOW + 5)
    assert result["reason"] == distribute.AUDIENCE_REASON and result["revoked"] == ["test/segmented-pull-test-gen1"]
    assert registry.get("RoleBinding", "test", "segmented-pull-test")["roleRef"]["name"] == \
        "segmented-registry:environment-puller"
    assert not run(clusters, now=NOW + 6)[0]["changed"]


def test_token_is_read_back_only_from_a_target_secret(clusters):
    """A look-alike in another namespace with this credential's labels and annotations (and a token
    of its own) is never the token that goes into a new target namespace."""
    registry, consumer = clusters
    run(clusters)
    real = consumer.get("Secret", "myproject", "segmented-registry-pull")
    fake = copy.deepcopy(real)
    fake["metadata"] = dict(fake["metadata"], name="look-alike", namespace="aaa")
    fake["data"] = {".dockerconfigjson": base64.b64encode(json.dumps({"auths": {"test-registry.example.com": {
        "username": "serviceaccount", "password": "planted"}}}).encode()).decode()}
    consumer.put("Namespace", None, {"metadata": {"name": "aaa"}})
    consumer.put("Namespace", None, {"metadata": {"name": "other"}})
    consumer.put("Secret", "aaa", fake)
    result, _masked, _credential = run(clusters, now=NOW + 5, targets=[Target("other", [])])
    assert token_in(consumer, "other") != "planted"
    assert result["new_generation"]  # no copy left where this credential writes it: a new token


def test_a_renamed_host_adopts_its_secrets_and_leaves_one_credential(clusters):
    """The inventory host test becomes test-cluster: its Secrets (same environment namespace and
    registry) are adopted, relabelled and hold the new identity's token, not refused."""
    registry, consumer = clusters
    run(clusters)
    result, _masked, _credential = run(clusters, now=NOW + 5, cluster="test-cluster")
    assert result["identity"] == "test/segmented-pull-test-cluster" and result["new_generation"]
    for namespace in ("myproject", "openshift-config"):
        secret = consumer.get("Secret", namespace, "segmented-registry-pull")
        assert secret["metadata"]["labels"][labels.LABEL_CLUSTER] == "test-cluster"
        assert token_in(consumer, namespace).startswith("token-test-segmented-pull-test-cluster-")
    assert consumer.get("ServiceAccount", "myproject", "default")["imagePullSecrets"] == [
        {"name": "theirs"}, {"name": "segmented-registry-pull"}]
    assert len([key for key in consumer.objects if key[0] == "Secret"]) == 2
    assert not run(clusters, now=NOW + 6, cluster="test-cluster")[0]["changed"]


def test_a_secret_of_another_registry_is_not_adopted(clusters):
    """Another host's credential of another registry at the same name is someone else's."""
    registry, consumer = clusters
    run(clusters)
    with pytest.raises(CredentialsError, match="is not this credential's"):
        run(clusters, now=NOW + 5, cluster="test-cluster", registry="other-registry.example.com")


def test_generations_name_the_live_one_and_count_the_marked_ones(clusters):
    """``Generations``: ``current`` is the newest generation not marked for revocation, ``others``
    the rest, and ``highest`` counts the marked ones too (the next generation never reuses a name)."""
    registry, consumer = clusters
    run(clusters, now=NOW)
    run(clusters, now=NOW + 10, rotate=True, grace=600)  # gen2 current, gen1 marked
    found = make_credential(spec(), registry, consumer, now=NOW + 20).generations()
    assert _name_of(found.current) == "segmented-pull-test-gen2"
    assert [_name_of(item) for item in found.others] == ["segmented-pull-test-gen1"]
    assert found.highest == 2
    registry.objects[("Secret", "test", "segmented-pull-test-gen2")]["metadata"]["annotations"][
        labels.ANNOTATION_REVOKE_AFTER] = str(NOW + 600)
    found = make_credential(spec(), registry, consumer, now=NOW + 20).generations()
    assert found.current is None and found.highest == 2
    result, _masked, _credential = run(clusters, now=NOW + 30)
    assert result["generation"] == "segmented-pull-test-gen3"


def test_preflight_finds_each_target_and_the_stale_secrets(clusters):
    """``Preflight``: each target namespace with its Secret and the service accounts that exist, and
    the credential's Secrets in namespaces no longer targeted; nothing written."""
    registry, consumer = clusters
    run(clusters)
    writes = list(consumer.writes)
    credential = make_credential(spec(targets=[Target("myproject", ["default", "absent-account"])]), registry, consumer,
                                 check_mode=True, now=NOW + 5)
    found = credential.preflight()
    assert list(found.targets) == ["myproject"]
    state = found.targets["myproject"]
    assert state.target.namespace == "myproject" and _name_of(state.secret) == "segmented-registry-pull"
    assert list(state.accounts) == ["default"]
    assert [(s["metadata"]["namespace"], _name_of(s)) for s in found.stale] == [("openshift-config", "segmented-registry-pull")]
    assert _name_of(found.account) == "segmented-pull-test" and _name_of(found.binding) == "segmented-pull-test"
    assert _name_of(found.generations.current) == "segmented-pull-test-gen1"
    assert consumer.writes == writes and credential.changes == []


def test_a_new_generation_never_shows_its_token():
    made = NewGeneration({"metadata": {"name": "gen1"}}, "secret-token-value", NOW)
    assert made.token == "secret-token-value"
    assert "secret-token-value" not in repr(made) and "gen1" in repr(made)


def _name_of(obj):
    return obj["metadata"]["name"] if obj else None


def test_present_without_a_consumer_cluster_names_the_option_and_writes_nothing(clusters):
    registry, _consumer = clusters
    with pytest.raises(CredentialsError, match=r"state=present needs the consumer cluster \(option cluster\)"):
        make_credential(spec(), registry, None, now=NOW).run()
    assert registry.writes == []
