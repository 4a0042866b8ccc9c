"""What a promotion job makes of environments with state: absent: no client, no warning, no scope,
no approval (pure: a fake module, no cluster, no registry)."""

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import EnvironmentsError
from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import TagEdit
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI
from ansible_collections.segmented.registry.plugins.module_utils.promotion import job
from ansible_collections.segmented.registry.plugins.modules.reconcile import build_scope
from tests.unit.plugins.module_utils.fake_cluster import fake_cluster

PROMOTER = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "promoter", "namespace": "segmented-registry"}}

ENVIRONMENTS = [
    {"name": "test", "route_host": "test-registry.apps.example.com"},
    {"name": "uat", "route_host": "uat-registry.apps.example.com", "state": "absent", "validate_certs": False},
    {"name": "prod", "route_host": "prod-registry.apps.example.com", "policy": {"after": "test"}},
]


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, **params):
        self.params = {name: spec.get("default") for name, spec in job.argument_spec().items()}
        self.params.update(environments=ENVIRONMENTS, service_account="segmented-registry/promoter")
        self.params.update(params)
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def test_job_keeps_every_environment_and_promotes_to_the_present_ones():
    run = job.Job(FakeModule())
    assert list(run.environments) == ["test", "uat", "prod"]
    assert list(run.targets) == ["test", "prod"]
    assert run.absent == ["uat"]
    # validate_certs: false on an environment the job never reaches warns of nothing
    assert run.module.warnings == []


def test_job_still_validates_an_absent_environment():
    environments = ENVIRONMENTS[:1] + [dict(ENVIRONMENTS[1], replicas=3)]
    with pytest.raises(Failed) as info:
        job.Job(FakeModule(environments=environments))
    assert info.value.args[0]["problems"][0]["field"] == "replicas"


def params(**values):
    return dict({"namespace": None, "stream": None, "tag": None, "environment": None}, **values)


def test_reconcile_scope_refuses_an_absent_environment():
    environments = job.Job(FakeModule()).environments
    assert build_scope(params(environment=["prod"]), environments).environments == ["prod"]
    with pytest.raises(ValueError) as info:
        build_scope(params(environment=["uat", "prod"]), environments)
    assert str(info.value) == ("environment: uat has state: absent in environments, so it is no promotion target and "
                               "never reconciled (promotion targets: test, prod)")
    with pytest.raises(ValueError, match=r"qa not in environments \(known: test, prod\)"):
        build_scope(params(environment=["qa"]), environments)


def test_promoting_to_an_absent_environment_fails_before_any_call():
    """As the promote module builds its edit: ``known`` the targets, ``absent`` the others."""
    run = job.Job(FakeModule())
    with pytest.raises(EnvironmentsError) as info:
        TagEdit("myproject", "app:v1", add=["uat"], known=list(run.targets), absent=run.absent,
                annotation_key=run.annotation_key)
    assert str(info.value).startswith('add: "uat" has state: absent')
    assert "use a present environment (prod, test)" in str(info.value)
    # demoting from it is allowed (a tag that still carries the retired environment)
    edit = TagEdit("myproject", "app:v1", remove=["uat"], known=list(run.targets), absent=run.absent,
                   annotation_key=run.annotation_key)
    assert edit.change(["test", "uat"]) == ["test"]


def test_approval_lists_naming_an_absent_environment_are_reported_with_a_warning():
    from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import Stats
    from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope

    run = job.Job(FakeModule())
    outcome = {"actions": [], "summary": {}, "audit": [], "unknown_environments": [], "absent_environments": ["uat"],
               "warnings": [], "seconds": {"read": 0.0, "total": 0.0}}
    result = run._result(outcome, Stats(), Scope(), False)
    assert result["absent_environments"] == ["uat"]
    assert run.module.warnings == [
        "approval lists name environments with state: absent: uat; they are no promotion target, so nothing is copied "
        "to or removed from their registries (demote the tags from them)"]


def test_a_minted_run_has_one_token_per_audience():
    """The integrated registry gets an API token, the environment registries one for the token
    server's audience only; each is minted once per run and masked."""
    module = FakeModule()
    module.no_log_values = set()
    run = job.Job(module)
    cluster = fake_cluster([PROMOTER])
    run.api = ImageStreamAPI(cluster)
    for _again in range(2):
        assert run._registry_token() == "token-1"
        assert run._registry_token(job.TOKEN_SERVER_AUDIENCE) == "token-2"
    bodies = [body for method, path, body, _params in cluster.dynamic.requests if path.endswith("/token")]
    assert [body["spec"].get("audiences") for body in bodies] == [None, ["segmented.registry/token-server"]]
    assert run.api_calls == 2
    assert module.no_log_values == {"token-1", "token-2"}


def test_a_given_registry_token_is_used_as_it_is():
    run = job.Job(FakeModule(service_account=None, registry_token="given"))
    cluster = fake_cluster([PROMOTER])
    run.api = ImageStreamAPI(cluster)
    assert run._registry_token() == run._registry_token(job.TOKEN_SERVER_AUDIENCE) == "given"
    assert cluster.dynamic.requests == [] and run.api_calls == 0
