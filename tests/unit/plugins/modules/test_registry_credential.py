"""The registry_credential module's arguments and result, with its work layer faked: the probe of
each cluster, its API client, and the ``Credential`` that mints and distributes."""
import functools

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.credentials.spec import Spec, Target
from ansible_collections.segmented.registry.plugins.module_utils.credentials import runs
from ansible_collections.segmented.registry.plugins.modules import registry_credential
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused, without as omitted

if not registry_credential.HAS_KUBERNETES:
    pytest.skip("the kubernetes client is not installed", allow_module_level=True)

REGISTRY = {"host": "https://api.registry.example.com:6443", "api_key": "sha256~registry-token"}
CONSUMER = {"host": "https://api.prod.example.com:6443", "api_key": "sha256~consumer-token"}
PULL = {"registry_cluster": REGISTRY, "cluster": CONSUMER, "cluster_name": "prod", "access": "pull",
        "namespace": "prod", "registry": "prod-registry.apps.registry.example.com"}

#: What Credential.run returns for state=present (a first run) and for state=absent.
PRESENT = {"identity": "prod/segmented-pull-prod", "generation": "segmented-pull-prod-gen1", "new_generation": True,
           "reason": "no generation yet", "expires": 2_000_000, "secrets": ["shop/segmented-registry-pull"],
           "revoked": [], "retired": [], "changed": True, "changes": ["create generation Secret"]}
ABSENT = {"identity": "prod/segmented-pull-prod", "generation": None, "secrets": [], "revoked": ["prod/gen1"],
          "retired": [], "changed": True, "changes": ["delete generation Secret"]}
DIFF = {"before": {"generation": None}, "after": {"generation": "segmented-pull-prod-gen1"}}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: each probe, each client, the Credential and its run."""
    seen = []

    class FakeCredential:
        def __init__(self, spec, registry, consumer, check_mode=False, mask=None):
            seen.append(("credential", spec, registry, consumer, check_mode))
            self.spec, self.changes, self.warnings = spec, [], []

        def run(self):
            seen.append(("run",))
            return dict(PRESENT if self.spec.state == "present" else ABSENT)

        def diff(self):
            return DIFF

    def probe(auth):
        seen.append(("probe", auth["host"]))

    monkeypatch.setattr(runs, "probe", probe)
    monkeypatch.setattr(runs.Cluster, "of_auth", classmethod(lambda cls, auth, where: f"cluster {auth['host']} ({where})"))
    monkeypatch.setattr(runs, "Credential", FakeCredential)
    return seen


run = caller(registry_credential)
#: The documented keys of a single-mode result (RV(credentials) is batch mode's).
SINGLE = set(documented(registry_credential)) - {"credentials"}


without = functools.partial(omitted, PULL)


@pytest.mark.parametrize("args,words", [
    (without("cluster_name"), ["one of the following is required", "cluster_name", "credentials"]),
    (without("access"), ["one of the following is required", "access", "credentials"]),
    (without("namespace"), ["one of the following is required", "namespace", "credentials"]),
    (dict(PULL, access="admin"), ["access", "pull, push"]),
    (dict(PULL, state="gone"), ["state", "present, absent"]),
    (dict(PULL, token_type="forever"), ["token_type", "bound, long_lived"]),
    (dict(PULL, duration="a week"), ["duration", "int"]),
    (dict(PULL, rotate="maybe"), ["rotate", "bool"]),
    (dict(PULL, targets=[{"service_accounts": ["default"]}]), ["namespace", "targets"]),
    (without("cluster"), ["state is present", "cluster"]),
    (without("registry"), ["state is present", "registry"]),
    (dict(PULL, cluster_name="Prod_East"), ["cluster_name", "Prod_East", "Nothing was changed"]),
    (dict(PULL, token_type="long_lived"), ["token_type: long_lived", "Nothing was changed"]),
], ids=["cluster_name-required", "access-required", "namespace-required", "access-choice", "state-choice",
        "token_type-choice", "duration-type", "rotate-type", "targets-namespace-required", "present-needs-cluster",
        "present-needs-registry", "cluster_name-label", "long_lived-pull"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    refused(run(run_module, Fail, **args), words, calls)


def test_the_defaults_reach_the_credential(run_module, calls):
    run(run_module, **PULL)
    assert calls[:2] == [("probe", REGISTRY["host"]), ("probe", CONSUMER["host"])]
    assert calls[2] == ("credential", Spec(
        cluster="prod", access="pull", namespace="prod", registry="prod-registry.apps.registry.example.com",
        secret_name="segmented-registry-pull", targets=[], token_type="bound", duration=604800, renew_before=172800,
        rotate=False, grace=0, revoke_retired=False, state="present", grant_namespace=None),
        f"cluster {REGISTRY['host']} (the registry cluster)", f"cluster {CONSUMER['host']} (cluster prod)", False)


def test_every_option_reaches_the_credential_in_its_place(run_module, calls):
    args = dict(PULL)
    args.update(access="push", namespace="builds", grant_namespace="ci", secret_name="pusher",
                targets=[{"namespace": "shop", "service_accounts": ["builder"]},
                         {"namespace": "ops", "secret_name": "ops-push"}],
                token_type="long_lived", duration=3600, renew_before=600, rotate=True, grace=60, revoke_retired=True)
    run(run_module, **args)
    assert calls[2][1] == Spec(
        cluster="prod", access="push", namespace="builds", registry="prod-registry.apps.registry.example.com",
        secret_name="pusher", targets=[Target("shop", ["builder"]), Target("ops", [], "ops-push")],
        token_type="long_lived", duration=3600, renew_before=600, rotate=True, grace=60, revoke_retired=True,
        state="present", grant_namespace="ci")


def test_a_push_credential_gets_the_push_secret_name(run_module, calls):
    args = dict(PULL)
    args.update(access="push")
    run(run_module, **args)
    assert calls[2][1].secret_name == "segmented-registry-push"


def test_absent_without_the_consumer_cluster_revokes_on_the_registry_side_only(run_module, calls):
    result = run(run_module, **dict(without("cluster", "registry"), state="absent"))
    assert calls[0] == ("probe", REGISTRY["host"])
    assert calls[1][0] == "credential" and calls[1][3] is None
    assert set(result) == SINGLE - {"new_generation", "reason", "expires"} | {"changed"}


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, **PULL)
    assert set(result) == SINGLE | {"changed"}
    assert result["changed"] is True


def test_check_mode_reaches_the_credential(run_module, calls):
    run(run_module, **PULL, _ansible_check_mode=True)
    assert calls[2][4] is True


def test_diff_mode_returns_the_credential_s_diff(run_module, calls):
    result = run(run_module, **PULL, _ansible_diff=True)
    assert result["diff"] == DIFF
    assert "diff" not in run(run_module, **PULL)
