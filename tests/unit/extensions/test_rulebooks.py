"""The rulebooks of extensions/eda/rulebooks, read as ansible-rulebook and AWX read them (no
ansible-rulebook process: tests/integration/test_event_source.py runs one): valid against
ansible-rulebook's own schema, the same rules in both, each action's target real (the playbook in
the collection; the job template of awx/job_templates.yml, answered by its survey), the source's
arguments its documented options; every action reconciles the namespaces of what the rule matched
(one event, or one per namespace when throttle windows close together), rendered as
ansible-rulebook renders it."""
import os
import runpy

import pytest
import yaml
from ansible_rulebook.util import substitute_variables
from ansible_rulebook.validators import Validate

from tests import awx_as_code as awx

REPO = awx.REPO
RULEBOOKS = os.path.join(REPO, "extensions", "eda", "rulebooks")
SOURCE = os.path.join(REPO, "extensions", "eda", "plugins", "event_source", "approvals.py")
STANDALONE = "promote_on_approval.yml"
CONTROLLER = "promote_on_approval_controller.yml"


def rulebook(name):
    return awx.load_yaml(os.path.join(RULEBOOKS, name))


def actions(book):
    return [(rule["name"], action) for ruleset in book for rule in ruleset["rules"] for action in rule.get("actions") or [rule["action"]]]


def test_the_folder_holds_the_two_rulebooks():
    assert sorted(os.listdir(RULEBOOKS)) == [STANDALONE, CONTROLLER]


@pytest.mark.parametrize("name", [STANDALONE, CONTROLLER])
def test_each_rulebook_is_valid_for_ansible_rulebook(name):
    Validate.rulebook(rulebook(name))  # raises jsonschema's ValidationError


def test_both_rulebooks_have_the_same_source_conditions_and_throttles():
    def shape(book):
        return [(ruleset["sources"], [(rule["name"], rule["condition"], rule.get("throttle")) for rule in ruleset["rules"]]) for ruleset in book]

    assert shape(rulebook(STANDALONE)) == shape(rulebook(CONTROLLER))
    [ruleset] = rulebook(STANDALONE)
    coalesced = [rule for rule in ruleset["rules"] if rule.get("throttle")]
    # the changes, and the approval lists that cannot be read (their run records the failure)
    assert [rule["throttle"] for rule in coalesced] == 2 * [
        {"once_after": "2 seconds", "group_by_attributes": ["event.namespace"]}]


def extra_vars(action):
    """The extra variables an action gives its run (a playbook's or a job template's)."""
    if "run_playbook" in action:
        return action["run_playbook"]["extra_vars"]
    return action["run_job_template"]["job_args"]["extra_vars"]


@pytest.mark.parametrize("name", [STANDALONE, CONTROLLER])
def test_every_run_reconciles_the_namespaces_of_what_the_rule_matched(name):
    runs = [extra_vars(action) for _rule, action in actions(rulebook(name)) if "debug" not in action]
    assert len(runs) == 3
    first = {"type": "changed", "namespace": "shop", "stream": "app", "tag": "v1", "meta": {"rule_engine": {"events_in_window": 7}}}
    for given in runs:
        # the whole namespace, never the tag of the window's first event
        assert set(given) == {"project"}
        assert substitute_variables(given, {"event": first}) == {"project": "shop"}
        # throttle windows of several namespaces that close together: one match, an event per namespace
        together = {"m_0": first, "m_1": dict(first, namespace="web"), "m_2": dict(first, namespace="shop", tag="v2")}
        assert substitute_variables(given, {"events": together}) == {"project": "shop,web"}


@pytest.mark.parametrize("name", [STANDALONE, CONTROLLER])
def test_an_error_event_is_logged_and_its_namespace_reconciled_which_records_the_failed_promotion(name):
    [ruleset] = rulebook(name)
    [rule] = [rule for rule in ruleset["rules"] if rule["condition"] == 'event.type == "error"']
    [change] = [rule for rule in ruleset["rules"] if "changed" in rule["condition"]]
    debug, run = rule["actions"]
    bad = {"type": "error", "namespace": "shop", "stream": "app", "tag": "v1", "message": "shop/app:v1: cannot read [test"}
    assert substitute_variables(debug["debug"], {"event": bad}) == {"msg": bad["message"]}
    other = dict(bad, namespace="web", message="web/app:v1: names tset")
    assert substitute_variables(debug["debug"], {"events": {"m_0": bad, "m_1": other}}) == {"msg": bad["message"] + "; " + other["message"]}
    # the same run as a change's: the whole namespace, throttled alike
    assert run == change["action"]
    assert rule["throttle"] == change["throttle"]


def test_the_standalone_rulebook_runs_playbooks_of_the_collection():
    names = {action["run_playbook"]["name"] for _rule, action in actions(rulebook(STANDALONE)) if "run_playbook" in action}
    assert names == {"segmented.registry.reconcile_event"}
    assert os.path.isfile(os.path.join(REPO, "playbooks", "reconcile_event.yml"))


def test_the_controller_rulebook_launches_a_job_template_its_survey_answers():
    launched = [action["run_job_template"] for _rule, action in actions(rulebook(CONTROLLER)) if "run_job_template" in action]
    assert launched and {job["name"] for job in launched} == {"Segmented registry - reconcile"}
    survey = awx.job_template("reconcile")["survey"]
    for job in launched:
        # a job template with a survey takes only its variables: the events stay out
        assert job["include_events"] is False
        answers = {variable: "x" for variable in job["job_args"]["extra_vars"]}
        assert awx.survey_extra_vars(survey, answers) == answers
    assert {variable for job in launched for variable in job["job_args"]["extra_vars"]} == {"project"}


def test_the_source_is_the_collections_and_takes_the_arguments_given():
    documented = yaml.safe_load(runpy.run_path(SOURCE)["DOCUMENTATION"])["options"]
    for name in (STANDALONE, CONTROLLER):
        for ruleset in rulebook(name):
            [source] = ruleset["sources"]
            arguments = source["segmented.registry.approvals"]
            assert set(arguments) <= set(documented), name
