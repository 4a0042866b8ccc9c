"""site.yml on a fleet: the registry cluster with three consumer clusters against the registry
cluster with every consumer cluster of the lab, side by side in one run on one lab. Figures, not
asserts.

    lab/labctl down; lab/labctl up --consumers 16
    bench/run fleet [--runs 3] [--forks N] [--json out.json]

Each round runs playbooks/site.yml twice on the lab's inventory (lab/labctl inventory), in turn
first: limited to the registry cluster and the first consumer of each environment (test, uat,
prod: "1 + 3"), and on every cluster ("1 + N"). Both with ``--forks`` (default: one per cluster
and localhost, so that no consumer waits for another). The first round on a fresh fleet configures
every consumer (its run changes them: reported as "changed"); later rounds find them configured.
Printed per size: every run's wall time and the median, the ratio of the medians (issue 26's goal:
1 + 16 within 3 times 1 + 3), the load average, and the lab's memory (lab/labctl status): per
consumer cluster (its API server and controller manager, a share of the shared stand-ins) and the
total, with what etcd and the registry cluster take apart.
It needs a lab with more than three consumer clusters (lab/labctl up --consumers N).
"""
import argparse
import os
import re
import statistics

from bench.bench_promote import loadavg
from bench.labkit import LAB_INVENTORY, REPO, log, report, run_playbook
from lab import labctl

SITE = os.path.join(REPO, "playbooks", "site.yml")
SMALL = ("test", "uat", "prod")  # the first consumer of each environment: the lab's 1 + 3


def changed_hosts(stdout):
    """The hosts whose recap counts a change."""
    return sorted(host for host, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M) if int(count))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each: 1 + 3, then 1 + N, in turn first)")
    parser.add_argument("--forks", type=int, help="ansible-playbook --forks (default: clusters + 1)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    lab = labctl.Lab()
    consumers = [name for name, _port in lab.layout.clusters if name != lab.layout.registry_cluster]
    if len(consumers) <= len(SMALL):
        raise SystemExit(f"bench/run fleet needs a fleet: the lab has {len(consumers)} consumer clusters "
                         "(lab/labctl down; lab/labctl up --consumers 16)")
    forks = args.forks or len(lab.layout.clusters) + 1
    sizes = {"1 + 3": ",".join((lab.layout.registry_cluster, "localhost") + SMALL), f"1 + {len(consumers)}": "all"}
    runs = {size: [] for size in sizes}
    for round_number in range(args.runs):
        order = list(sizes) if round_number % 2 == 0 else list(reversed(sizes))
        for size in order:
            seconds, stdout, _memory = run_playbook(SITE, inventory=LAB_INVENTORY, options=["--forks", str(forks), "--limit", sizes[size]])
            runs[size].append({"seconds": round(seconds, 2), "changed": changed_hosts(stdout), "load": loadavg()[0]})
            log(f"round {round_number + 1}: site.yml on {size}: {seconds:.1f} s")
    medians = {size: round(statistics.median(run["seconds"] for run in rows), 2) for size, rows in runs.items()}
    small, large = medians.values()
    status = lab.status()
    figures = {
        "consumers": len(consumers),
        "forks": forks,
        "runs": runs,
        "median_seconds": medians,
        "ratio": round(large / small, 2),
        "goal": "1 + N within 3 x (1 + 3)",
        "goal_met": large <= 3 * small,
        "memory_mib": status.get("memory_mib"),
        "memory_by_cluster": status.get("memory_by_cluster"),
    }
    report(figures, args.json)


if __name__ == "__main__":
    main()
