"""Copies as Jobs on the registry cluster against copies in this process (issue 26), side by side in one
run on the lab. Figures, not asserts.

    bench/run jobs [--only copy,scale] [--runs 2] [--rate 100mbit] [--tags 10000] [--json out.json]

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
paths.

(scale) A reconcile of ``--tags`` tags (default 10,000: 4 namespaces of 50 streams of 50 tags of one
small image, so that the Jobs have namespaces to share) approved for test, uat and prod and in none
of them (3 x tags copies: per repository one image, then tag PUTs), by playbooks/reconcile.yml with
copy Jobs, once with 1 Job and once with 4: wall time, the copies' outcome, and the CPU seconds of
the registries' processes (the integrated registry and the environment registries' pods:
``docker-registry`` and ``registry``) and of the whole machine while it ran. After each run the tags
are demoted and reconciled away (in this process), so both runs start from empty registries.

Sized for a 2-core machine; it runs on demand, never in CI; it needs the lab up with its node.
"""
import argparse
import json
import os
import subprocess
import uuid

from bench.bench_promote import PROMOTE, RECONCILE, cleanup, cpu_busy_seconds, loadavg, median
from bench.labkit import Bench, log, report, run_playbook
from lab import router

MiB = 1024 * 1024
LAYERS, LAYER_SIZE = 5, 40 * MiB


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
        extravars["segmented_registry_reconcile_copy_jobs"] = {"image": bench.lab.image_references()["pinned"]["copier"], "jobs": 1}
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


SCALE_NAMESPACES, STREAMS_PER_NAMESPACE = 4, 50
REGISTRY_PROCESSES = ("docker-registry", "registry")


def registry_cpu_seconds():
    """CPU seconds the registries' processes have used (this machine's /proc: the integrated
    registry, docker-registry; the environment registries' pods, registry)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                text = handle.read()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name in REGISTRY_PROCESSES:
            total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return total


def scale_setup(bench, tags):
    """The namespaces of the scale run: streams of 50 tags of one small image, recorded, not approved."""
    per_namespace = max(1, tags // SCALE_NAMESPACES)
    tag_names = [f"t{i:03}" for i in range(min(50, per_namespace))]
    streams = [f"s{i:03}" for i in range(max(1, per_namespace // len(tag_names)))]
    layout = []
    for number in range(SCALE_NAMESPACES):
        namespace = f"bench-jobs-scale-{tags}-{number}"
        bench.ensure_namespace(namespace)
        digest = bench.lab.push(namespace, streams[0], tag_names[0], 1, 16 * 1024, seed=f"jobs scale {number}")["digest"]
        for stream in streams:
            bench.tag_in_source(namespace, stream, tag_names, digest, from_stream=streams[0])
        layout.append((namespace, digest))
    return layout, streams, tag_names


def approve_scale(bench, layout, streams, tag_names, value):
    for namespace, _digest in layout:
        for stream in streams:
            bench.approve_all(namespace, stream, tag_names, value)


def scale_run(bench, layout, streams, tag_names, jobs):
    approve_scale(bench, layout, streams, tag_names, "prod,test,uat")
    project = ",".join(namespace for namespace, _digest in layout)
    report_file = "/tmp/bench-jobs-scale.json"
    extravars = {"project": project, "segmented_registry_reconcile_report_file": report_file,
                 "segmented_registry_reconcile_copy_jobs": {"image": bench.lab.image_references()["pinned"]["copier"], "jobs": jobs}}
    machine, registries = cpu_busy_seconds(), registry_cpu_seconds()
    seconds = run_playbook(RECONCILE, extravars)[0]
    machine, registries = cpu_busy_seconds() - machine, registry_cpu_seconds() - registries
    with open(report_file) as handle:
        result = json.load(handle)
    outcome = {}
    for copy in result["copies"]:
        outcome[copy.get("result")] = outcome.get(copy.get("result"), 0) + 1
    row = {"jobs": jobs, "seconds": round(seconds, 1), "copies": outcome, "jobs_used": len({c.get("job") for c in result["copies"]}),
           "registry_cpu_seconds": round(registries, 1), "machine_cpu_seconds": round(machine, 1)}
    log(f"(scale) {jobs} Job(s): {row}")
    approve_scale(bench, layout, streams, tag_names, "")
    run_playbook(RECONCILE, {"project": project})  # demoted: removed in this process
    return row


def bench_scale(bench, tags):
    layout, streams, tag_names = scale_setup(bench, tags)
    log(f"(scale) {len(layout)} namespaces x {len(streams)} streams x {len(tag_names)} tags, 3 environments")
    rows = [scale_run(bench, layout, streams, tag_names, jobs) for jobs in (1, 4)]
    return {"tags": len(layout) * len(streams) * len(tag_names), "environments": 3, "runs": rows,
            "four_vs_one": round(rows[1]["seconds"] / rows[0]["seconds"], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="copy,scale", help="the parts to run: copy, scale")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--tags", type=int, default=10000, help="tags of the scale part")
    parser.add_argument("--rate", default="100mbit", help="the controller-router link of the second part (tc rate)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    bench = Bench()
    figures = {"load_before": loadavg()}
    if "copy" in only:
        namespace = "bench-jobs"
        bench.ensure_namespace(namespace)
        digest = bench.lab.push(namespace, "big", "v1", LAYERS, LAYER_SIZE, seed="bench jobs 210 MB")["digest"]
        figures["image_mib"] = round(LAYERS * LAYER_SIZE / MiB)
        try:
            figures["full_speed"] = measure(bench, namespace, digest, args.runs, "full speed")
            limit_link(args.rate)
            try:
                figures["limited_link"] = dict(measure(bench, namespace, digest, args.runs, f"link {args.rate}"), rate=args.rate)
            finally:
                unlimit_link()
        finally:
            cleanup(bench, "test", [namespace + "/big-"], digest)
    if "scale" in only:
        figures["scale"] = bench_scale(bench, args.tags)
    figures["load_after"] = loadavg()
    report(figures, args.json)


if __name__ == "__main__":
    main()
