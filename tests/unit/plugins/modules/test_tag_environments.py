"""The tag_environments module's arguments and result, with its I/O faked: the registry cluster's
``ImageStreamAPI`` and the edit's write (``TagEdit.apply``). The edit's checks and result fields
are real."""
import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import TagEdit
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (ImageStreamAPI)
from ansible_collections.segmented.registry.plugins.modules import tag_environments
from tests.unit.plugins.modules.harness import Fail, caller, documented, refused

NOWHERE = {"host": "https://127.0.0.1:9", "api_key": "sha256~unused-token"}
TAG = dict(NOWHERE, namespace="myproject", name="app:v1")
DIGEST = "sha256:" + "4a" * 32

#: What the write (``imagestreams.edit_tag_environments``) returns after adding uat.
WRITTEN = {"changed": True, "before": ["test"], "after": ["test", "uat"], "digest": DIGEST, "attempts": 1,
           "imagestream": {}, "unreadable": None}


@pytest.fixture
def calls(monkeypatch):
    """Every call into the faked layer: the connection (with the module's check mode) and the write."""
    seen = []

    def connect(cls, module):
        seen.append(("connect", module.check_mode, module.server_side_dry_run))
        return "the registry cluster"

    def apply(edit, api):
        seen.append(("apply", api, edit.namespace, edit.stream, edit.tag, edit.add, edit.remove, edit.exact,
                     edit.known, edit.absent, edit.annotation_key, edit.max_attempts))
        return dict(WRITTEN)

    monkeypatch.setattr(ImageStreamAPI, "connect", classmethod(connect))
    monkeypatch.setattr(TagEdit, "apply", apply)
    return seen


run = caller(tag_environments)


@pytest.mark.parametrize("args,words", [
    (dict(NOWHERE, name="app:v1", add=["test"]), ["missing required arguments", "namespace"]),
    (dict(TAG, stream="app", add=["test"]), ["mutually exclusive", "name", "stream"]),
    (dict(TAG, tag="v1", add=["test"]), ["mutually exclusive", "name", "tag"]),
    (dict(NOWHERE, namespace="p", stream="app", add=["test"]), ["required together", "stream", "tag"]),
    (dict(TAG, add=["test"], max_attempts="many"), ["max_attempts", "int"]),
    (dict(TAG, add=["test"], approved=["uat"]), ["approved", "add", "cannot be combined"]),
    (dict(TAG, add=["Not_A_Name"]), ["add", "Not_A_Name"]),
    (dict(TAG, add=["uat"], known_environments=["test", "prod"]), ["uat", "test"]),
    (dict(TAG, add=["uat"], absent_environments=["uat"]), ["add", "uat", "state: absent"]),
    (dict(TAG), ["nothing to do", "add", "remove", "approved"]),
    (dict(NOWHERE, namespace="p", add=["test"]), ["name", "stream and tag"]),
], ids=["namespace-required", "name-and-stream", "name-and-tag", "stream-without-tag", "max_attempts-type",
        "approved-and-add", "add-bad-name", "add-unknown", "add-absent", "no-edit", "no-tag"])
def test_bad_arguments_fail_naming_the_option_and_reach_nothing(run_module, calls, args, words):
    refused(run(run_module, Fail, **args), words, calls)


def test_the_defaults_reach_the_edit(run_module, calls):
    run(run_module, **TAG, add=["uat"])
    assert calls[1] == ("apply", "the registry cluster", "myproject", "app", "v1", ["uat"], None, None, None, None,
                        "segmented.registry/environments", 10)


def test_every_option_reaches_the_edit_in_its_place(run_module, calls):
    run(run_module, **NOWHERE, namespace="myproject", stream="app", tag="v1", remove=["prod"],
        known_environments=["test", "prod"], absent_environments=["old"], annotation_key="environment", max_attempts=3)
    assert calls[1] == ("apply", "the registry cluster", "myproject", "app", "v1", None, ["prod"], None,
                        ["prod", "test"], ["old"], "environment", 3)


def test_approved_reaches_the_edit_as_the_exact_list(run_module, calls):
    run(run_module, **TAG, approved=["uat", "test"])
    assert calls[1][5:8] == (None, None, ["uat", "test"])


@pytest.fixture
def deprecations(monkeypatch):
    """The deprecations the module records (AnsibleModule keeps them in a process-wide store, which
    exit_json turns into the result's ``deprecations``; the harness stops before that). Once a test
    has imported controller code, ansible-core would show them on the controller's display instead:
    the module runs here as on a target."""
    monkeypatch.setattr(ansible_warnings, "_global_deprecations", type(ansible_warnings._global_deprecations)())
    if hasattr(ansible_warnings, "_internal"):  # ansible-core 2.19+
        monkeypatch.setattr(ansible_warnings._internal, "is_controller", False)
    return ansible_warnings.get_deprecation_messages


def test_the_deprecated_alias_environments_still_sets_the_exact_list_and_warns(run_module, calls, deprecations):
    result = run(run_module, **TAG, environments=["uat", "test"])
    assert calls[1][5:8] == (None, None, ["uat", "test"])
    assert result["environments_after"] == ["test", "uat"]
    [deprecation] = [d for d in deprecations() if "environments" in d["msg"]]
    assert "Alias 'environments' is deprecated" in deprecation["msg"]
    assert deprecation["version"] == "2.0.0"
    assert deprecation["collection_name"] == "segmented.registry"


def test_approved_warns_of_no_deprecation(run_module, calls, deprecations):
    run(run_module, **TAG, approved=["uat"])
    assert deprecations() == ()


def test_the_result_has_exactly_the_documented_keys(run_module, calls):
    result = run(run_module, **TAG, add=["uat"])
    assert set(result) == set(documented(tag_environments)) - {"diff"}
    assert result["changed"] is True
    assert result["environments_after"] == ["test", "uat"] and result["annotation_value"] == "test,uat"


def test_check_mode_connects_for_a_server_side_dry_run(run_module, calls):
    run(run_module, **TAG, add=["uat"], _ansible_check_mode=True)
    assert calls[0] == ("connect", True, True)


def test_a_normal_run_is_no_dry_run(run_module, calls):
    run(run_module, **TAG, add=["uat"])
    assert calls[0] == ("connect", False, False)


def test_diff_mode_returns_the_list_before_and_after(run_module, calls):
    result = run(run_module, **TAG, add=["uat"], _ansible_diff=True)
    assert set(result) == set(documented(tag_environments))
    assert result["diff"]["before"] == {"environments": ["test"]}
    assert result["diff"]["after"] == {"environments": ["test", "uat"]}
