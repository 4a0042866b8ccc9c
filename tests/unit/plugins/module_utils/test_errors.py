"""The one error base of the collection, its layer classes, and the one place modules turn them into
``fail_json`` (``failing``) or action plugins into a failed result (``error_result``)."""

import pytest

from ansible_collections.segmented.registry.plugins.module_utils import errors, kube
from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import EnvironmentsError
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (Conflict as StreamConflict)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import ImageStreamError
from ansible_collections.segmented.registry.plugins.module_utils.consumer.image_config import ImageConfigError
from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ObjectsError
from ansible_collections.segmented.registry.plugins.module_utils.consumer.owned import RecordError
from ansible_collections.segmented.registry.plugins.module_utils.consumer.pull_secret import PullSecretError
from ansible_collections.segmented.registry.plugins.module_utils.credentials.dockerconfig import DockerConfigError
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.errors import (
    ApprovalError,
    ClusterError,
    ConsumerError,
    InventoryError,
    OciError,
    PromotionError,
    SegmentedRegistryError,
    error_result,
    failing,
)
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import Problem, TopologyError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.reachability import ClusterUnreachable
from ansible_collections.segmented.registry.plugins.module_utils.inventory.role_variables import RoleVariablesError
from ansible_collections.segmented.registry.plugins.module_utils.oci.errors import RegistryError, SourceMoved
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import ManifestError
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import ScopeError
from ansible_collections.segmented.registry.plugins.module_utils.query import QueryError

#: every error class of the collection -> its layer class (QueryError: the base itself, the
#: query option is shared by approval and promotion modules)
LAYER_OF = {
    TopologyError: InventoryError,
    RoleVariablesError: InventoryError,
    ClusterUnreachable: ClusterError,
    kube.ClusterError: ClusterError,
    errors.Conflict: ClusterError,
    errors.Gone: ClusterError,
    EnvironmentsError: ApprovalError,
    ImageStreamError: ApprovalError,
    RegistryError: OciError,
    SourceMoved: OciError,
    ManifestError: OciError,
    ScopeError: PromotionError,
    CredentialsError: errors.CredentialsError,
    DockerConfigError: errors.CredentialsError,
    ImageConfigError: ConsumerError,
    ObjectsError: ConsumerError,
    PullSecretError: ConsumerError,
    RecordError: ConsumerError,
    QueryError: SegmentedRegistryError,
}

#: the classes callers catch as ValueError stay ValueErrors
STILL_VALUE_ERRORS = (TopologyError, RoleVariablesError, EnvironmentsError, ManifestError, ScopeError, DockerConfigError,
                      ImageConfigError, PullSecretError, RecordError, QueryError)


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.failures = []

    def fail_json(self, **kwargs):
        self.failures.append(kwargs)
        raise Failed(kwargs)


@pytest.mark.parametrize("error_class", sorted(LAYER_OF, key=lambda cls: cls.__name__), ids=lambda cls: cls.__name__)
def test_every_error_is_of_its_layer_and_of_the_base(error_class):
    assert issubclass(error_class, LAYER_OF[error_class])
    assert issubclass(error_class, SegmentedRegistryError)


def test_the_layers_are_distinct_subclasses_of_the_base():
    assert len(set(errors.LAYERS)) == 7
    for layer in errors.LAYERS:
        assert issubclass(layer, SegmentedRegistryError)
        assert [other for other in errors.LAYERS if issubclass(layer, other)] == [layer]


def test_the_old_names_are_the_new_classes():
    assert kube.ClusterError is ClusterError
    assert StreamConflict is errors.Conflict  # one Conflict, raised by cluster.Cluster
    assert CredentialsError is errors.CredentialsError


@pytest.mark.parametrize("error_class", STILL_VALUE_ERRORS, ids=lambda cls: cls.__name__)
def test_value_errors_stay_value_errors(error_class):
    assert issubclass(error_class, ValueError)


def test_the_message_is_the_text_and_the_detail_is_optional():
    error = InventoryError("environments[1].name: 'Prod' is not a DNS-1123 label; use prod", field="environments[1].name",
                           fix="use prod")
    assert str(error) == "environments[1].name: 'Prod' is not a DNS-1123 label; use prod"
    assert (error.field, error.fix, error.result) == ("environments[1].name", "use prod", {})
    assert (OciError("x").field, OciError("x").fix) == (None, None)


def test_a_registry_error_keeps_its_own_fields_and_message():
    error = RegistryError("registry.example.com/app: 401 UNAUTHORIZED", registry="registry.example.com", status=401)
    assert str(error) == "registry.example.com/app: 401 UNAUTHORIZED"
    assert (error.registry, error.status, error.result) == ("registry.example.com", 401, {})


def test_failing_calls_fail_json_once_with_the_message_and_the_extra_keys():
    module = FakeModule()
    with pytest.raises(Failed):
        with failing(module, changed=False, clusters={}):
            raise ImageStreamError("namespace \"A\" is not a namespace name")
    assert module.failures == [{"msg": "namespace \"A\" is not a namespace name", "changed": False, "clusters": {}}]


def test_failing_brings_the_partial_result_and_the_errors_own_keys_along():
    module = FakeModule()
    changes = []
    problem = Problem("registry-cluster", "k8s_auth", "not a mapping")
    with pytest.raises(Failed):
        with failing(module, partial=lambda: {"changed": bool(changes), "changes": changes}, clusters={}):
            changes.append("ns/secret: created")
            raise TopologyError([problem])
    assert module.failures == [{
        "msg": "The inventory has 1 problem:\n- " + str(problem),
        "changed": True, "changes": ["ns/secret: created"], "clusters": {},
        "problems": [problem.to_dict()],
    }]


def test_the_message_is_never_overridden_by_an_extra_key():
    module = FakeModule()
    with pytest.raises(Failed):
        with failing(module, msg="stale"):
            raise PromotionError("stream needs namespace")
    assert module.failures[0]["msg"] == "stream needs namespace"


def test_failing_lets_other_exceptions_through_untouched():
    module = FakeModule()
    with pytest.raises(KeyError):
        with failing(module, partial=lambda: pytest.fail("not called for a bug")):
            raise KeyError("a bug keeps its traceback")
    with pytest.raises(ValueError):
        with failing(module):
            raise ValueError("not one of ours")
    assert module.failures == []


def test_failing_does_nothing_without_an_error():
    module = FakeModule()
    with failing(module, partial=lambda: pytest.fail("not called")):
        value = 1
    assert value == 1 and module.failures == []


def test_error_result_is_a_failed_result_for_an_action_plugin():
    problem = Problem("prod-cluster", "segmented_registry_environment", "unknown environment")
    assert error_result(TopologyError([problem]), clusters={}) == {
        "failed": True, "msg": TopologyError([problem]).text, "problems": [problem.to_dict()], "clusters": {}}
    assert error_result(RoleVariablesError("role_variables[0]: unknown key 'x'")) == {
        "failed": True, "msg": "role_variables[0]: unknown key 'x'"}
