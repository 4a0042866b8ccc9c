"""Reading an ansible-runner run (the ``run_playbook`` fixture's result): task results from its events."""

from concurrent.futures import ThreadPoolExecutor


def _results(runner, prefix):
    """(host, result) of each task whose name starts with ``prefix``, ok or failed, in event order;
    a failed result marked ``failed`` as the task registers it (the event's result has no such key)."""
    for event in runner.events:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and (data.get("task") or "").startswith(prefix):
            failed = event["event"] == "runner_on_failed"
            yield data.get("host"), dict(data["res"], failed=True) if failed else data["res"]


def task_result(runner, prefix):
    """The result of the first task whose name starts with ``prefix``, as the task registers it."""
    for _host, result in _results(runner, prefix):
        return result
    raise AssertionError(f"no result of a task named {prefix}... in:\n{runner.stdout_text[-3000:]}")


def host_results(runner, prefix):
    """{host: result} of the task whose name starts with ``prefix``, as each host registers it."""
    return dict(_results(runner, prefix))


def failed_tasks(events, width=400):
    """One line per task that failed (not ignored) or found its host unreachable in a run's events:
    host, task and message, the message on one line and cut at ``width`` characters. What a reader
    of a failed test needs first: the tail of a run's output is mostly its play headers and recap."""
    lines = []
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_unreachable" or (
                event.get("event") == "runner_on_failed" and not data.get("ignore_errors")):
            res = data.get("res") or {}
            message = res.get("msg") or res.get("stderr") or res.get("module_stderr") or ""
            message = " ".join(str(message).split())
            lines.append(f"{data.get('host')} | {data.get('task')} | {message[:width]}")
    return lines


def at_once(*runs):
    """Call each of ``runs`` (functions of no argument) in a thread of its own, all at once, and give
    their results in order. For runs that change nothing, where each keeps one core busy."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(run) for run in runs]
        return [future.result() for future in futures]
