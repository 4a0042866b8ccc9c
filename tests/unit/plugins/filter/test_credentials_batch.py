"""credentials_batch (plugins/filter/credentials.py): the elements of one registry_credential call
are exactly what the credentials role's loop passed the module per credential (the loop's
arguments are kept below and rendered by Ansible for each credential), each with its consumer's
auth, and none for a cluster gone from the inventory."""
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.segmented.registry.plugins.filter.credentials import (
    FilterModule,
    credentials_batch,
    credentials_wanted,
)
from tests.unit.plugins.filter.lab import lab_topology

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates any string
    def trust_as_template(value):
        return value

#: The arguments of roles/credentials/tasks/main.yml's loops over registry_credential, one module
#: run per credential, before the role made one call (registry_cluster left out: the call shares it).
LOOP_PRESENT = yaml.safe_load("""
cluster: "{{ hostvars[item.cluster].segmented_registry_k8s_auth | default({}, true) }}"
cluster_name: "{{ item.cluster }}"
access: "{{ item.access }}"
namespace: "{{ item.namespace }}"
grant_namespace: "{{ item.grant_namespace | default(omit) }}"
registry: "{{ item.registry }}"
secret_name: "{{ item.secret_name }}"
targets: "{{ item.targets }}"
token_type: "{{ credentials_token_type }}"
duration: "{{ credentials_duration | int }}"
renew_before: "{{ 0 if credentials_revoke_retired | bool else credentials_renew_before | int }}"
rotate: "{{ credentials_rotate | bool and not credentials_revoke_retired | bool }}"
grace: "{{ credentials_grace | int }}"
revoke_retired: "{{ credentials_revoke_retired | bool }}"
""")
LOOP_ABSENT = yaml.safe_load("""
cluster: "{{ (hostvars[item.cluster].segmented_registry_k8s_auth | default({}, true)) if item.cluster in groups['all'] else omit }}"
cluster_name: "{{ item.cluster }}"
access: "{{ item.access }}"
namespace: "{{ item.namespace }}"
grant_namespace: "{{ item.grant_namespace }}"
state: absent
""")

SETTINGS_ARGS = ("segmented-registry-consumers", "segmented-registry-pull", "segmented-registry-push",
                 "openshift-config/segmented-registry-pull", "localhost:5100", "bound")
HOSTVARS = {
    "registry": {"segmented_registry_k8s_auth": {"kubeconfig": "/lab/registry.kubeconfig"}},
    "test": {"segmented_registry_k8s_auth": {"host": "https://api.test.lab:6443", "api_key": "sha256~test"}},
    "uat": {"segmented_registry_k8s_auth": None},  # the K8S_AUTH_* environment variables
    "prod": {"segmented_registry_k8s_auth": {"kubeconfig": "/lab/prod.kubeconfig", "context": "prod"}},
}
GROUPS_ALL = list(HOSTVARS)
#: The role's defaults (roles/credentials/defaults/main.yml), as the playbooks may pass them: strings.
DEFAULTS = {"token_type": "bound", "duration": 604800, "renew_before": 172800, "rotate": False, "grace": 0, "revoke_retired": False}


def rendered(loop_args, item, settings=None):
    """What the loop passed the module for ``item``, rendered by Ansible's templating."""
    variables = {"hostvars": HOSTVARS, "groups": {"all": GROUPS_ALL}, "item": item}
    variables.update({f"credentials_{name}": value for name, value in (settings or {}).items()})
    args = {name: trust_as_template(value) if isinstance(value, str) else value for name, value in loop_args.items()}
    return Templar(loader=DataLoader(), variables=variables).template(args)


def wanted():
    return credentials_wanted(lab_topology(), [], *SETTINGS_ARGS)


@pytest.mark.parametrize("settings", [
    DEFAULTS,
    dict(DEFAULTS, rotate=True, grace=600, duration="3600", renew_before="600"),
    dict(DEFAULTS, rotate="true", revoke_retired="yes"),
    dict(DEFAULTS, revoke_retired=True, renew_before=172800),
    dict(DEFAULTS, rotate="false", revoke_retired="no"),
], ids=["defaults", "rotate-with-strings", "revoking-pass-strings", "revoking-pass", "false-strings"])
def test_each_present_element_is_what_the_loop_passed_for_that_credential(settings):
    items = wanted()
    elements = credentials_batch(items, HOSTVARS, GROUPS_ALL, "present", settings)
    assert elements == [rendered(LOOP_PRESENT, item, settings) for item in items]
    assert [element["cluster_name"] for element in elements] == ["test", "test", "uat", "prod"]


def test_a_present_element_carries_its_consumer_s_own_auth():
    elements = credentials_batch(wanted(), HOSTVARS, GROUPS_ALL, "present", DEFAULTS)
    assert [element["cluster"] for element in elements] == [
        HOSTVARS["test"]["segmented_registry_k8s_auth"], HOSTVARS["test"]["segmented_registry_k8s_auth"], {},
        HOSTVARS["prod"]["segmented_registry_k8s_auth"]]
    assert "grant_namespace" not in elements[1]  # the push credential has none (the loop omitted it)


def test_the_revoking_pass_neither_rotates_nor_renews():
    element = credentials_batch(wanted()[:1], HOSTVARS, GROUPS_ALL, "present", dict(DEFAULTS, rotate=True, revoke_retired=True))[0]
    assert (element["rotate"], element["renew_before"], element["revoke_retired"]) == (False, 0, True)


STALE = [
    {"cluster": "uat", "access": "pull", "namespace": "uat", "grant_namespace": "uat", "superseded": False},
    {"cluster": "old", "access": "pull", "namespace": "segmented-registry-consumers", "grant_namespace": "prod", "superseded": False},
    {"cluster": "test", "access": "push", "namespace": "oldproject", "grant_namespace": "oldproject", "superseded": False},
]


def test_each_absent_element_is_what_the_loop_passed_and_none_has_auth_for_a_cluster_gone_from_the_inventory():
    elements = credentials_batch(STALE, HOSTVARS, GROUPS_ALL, "absent")
    assert elements == [rendered(LOOP_ABSENT, item) for item in STALE]
    assert [("cluster" in element) for element in elements] == [True, False, True]
    assert elements[0]["cluster"] == {} and elements[2]["cluster"] == HOSTVARS["test"]["segmented_registry_k8s_auth"]


def test_present_without_the_role_s_settings_is_refused_naming_what_is_missing():
    with pytest.raises(AnsibleFilterError, match="needs the role's settings .*; duration, grace missing. Nothing was changed"):
        credentials_batch(wanted(), HOSTVARS, GROUPS_ALL, "present", {k: v for k, v in DEFAULTS.items() if k not in ("duration", "grace")})


def test_a_state_that_is_neither_is_refused():
    with pytest.raises(AnsibleFilterError, match="state 'gone' is not present or absent"):
        credentials_batch([], HOSTVARS, GROUPS_ALL, "gone")


def test_nothing_asked_for_is_no_element():
    assert credentials_batch([], HOSTVARS, GROUPS_ALL, "present", DEFAULTS) == []
    assert credentials_batch([], HOSTVARS, GROUPS_ALL, "absent") == []


def test_the_filter_is_registered():
    assert FilterModule().filters()["credentials_batch"] is credentials_batch
