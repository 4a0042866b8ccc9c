"""tests/integration/lanes.py: the locks that let shared integration files run beside each other
and keep the exclusive ones alone, across processes (as pytest-xdist's workers are)."""
import multiprocessing
import time

import pytest

from tests.integration import lanes


def _hold(alone, seconds, times, key, run):
    import os
    os.environ["PYTEST_XDIST_TESTRUNUID"] = run
    with lanes.turn(alone=alone):
        times[key + ".in"] = time.monotonic()
        time.sleep(seconds)
        times[key + ".out"] = time.monotonic()


def _race(first, second, run):
    """Start a process holding the lab as ``first`` says, then another as ``second`` says;
    return when each got in and left."""
    with multiprocessing.Manager() as manager:
        times = manager.dict()
        one = multiprocessing.Process(target=_hold, args=(first, 1.0, times, "one", run))
        one.start()
        while "one.in" not in times:
            time.sleep(0.01)
        two = multiprocessing.Process(target=_hold, args=(second, 0.1, times, "two", run))
        two.start()
        one.join(10)
        two.join(10)
        return dict(times)


@pytest.mark.parametrize("first, second", [(False, True), (True, False), (True, True)])
def test_an_exclusive_holder_is_alone(first, second, tmp_path):
    times = _race(first, second, run=f"unit-{tmp_path.name}")
    assert times["two.in"] >= times["one.out"], "two held the lab at once with an exclusive holder"


def test_shared_holders_run_beside_each_other(tmp_path):
    times = _race(False, False, run=f"unit-{tmp_path.name}")
    assert times["two.in"] < times["one.out"], "a shared holder waited for another shared one"


def test_lanes_of_a_run():
    assert lanes.lane("tests/unit/test_docs.py::test_x") == "offline"
    assert lanes.lane("tests/integration/test_site.py::test_site") == "lab-exclusive"
    assert lanes.lane("tests/integration/test_promote.py::test_x[a]") == "tests/integration/test_promote.py"
    assert lanes.exclusive("tests/integration/test_registry_gc.py::test_y")
    assert not lanes.exclusive("tests/integration/test_reconcile.py::test_y")


def test_the_session_is_seen_first_by_one_worker_and_cleaned_by_the_last(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", f"unit-{tmp_path.name}")
    calls = []
    with lanes.session(lambda: calls.append("one") or ["before"]) as one:
        with lanes.session(lambda: calls.append("two") or ["later"]) as two:
            assert two["first"] == ["before"]
        assert not two["last"]
    assert one["last"] and calls == ["one"]
    with lanes.session(lambda: ["again"]) as three:  # a worker arriving after all left starts afresh
        assert three["first"] == ["again"]
    assert three["last"]
