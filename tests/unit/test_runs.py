"""tests/integration/runs.py: what a failed lab test reports of its playbook runs (runs.failed_tasks)."""

from tests.integration import runs


def event(kind, task, res, ignore_errors=None, host="registry"):
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res, "ignore_errors": ignore_errors}}


def test_failed_tasks_names_host_task_and_message_on_one_line_and_leaves_the_rest_out():
    events = [
        event("runner_on_ok", "Read it", {"msg": "fine"}),
        event("runner_on_failed", "Apply it", {"msg": "the Service\n  default/x\tis not ours"}),
        event("runner_on_failed", "Expected to fail", {"msg": "ignored"}, ignore_errors=True),
        event("runner_on_unreachable", "Reach it", {"msg": "no route"}, host="prod"),
        event("runner_on_failed", "A module that crashed", {"module_stderr": "Traceback " + "x" * 500}),
    ]
    lines = runs.failed_tasks(events, width=40)
    assert lines == [
        "registry | Apply it | the Service default/x is not ours",
        "prod | Reach it | no route",
        "registry | A module that crashed | Traceback " + "x" * 30,
    ]
    assert runs.failed_tasks([]) == []
