"""site.yml and promote.yml on a fleet of consumer clusters, each beside its yardstick in one run
on one lab. Figures, not asserts.

    lab/labctl down; lab/labctl up --consumers 16
    bench/run fleet [--only site,promote] [--runs 3] [--forks N] [--top 12] [--json out.json]

Every playbook run records ansible.posix's profile_tasks (ANSIBLE_CALLBACKS_ENABLED): the wall time
of each task, from its start to the next task's, all hosts together. A task that runs on every
consumer at once takes as long as the slowest of their module runs, which share the machine's
cores; a task of the registry host or localhost that grows with the consumers is one that works
through them one after the other.

site: playbooks/site.yml twice per round on the lab's inventory (lab/labctl inventory), in turn
first: limited to the registry cluster and the first consumer of each environment (test, uat,
prod: "1 + 3"), and on every cluster ("1 + N"). Both with ``--forks`` (default: one per cluster
and localhost, so that no consumer waits for another). The first round on a fresh fleet configures
every consumer (its run changes them: reported as "changed"); later rounds find them configured.
Printed: every run's wall time and the median, the ratio of the medians (issue 26's goal: 1 + 16
within 3 times 1 + 3), the load average, the tasks whose median time grew most from 1 + 3 to 1 + N
(``--top``), and the lab's memory (lab/labctl status): per consumer cluster (its API server and
controller manager, a share of the shared stand-ins) and the total, with what etcd and the
registry cluster take apart.

promote: playbooks/promote.yml of a new tag (a fresh ImageStream of one small image each run) to
prod, with the lab's inventory (prod served by every prod consumer of the fleet: 8 of 16) and with
inventories/lab (prod served by one), in turn first; the environments before prod (prod comes
after uat) are promoted first, untimed. Printed: every run, the medians, their ratio, the hosts
that ran a task in each run (only localhost: no consumer is reached) and the tasks that grew most.
The image's copies and streams are removed at the end. It needs the environment registries
deployed (the site part, or site.yml, run once on the lab).

It needs a lab with more than three consumer clusters (lab/labctl up --consumers N).
"""
import argparse
import os
import re
import statistics
import uuid

from kubernetes.client.rest import ApiException

from bench.bench_promote import cleanup, loadavg
from bench.labkit import LAB_INVENTORY, REPO, Bench, log, report, run_playbook, save_figures
from lab import fleet, labctl

SITE = os.path.join(REPO, "playbooks", "site.yml")
PROMOTE = os.path.join(REPO, "playbooks", "promote.yml")
SMALL = ("test", "uat", "prod")  # the first consumer of each environment: the lab's 1 + 3
PROD = "prod"  # the environment the promote part times: the last, served by most consumers of the fleet
NAMESPACE = "bench-fleet-promote"
#: profile_tasks on, every task listed in play order, no per-task lines during the run
PROFILE = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
           "PROFILE_TASKS_SORT_ORDER": "none", "PROFILE_TASKS_SUMMARY_ONLY": "true"}
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TASK_TIME = re.compile(r"^(.+?) -*\s(\d+\.\d{2})s$")


def recap(stdout):
    """The play recap: {host: {"ok", "changed", "unreachable", "failed"}}."""
    return {host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, counts)))
            for host, *counts in RECAP.findall(stdout)}


def changed_hosts(stdout):
    """The hosts whose recap counts a change."""
    return sorted(host for host, counts in recap(stdout).items() if counts["changed"])


def ran_hosts(stdout):
    """The hosts that ran a task (ok or changed; skipped tasks do not count)."""
    return sorted(host for host, counts in recap(stdout).items() if counts["ok"])


def task_times(stdout):
    """{task name: seconds} from profile_tasks' TASKS RECAP (``PROFILE``); a name that several tasks
    share (one per play, or a role's tasks imported twice) gets their sum. Role tasks are named
    ``<role> : <task>``."""
    times = {}
    _before, found, recap_text = stdout.partition("TASKS RECAP")
    if not found:
        raise ValueError("no TASKS RECAP in the run's output: is ansible.posix's profile_tasks enabled (PROFILE)?")
    for line in recap_text.splitlines():
        match = TASK_TIME.match(line)
        if match:
            times[match.group(1)] = round(times.get(match.group(1), 0.0) + float(match.group(2)), 2)
    return times


def grown_most(small_runs, large_runs, top):
    """The ``top`` tasks whose median time grew most from the runs ``small_runs`` to ``large_runs``
    (lists of ``task_times``; a task missing from a run took 0 s there): [{"task", "small", "large",
    "grew"}], the largest growth first."""
    def median(runs, name):
        return round(statistics.median(run.get(name, 0.0) for run in runs), 2)

    names = {name for run in small_runs + large_runs for name in run}
    rows = [{"task": name, "small": median(small_runs, name), "large": median(large_runs, name)} for name in names]
    for row in rows:
        row["grew"] = round(row["large"] - row["small"], 2)
    return sorted(rows, key=lambda row: (-row["grew"], row["task"]))[:top]


def in_turn(sizes, round_number):
    """The order of ``sizes`` in round ``round_number``: each first in every other round."""
    return list(sizes) if round_number % 2 == 0 else list(reversed(sizes))


def bench_site(lab, consumers, runs, forks, top):
    # "all" alone would leave the implicit localhost (validation, the reconcile) out of the larger run
    sizes = {"1 + 3": ",".join((lab.layout.registry_cluster, "localhost") + SMALL), f"1 + {len(consumers)}": "all:localhost"}
    rows = {size: [] for size in sizes}
    for round_number in range(runs):
        for size in in_turn(sizes, round_number):
            seconds, stdout, _memory = run_playbook(SITE, inventory=LAB_INVENTORY, env=PROFILE,
                                                    options=["--forks", str(forks), "--limit", sizes[size]])
            rows[size].append({"seconds": round(seconds, 2), "changed": changed_hosts(stdout), "load": loadavg()[0],
                               "tasks": task_times(stdout)})
            log(f"round {round_number + 1}: site.yml on {size}: {seconds:.1f} s")
    medians = {size: round(statistics.median(run["seconds"] for run in runs_of), 2) for size, runs_of in rows.items()}
    small, large = sizes
    status = lab.status()
    return {
        "consumers": len(consumers),
        "forks": forks,
        "runs": rows,  # each with its profile_tasks times ("tasks")
        "median_seconds": medians,
        "ratio": round(medians[large] / medians[small], 2),
        "goal": "1 + N within 3 x (1 + 3)",
        "goal_met": medians[large] <= 3 * medians[small],
        "tasks_grown_most": grown_most([run["tasks"] for run in rows[small]], [run["tasks"] for run in rows[large]], top),
        "memory_mib": status.get("memory_mib"),
        "memory_by_cluster": status.get("memory_by_cluster"),
    }


def bench_promote(bench, runs, top):
    layout = bench.lab.layout
    served = sum(1 for env in layout.consumers.values() if env == PROD)
    inventories = {f"prod served by {served}": LAB_INVENTORY, "prod served by 1": fleet.BASE}
    environments = [env for env, _endpoint in layout.registries[1:]]  # in promotion order
    before = environments[:environments.index(PROD)]
    bench.ensure_namespace(NAMESPACE)
    digest = bench.lab.push(NAMESPACE, "small", "v1", 1, 64 * 1024, seed="bench fleet promote")["digest"]
    rows = {label: [] for label in inventories}
    streams = []
    try:
        for round_number in range(runs):
            for label in in_turn(inventories, round_number):
                stream = f"small-{uuid.uuid4().hex[:8]}"
                streams.append(stream)
                bench.tag_in_source(NAMESPACE, stream, ["v1"], digest, from_stream="small")
                request = {"project": NAMESPACE, "image": stream + ":v1"}
                for env in before:
                    run_playbook(PROMOTE, dict(request, env=env), inventory=inventories[label])
                seconds, stdout, _memory = run_playbook(PROMOTE, dict(request, env=PROD), inventory=inventories[label],
                                                        env=PROFILE)
                rows[label].append({"seconds": round(seconds, 2), "ran": ran_hosts(stdout), "tasks": task_times(stdout)})
                log(f"round {round_number + 1}: promote.yml to {PROD}, {label}: {seconds:.2f} s")
    finally:
        resource = bench.streams()
        for stream in streams:
            try:
                resource.delete(name=stream, namespace=NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:  # a run that failed before its stream was made
                    raise
        for env in before + [PROD]:
            cleanup(bench, env, [NAMESPACE + "/small-"], digest)
    medians = {label: round(statistics.median(run["seconds"] for run in runs_of), 2) for label, runs_of in rows.items()}
    many, one = inventories
    return {
        "runs": rows,  # each with the hosts that ran a task ("ran") and its profile_tasks times ("tasks")
        "median_seconds": medians,
        "ratio": round(medians[many] / medians[one], 2),
        "tasks_grown_most": grown_most([run["tasks"] for run in rows[one]], [run["tasks"] for run in rows[many]], top),
        "load_after": loadavg(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="site,promote", help="which parts (site, promote)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of each part (each size in turn first)")
    parser.add_argument("--forks", type=int, help="ansible-playbook --forks of site.yml (default: clusters + 1)")
    parser.add_argument("--top", type=int, default=12, help="how many of the tasks that grew most to list")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    if wanted - {"site", "promote"}:
        raise SystemExit(f"--only takes site and promote; got {args.only}")
    lab = labctl.Lab()
    consumers = lab.layout.consumers
    if len(consumers) <= len(SMALL):
        raise SystemExit(f"bench/run fleet needs a fleet: the lab has {len(consumers)} consumer clusters "
                         "(lab/labctl down; lab/labctl up --consumers 16)")
    figures = {"machine": {"cpus": os.cpu_count(), "load_before": loadavg()}}
    if "site" in wanted:
        figures["site"] = bench_site(lab, consumers, args.runs, args.forks or len(lab.layout.clusters) + 1, args.top)
        save_figures(figures, args.json)  # a later failure keeps what was measured
    if "promote" in wanted:
        figures["promote"] = bench_promote(Bench(), args.runs, args.top)
    report(figures, args.json)


if __name__ == "__main__":
    main()
