"""bench/bench_fleet.py's reading of a run: profile_tasks' times per task (from a real
ansible-playbook run with bench_fleet.PROFILE), the play recap, and the tasks that grew most."""
import os
import subprocess
import sys

import pytest

from bench import bench_fleet

PLAYBOOK = """
- name: First
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Quick
      ansible.builtin.ping:
    - name: Wait a second - then go on
      ansible.builtin.wait_for: {timeout: 1}
- name: Second
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait a second - then go on
      ansible.builtin.wait_for: {timeout: 1}
    - name: Change something
      ansible.builtin.copy: {content: "x", dest: "{{ destination }}"}
"""


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile")
    playbook = folder / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", **bench_fleet.PROFILE)
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"destination={folder / 'out'}",
                          str(playbook)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.stdout


def test_profile_tasks_times_are_read_per_task_name_and_summed_over_the_tasks_that_share_one(run_output):
    times = bench_fleet.task_times(run_output)
    assert set(times) == {"Quick", "Wait a second - then go on", "Change something"}
    recap = run_output.split("TASKS RECAP", 1)[1].splitlines()
    waits = [float(line.rsplit(" ", 1)[1].rstrip("s")) for line in recap if line.startswith("Wait a second - then go on -")]
    assert len(waits) == 2 and min(waits) >= 1.0  # one second in each play
    assert times["Wait a second - then go on"] == round(sum(waits), 2)
    assert times["Quick"] > 0
    assert times["Quick"] < times["Wait a second - then go on"]


def test_the_recap_says_which_hosts_ran_and_changed(run_output):
    assert bench_fleet.ran_hosts(run_output) == ["localhost"]
    assert bench_fleet.changed_hosts(run_output) == ["localhost"]
    assert bench_fleet.changed_hosts(run_output.replace("changed=1 ", "changed=0 ")) == []


def test_a_run_without_profile_tasks_is_refused_naming_it():
    with pytest.raises(ValueError, match="profile_tasks"):
        bench_fleet.task_times("PLAY RECAP ***\nlocalhost : ok=1    changed=0    unreachable=0    failed=0\n")


def test_the_tasks_that_grew_most_come_first_a_missing_one_counting_0():
    small = [{"each consumer": 1.0, "registry": 2.0}, {"each consumer": 1.2, "registry": 2.0}]
    large = [{"each consumer": 5.0, "registry": 2.1, "new": 0.5}, {"each consumer": 6.0, "registry": 2.1}]
    assert bench_fleet.grown_most(small, large, 2) == [
        {"task": "each consumer", "small": 1.1, "large": 5.5, "grew": 4.4},
        {"task": "new", "small": 0.0, "large": 0.25, "grew": 0.25}]


def test_each_size_goes_first_in_every_other_round():
    assert [bench_fleet.in_turn({"1 + 3": 0, "1 + 16": 0}, n) for n in range(3)] == [
        ["1 + 3", "1 + 16"], ["1 + 16", "1 + 3"], ["1 + 3", "1 + 16"]]
