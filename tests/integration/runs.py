"""Reading an ansible-runner run (the ``run_playbook`` fixture's result): task results from its events."""


def task_result(runner, prefix):
    """The result of the first task whose name starts with ``prefix`` (ok or failed)."""
    for event in runner.events:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and (data.get("task") or "").startswith(prefix):
            return data["res"]
    raise AssertionError(f"no result of a task named {prefix}... in:\n{runner.stdout_text[-3000:]}")
