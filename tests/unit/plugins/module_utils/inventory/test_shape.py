"""The shape of inventory values, checked by ansible-core's ArgumentSpecValidator: each of its
errors becomes one problem naming the field's full path and the fix; every problem at once."""

import copy

import pytest

from ansible_collections.segmented.registry.plugins.module_utils.inventory import schema
from ansible_collections.segmented.registry.plugins.module_utils.inventory.shape import check
from ansible_collections.segmented.registry.plugins.module_utils.inventory.environments import build_environments
from ansible_collections.segmented.registry.plugins.module_utils.inventory.validate import build_topology
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import TopologyError

ENTRY = {"name": "prod", "route_host": "prod-registry.apps.registry.example.com"}
CONTEXT = {"namespace": "prod"}


def problems(**changes):
    return check(schema.ENVIRONMENT, dict(ENTRY, **changes), CONTEXT)[1]


def test_a_valid_entry_comes_back_converted_with_its_defaults():
    values, found = check(schema.ENVIRONMENT, dict(ENTRY, validate_certs="no", replicas="2",
                                                   storage={"s3": {"bucket": "b", "credentials_secret": "s"}}), CONTEXT)
    assert found == []
    assert values["validate_certs"] is False and values["replicas"] == 2 and values["state"] == "present"
    assert values["tls"] is None and values["storage"]["size"] is None
    assert values["storage"]["s3"] == {"bucket": "b", "credentials_secret": "s", "region": "us-east-1",
                                       "endpoint": None, "force_path_style": False, "root_directory": None}


@pytest.mark.parametrize("changes, field, message", [
    # a wrong type
    ({"validate_certs": "maybe"}, "validate_certs", "\"maybe\" is not a boolean; write true (the default) or false"),
    ({"replicas": "two"}, "replicas",
     "\"two\" is not a number of registry pods; write a whole number from 1 to 10 (default 1)"),
    ({"route_host": ["a.example.com"]}, "route_host", "[\"a.example.com\"] is not a DNS-1123 subdomain; the host "
                                                      "name of this environment's registry Route, like "
                                                      "prod-registry.apps.registry.example.com"),
    ({"tls": "edge"}, "tls", "must be a mapping like {termination: reencrypt}, not a string \"edge\""),
    # a bad choice
    ({"state": "gone"}, "state", "\"gone\" is not a state; use present (the default"),
    # a missing required key
    ({"name": None}, "name", "is required: a lowercase DNS label like test, uat or prod"),
    # an unknown key
    ({"replica": 2}, "replica", "unknown key \"replica\"; did you mean 'replicas'?"),
    # nested: a mapping in a mapping
    ({"storage": {"s3": {"bucket": "b"}}}, "storage.s3.credentials_secret",
     "is required: name a Secret in namespace prod with the keys access_key and secret_key"),
    ({"storage": {"s3": {"bucket": "b", "credentials_secret": "s", "force_path_style": "sometimes"}}},
     "storage.s3.force_path_style", "\"sometimes\" is not a boolean; write false (the default) or true"),
    ({"storage": {"s3": {"bucket": "b", "credentials_secret": "s", "key": "AKIA"}}}, "storage.s3.key",
     "unknown key \"key\""),
    ({"tls": {"termination": "pass"}}, "tls.termination", "\"pass\" is not a Route termination; use edge"),
    ({"policy": {"scan_gate": {"value": "ok"}}}, "policy.scan_gate.annotation", "is required: name the image annotation"),
])
def test_each_validator_error_names_the_field_and_the_fix(changes, field, message):
    assert len(problems(**changes)) == 1, problems(**changes)
    found_field, found_message = problems(**changes)[0]
    assert found_field == field
    assert found_message.startswith(message), found_message


def test_elements_of_a_list_are_named_by_index():
    spec = {"items": {"type": "list", "elements": "dict", "options": {
        "namespace": {"type": "str", "required": True, "fix": "name the namespace, like myproject"}}}}
    values, found = check(spec, {"items": [{"namespace": "a"}, {"name": "b"}]}, path="segmented_registry_credentials")
    assert found == [("segmented_registry_credentials.items[1].name", "unknown key \"name\" (known keys: namespace)"),
                     ("segmented_registry_credentials.items[1].namespace", "is required: name the namespace, like "
                      "myproject")]
    assert values["items"][0] == {"namespace": "a"}


def test_a_secret_is_never_shown():
    spec = {"api_key": {"type": "str", "no_log": True}, "headers": {"type": "dict", "no_log": True}}
    found = check(spec, {"api_key": ["sha256~secret"], "headers": "sha256~secret"})[1]
    assert [field for field, _message in found] == ["api_key", "headers"]
    assert all("sha256~secret" not in message for _field, message in found)


def test_every_problem_at_once_and_the_value_unchanged():
    entry = dict(ENTRY, state="gone", replicas="two", storage={"size": 5, "class": "x"}, tls={"termination": 1})
    before = copy.deepcopy(entry)
    found = check(schema.ENVIRONMENT, entry, CONTEXT)[1]
    assert [field for field, _message in found] == ["state", "replicas", "tls.termination", "storage.class"]
    assert entry == before


def test_problems_reach_the_inventory_report_with_the_entry_and_the_path():
    with pytest.raises(TopologyError) as info:
        build_environments([dict(ENTRY, storage={"s3": {"bucket": "acme-prod-registry", "region": ["eu"]}})])
    assert [str(problem) for problem in info.value.problems] == [
        "segmented_registry_environments[0] (prod): storage.s3.region: [\"eu\"] is not a region name; write one "
        "like us-east-1 (the default) or eu-west-1",
        "segmented_registry_environments[0] (prod): storage.s3.credentials_secret: is required: name a Secret in "
        "namespace prod with the keys access_key and secret_key (the bucket's credentials), like prod-registry-s3",
    ]


def test_the_module_argument_spec_holds_no_message_keys():
    def keys(spec):
        for option in spec.values():
            yield from option
            yield from keys(option.get("options") or {})

    assert not set(keys(schema.argument_spec()["options"])) & set(schema.MESSAGE_KEYS)
    assert set(keys(schema.ENVIRONMENT)) & set(schema.MESSAGE_KEYS)


def host_problems(**hostvars):
    with pytest.raises(TopologyError) as info:
        build_topology([ENTRY], {"registry-cluster": {"segmented_registry_role": "registry"},
                                 "prod-cluster": dict({"segmented_registry_environment": "prod",
                                                       "segmented_registry_k8s_auth": {"context": "prod"}}, **hostvars)})
    return [str(problem) for problem in info.value.problems]


def test_a_host_variable_of_the_wrong_type_names_the_host_and_the_variable():
    assert host_problems(segmented_registry_role=["consumer"]) == [
        "prod-cluster: segmented_registry_role: [\"consumer\"] is not a role; use registry (the one cluster hosting "
        "the environment registries) or consumer, or leave it out (a host with an environment is a consumer)"]


def test_a_nested_host_variable_is_named_by_its_path_and_index():
    assert host_problems(segmented_registry_credentials={"builders": ["tools", {"service_account": "b"}, 5]}) == [
        "prod-cluster: segmented_registry_credentials.builders[1].namespace: is required: name the build namespace "
        "(the same on this cluster and in the integrated registry), like myproject",
        "prod-cluster: segmented_registry_credentials.builders[2]: must be a mapping with namespace, service_account, "
        "not a number 5",
    ]


def test_only_the_collections_variables_are_checked():
    """A host's other variables (Ansible's, the user's) are not the inventory's: never unknown keys."""
    values, found = check(schema.CLUSTER, {"segmented_registry_role": "consumer", "ansible_host": "x"})
    assert values["segmented_registry_role"] == "consumer"
    assert found == [("ansible_host", "unknown key \"ansible_host\" (known keys: segmented_registry_role, "
                      "segmented_registry_environment, segmented_registry_integrated_registry, "
                      "segmented_registry_k8s_auth, segmented_registry_credentials)")]
    topology = build_topology([ENTRY], {"registry-cluster": {"segmented_registry_role": "registry",
                                                             "ansible_host": "x", "segmented_registry_lab_ca": "y"}})
    assert topology.registry.name == "registry-cluster"
