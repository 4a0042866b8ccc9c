"""Copies as Jobs on the registry cluster against copies in this process (issue 26), side by side in one
run on the lab. Figures, not asserts.

    bench/run jobs [--runs 2] [--rate 100mbit] [--json out.json]

Each run promotes one tag of a 210 MB image (5 layers of 40 MiB of incompressible data) into the
test registry with playbooks/promote.yml, as a user runs it, into a fresh repository (nothing to
mount), in turn: copied by this process (the default), and by one copy Job
(``segmented_registry_reconcile_copy_jobs``: the lab's copier image, pinned). Per run: wall time,
the bytes the router carried (its HAProxy frontend's counters, ``lab/router.py`` ``traffic``: the
controller reaches the environment registries through the router, as an AWX node reaches
OpenShift's), and the blob bytes the module reports sending itself.

Then the same with the link between this machine and the router limited to ``--rate`` (an HTB
class on ``lo`` for TCP port 443, both ways, as a slow link between an AWX node and the cluster
would): the controller's path is throttled, the Jobs' path (pod to Service on the node's bridge) is
not. The lab's integrated registry is read on 127.0.0.1:5100, not through the router, in both
paths. Sized for a 2-core machine; it runs on demand, never in CI; it needs the lab up with its node.
"""
import argparse
import json
import os
import subprocess
import uuid

from bench.bench_promote import PROMOTE, cleanup, loadavg, median
from bench.labkit import Bench, log, report, run_playbook
from lab import router

MiB = 1024 * 1024
LAYERS, LAYER_SIZE = 5, 40 * MiB


def copier_image(bench):
    with open(os.path.join(bench.lab.state, "images.json")) as handle:
        return json.load(handle)["pinned"]["copier"]


def router_traffic(bench):
    return router.traffic(os.path.join(bench.lab.state, "router", "haproxy"))


def limit_link(rate):
    """Throttle TCP port 443 on lo (both ways) to ``rate``; everything else on lo keeps its speed."""
    tc = ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10"]
    subprocess.run(tc, check=True, capture_output=True)
    for classid, speed in (("1:10", "40gbit"), ("1:20", rate)):
        subprocess.run(["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", classid, "htb", "rate", speed, "ceil", speed],
                       check=True, capture_output=True)
    for field in ("dport", "sport"):
        subprocess.run(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                        "match", "ip", field, "443", "0xffff", "flowid", "1:20"], check=True, capture_output=True)


def unlimit_link():
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False, capture_output=True)


def promote_once(bench, namespace, digest, jobs):
    stream = f"big-{uuid.uuid4().hex[:8]}"
    bench.tag_in_source(namespace, stream, ["v1"], digest, from_stream="big")
    extravars = {"project": namespace, "image": stream + ":v1", "env": "test", "segmented_registry_reconcile_report_file": "/tmp/bench-jobs-report.json"}
    if jobs:
        extravars["segmented_registry_reconcile_copy_jobs"] = {"image": copier_image(bench), "jobs": 1}
    before = router_traffic(bench)
    seconds = run_playbook(PROMOTE, extravars)[0]
    after = router_traffic(bench)
    with open("/tmp/bench-jobs-report.json") as handle:
        result = json.load(handle)["reconcile"]  # the promote module's report holds its reconcile's
    return {"seconds": round(seconds, 2), "router_bytes": (after["bytes_in"] - before["bytes_in"]) + (after["bytes_out"] - before["bytes_out"]),
            "module_blob_bytes_sent": result["stats"]["blob_bytes_sent"], "bytes_copied": result["bytes_moved"],
            "copied": [c["result"] for c in result["copies"]]}


def measure(bench, namespace, digest, runs, label):
    rows = {"in process": [], "copy Job": []}
    for run in range(runs):
        order = list(rows) if run % 2 == 0 else list(reversed(rows))
        for path in order:
            row = promote_once(bench, namespace, digest, jobs=(path == "copy Job"))
            rows[path].append(row)
            log(f"{label} run {run + 1}: {path}: {row['seconds']} s, router {row['router_bytes'] / MiB:.1f} MiB, "
                f"module sent {row['module_blob_bytes_sent'] / MiB:.1f} MiB, {row['copied']}")
    medians = {path: median([r["seconds"] for r in items]) for path, items in rows.items()}
    return {"runs": rows, "median_seconds": medians,
            "job_vs_in_process": round(medians["copy Job"] / medians["in process"], 2),
            "router_mib_median": {path: round(median([r["router_bytes"] for r in items]) / MiB, 1) for path, items in rows.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate", default="100mbit", help="the controller-router link of the second part (tc rate)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    bench = Bench()
    namespace = "bench-jobs"
    bench.ensure_namespace(namespace)
    digest = bench.lab.push(namespace, "big", "v1", LAYERS, LAYER_SIZE, seed="bench jobs 210 MB")["digest"]
    figures = {"image_mib": round(LAYERS * LAYER_SIZE / MiB), "load_before": loadavg()}
    try:
        figures["full_speed"] = measure(bench, namespace, digest, args.runs, "full speed")
        limit_link(args.rate)
        try:
            figures["limited_link"] = dict(measure(bench, namespace, digest, args.runs, f"link {args.rate}"), rate=args.rate)
        finally:
            unlimit_link()
    finally:
        cleanup(bench, "test", [namespace + "/big-"], digest)
    figures["load_after"] = loadavg()
    report(figures, args.json)


if __name__ == "__main__":
    main()
