"""Benchmarks of the promotion engine on the running lab, measured side by side in one run.
Figures, not asserts.

    .venv/bin/python bench/bench_promote.py [--only a,b,c,e] [--runs 3] [--scales 100,1000,10000] [--json out.json]

(a) copy: a 5-layer image of 210 MB (5 x 40 MiB of incompressible data) from the test registry
    to the uat registry, a fresh destination repository every run, interleaved:
    - ours: the engine's copier (plugins/module_utils/promotion/execute.py Executor, in-process, fresh
      clients, tokens and connections every run);
    - the ingest limit: the same blobs PUT from memory into uat by the simplest client (requests,
      one monolithic upload per blob, 5 in parallel, token fetched beforehand);
    - the relay floor: the same blobs streamed from test into uat by that simplest client (a GET's
      stream as the monolithic PUT's body, 5 in parallel, tokens fetched beforehand): the source's
      reads paid as every copy pays them;
    - skopeo copy --all --preserve-digests (an empty blob-info cache every run);
    - end to end as a user runs it: ansible-playbook playbooks/promote.yml for one tag of that
      image (integrated registry -> uat).
    For each of the first four, the busy CPU seconds of the whole machine while it ran (registries,
    router and client alike): divided by the cores, the least wall time that work can take here;
    and the client's own share (this process, or skopeo): the rest, divided by the cores, is the
    least time a copy could take with a client that cost nothing.
(b) second tag: promote another tag of a digest the test registry already holds, in the same
    repository and in another repository (mount): blob bytes sent, requests, time.
(c) steady state at each scale (100, 1,000, 10,000 tags, 50 tags per stream, approved for test,
    uat and prod and already in place): ansible-playbook playbooks/reconcile.yml -e project=<ns>
    as a job runs it, which finds nothing to do: wall time, the module's own time (from the first
    line of the module file: its imports are its cost; what every module pays before, Python's
    start, the AnsiballZ payload and ansible.module_utils.basic, is the playbook's, in the bare run
    too), API calls, registry requests, the module process's peak resident memory. In the same
    run, before each playbook run, (d) the registries' own cost of answering those manifest HEADs:
    curl (HTTP/2 where the route offers it; the lab's router, as OpenShift's by default, speaks
    HTTP/1.1 to clients), 8 parallel transfers per registry, the three registries at once, one
    token per repository fetched beforehand. Then a bare one-task playbook (bench/noop.yml) on the
    same inventory: the floor of an ansible-playbook run, in the same conditions (after the same
    burst of HEADs); the overhead of each run (wall minus module) against it. Between 1,000 and
    10,000 tags, the marginal cost of a tag and environment (the fixed cost left out). At 1,000
    tags, a naive playbook (k8s_info + uri per tag) over a sample, extrapolated linearly.
(e) promote.yml end to end for one small tag (a fresh repository each run, into test), and a
    promotion with nothing to do, against the bare one-task playbook.

Sized for a 2-core machine; it runs on demand, never in CI. It needs the lab up (lab/labctl up).
Setup for (c) is kept in namespaces ``bench-steady-<tags>`` and reused.
"""
import argparse
import base64
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import (ImageStreamAPI)
from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster
from ansible_collections.segmented.registry.plugins.module_utils.oci.manifests import ACCEPT, parse_manifest
from ansible_collections.segmented.registry.plugins.module_utils.oci.transport import Stats, StreamReader
from ansible_collections.segmented.registry.plugins.module_utils.promotion.execute import Executor
from ansible_collections.segmented.registry.plugins.module_utils.promotion.job import approvals_of
from ansible_collections.segmented.registry.plugins.module_utils.promotion import run as promotion
from ansible_collections.segmented.registry.plugins.module_utils.promotion.scope import Scope
from bench.labkit import HERE, KEY, REPO, Bench, log, report, run_playbook, save_figures

MiB = 1024 * 1024
COUNTERS = ("bytes_sent", "blobs_sent", "blobs_mounted", "blobs_present", "manifests_put")
TAGS_PER_STREAM = 50
NOOP = os.path.join(HERE, "noop.yml")
PROMOTE = os.path.join(REPO, "playbooks", "promote.yml")
RECONCILE = os.path.join(REPO, "playbooks", "reconcile.yml")


def median(values):
    return round(statistics.median(values), 3)


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def cpu_busy_seconds():
    """CPU seconds the whole machine has spent busy (every core: user, nice, system, irq, softirq,
    steal; not idle or iowait) since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds():
    """CPU seconds of this process and of its waited-for children (skopeo): the client's share."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def with_cpu(work):
    """``(result of work(), {"machine": busy CPU seconds of the whole machine while it ran, "client":
    the client's share})``: the machine's figure is every process's work, the registries', the
    router's and the client's alike; what is not the client's is what the servers cost."""
    before, client_before = cpu_busy_seconds(), client_cpu_seconds()
    result = work()
    return result, {"machine": cpu_busy_seconds() - before, "client": client_cpu_seconds() - client_before}


def approvals(bench, namespace):
    """Entries and stream annotations through the collection's reader: one list call."""
    api = ImageStreamAPI(Cluster.of_api_client(bench.api()))
    return approvals_of(api.list(namespace), KEY)


def engine_copy(bench, source_env, env, source_repo, repository, digest, workers):
    """One image copied by the engine (Executor.copy, as a reconcile runs it), fresh clients."""
    stats = Stats()
    source, destination = bench.client(source_env, stats=stats), bench.client(env, stats=stats)
    executor = Executor(source, {env: destination}, image_workers=1, blob_workers=workers)
    counters = dict.fromkeys(COUNTERS, 0)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            executor._blob_pool = pool  # Executor.copy outside execute() needs its blob pool
            executor.copy(env, repository, "v1", digest, counters, source_repository=source_repo)
    finally:
        source.close()
        destination.close()
    return counters, stats.to_dict()


# ---------------------------------------------------------------------------------------------
# (a) a 210 MB copy: ours vs the ingest limit vs skopeo; promote.yml end to end
# ---------------------------------------------------------------------------------------------


def simple_session(bench, pool):
    """The simplest client's session: requests, the lab CA, ``pool`` connections per host."""
    session = requests.Session()
    session.trust_env = False
    session.verify = bench.ca
    session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
    return session


def monolithic_upload(session, endpoint, repository, headers, digest, body):
    """One blob as the simplest client uploads it: POST, then one PUT with the whole body."""
    started = session.post(f"https://{endpoint}/v2/{repository}/blobs/uploads/", headers=headers)
    started.raise_for_status()
    location = started.headers["Location"]
    location = location if location.startswith("http") else f"https://{endpoint}{location}"
    put = session.put(location + ("&" if "?" in location else "?") + "digest=" + digest, data=body,
                      headers=dict(headers, **{"Content-Type": "application/octet-stream"}))
    put.raise_for_status()


def timed_parallel(work, items, parallel):
    """Seconds to run ``work`` over ``items``, ``parallel`` at once."""
    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(work, items))
    return time.monotonic() - begin


def ingest(bench, env, repository, blobs, parallel):
    """The registry's ingest limit: ``blobs`` ({digest: bytes}) PUT from memory into a fresh
    repository, one monolithic upload (POST, then PUT with the body) per blob, ``parallel`` at once.
    Returns the seconds of the uploads (the token is fetched before the clock starts)."""
    endpoint = bench.environments[env]
    headers = {"Authorization": "Bearer " + bench.bearer(env, [repository], "pull,push")}
    session = simple_session(bench, parallel)
    try:
        return timed_parallel(lambda item: monolithic_upload(session, endpoint, repository, headers, *item),
                              sorted(blobs.items()), parallel)
    finally:
        session.close()


def relay(bench, source_env, source_repository, env, repository, sizes, parallel):
    """The relay floor: the same blobs ({digest: size}) streamed from ``source_env`` into a fresh
    repository of ``env`` by the simplest client (one GET, then POST and a monolithic PUT whose body
    is the GET's stream, sized by the engine's StreamReader so that it goes with a Content-Length),
    ``parallel`` at once, tokens fetched beforehand. What any copy between two
    registries on this machine costs, the source's reads included (the ingest limit has none).
    Returns the seconds of the transfers."""
    source_endpoint, endpoint = bench.environments[source_env], bench.environments[env]
    pull = {"Authorization": "Bearer " + bench.bearer(source_env, [source_repository], "pull")}
    push = {"Authorization": "Bearer " + bench.bearer(env, [repository], "pull,push")}
    session = simple_session(bench, 2 * parallel)

    def transfer(item):
        digest, size = item
        source = session.get(f"https://{source_endpoint}/v2/{source_repository}/blobs/{digest}", headers=pull,
                             stream=True)
        try:
            source.raise_for_status()
            monolithic_upload(session, endpoint, repository, push, digest, StreamReader(source.raw, size))
        finally:
            source.close()

    try:
        return timed_parallel(transfer, sorted(sizes.items()), parallel)
    finally:
        session.close()


def skopeo_copy(bench, authfile, home, source, destination):
    argv = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--authfile", authfile,
            "--src-cert-dir", bench.lab.trust_dir, "--dest-cert-dir", bench.lab.trust_dir,
            "docker://" + source, "docker://" + destination]
    run_home = tempfile.mkdtemp(prefix="home-", dir=home)
    started = time.monotonic()
    proc = subprocess.run(fresh_cache(argv), capture_output=True, text=True, env=dict(os.environ, HOME=run_home),
                          timeout=900, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {proc.stderr[-1000:]}")
    return seconds


def bench_copy(bench, runs, layers, layer_size, workers):
    namespace = "bench-copy"
    bench.ensure_namespace(namespace)
    digest = bench.lab.push(namespace, "big", "v1", layers, layer_size,
                            seed=f"bench-copy {int(layers)} x {int(layer_size)}")["digest"]
    source_repo = f"{namespace}/big"
    engine_copy(bench, "default", "test", source_repo, source_repo, digest, workers)  # the source of (a): test
    test = bench.client("test")
    manifest = test.get_manifest(source_repo, digest)
    refs = parse_manifest(manifest["data"], manifest["media_type"])["blobs"]
    blobs = {}
    for blob in refs:
        response = test.open_blob(source_repo, blob["digest"])
        blobs[blob["digest"]] = response.content
        response.close()
    test.close()
    size = sum(len(data) for data in blobs.values())
    log(f"(a) image {digest[:19]}: {int(layers)} layers, {size / 1000000.0:.1f} MB of blobs, in test; load {loadavg()}")

    home = tempfile.mkdtemp(prefix="bench-skopeo-")
    authfile = os.path.join(home, "auth.json")
    fd = os.open(authfile, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": {e: {"auth": base64.b64encode(("promoter:" + bench.token).encode()).decode()}
                             for e in bench.environments.values()}}, handle)
    e2e_ns = "bench-e2e-copy"
    bench.ensure_namespace(e2e_ns)
    e2e_digest = bench.lab.push(e2e_ns, "big", "v1", layers, layer_size,
                                seed=f"bench-copy {int(layers)} x {int(layer_size)}")["digest"]
    rows = []
    try:
        for run in range(runs):
            tag = uuid.uuid4().hex[:8]
            row = {}
            cpu = row["cpu"] = {}
            started = time.monotonic()
            (counters, stats), cpu["ours"] = with_cpu(lambda tag=tag: engine_copy(
                bench, "test", "uat", source_repo, f"bench-ours-{tag}/big", digest, workers))
            row["ours"] = time.monotonic() - started
            row["ours_bytes_sent"] = counters["bytes_sent"]
            row["ours_requests"] = stats["by_method"]
            row["ingest"], cpu["ingest"] = with_cpu(lambda tag=tag: ingest(
                bench, "uat", f"bench-ingest-{tag}/big", blobs, len(blobs)))
            row["relay"], cpu["relay"] = with_cpu(lambda tag=tag: relay(
                bench, "test", source_repo, "uat", f"bench-relay-{tag}/big",
                {blob: len(data) for blob, data in blobs.items()}, len(blobs)))
            row["skopeo"], cpu["skopeo"] = with_cpu(lambda tag=tag: skopeo_copy(
                bench, authfile, home, f"{bench.environments['test']}/{source_repo}:v1",
                f"{bench.environments['uat']}/bench-skopeo-{tag}/big:v1"))
            # end to end: a fresh stream of the same image in the integrated registry, promoted to uat
            stream = f"big-{tag}"
            bench.tag_in_source(e2e_ns, stream, ["v1"], e2e_digest, from_stream="big")
            row["promote_yml"] = run_playbook(PROMOTE, {"project": e2e_ns, "image": stream + ":v1", "env": "uat"})[0]
            row["uploads_ours_skopeo"] = (count_uploads(bench, "uat", f"bench-ours-{tag}/big"),
                                          count_uploads(bench, "uat", f"bench-skopeo-{tag}/big"),
                                          count_uploads(bench, "uat", f"{e2e_ns}/{stream}"))
            rows.append(row)
            log("(a) run %d: ours %.2f s (%d bytes sent), ingest limit %.2f s, relay floor %.2f s, skopeo %.2f s, "
                "promote.yml %.2f s; blob uploads ours/skopeo/promote.yml %s; busy CPU seconds, the machine (the client's) %s" % (
                    run + 1, row["ours"], row["ours_bytes_sent"], row["ingest"], row["relay"], row["skopeo"],
                    row["promote_yml"], row["uploads_ours_skopeo"],
                    {name: "%.2f (%.2f)" % (value["machine"], value["client"]) for name, value in cpu.items()}))
    finally:
        shutil.rmtree(home, ignore_errors=True)
        cleanup(bench, "uat", ["bench-ours-", "bench-ingest-", "bench-relay-", "bench-skopeo-", e2e_ns + "/big-"],
                digest)
    ours, limit, floor, skopeo = (median([r[k] for r in rows]) for k in ("ours", "ingest", "relay", "skopeo"))
    e2e = median([r["promote_yml"] for r in rows])
    cores = os.cpu_count()
    variants = ("ours", "ingest", "relay", "skopeo")
    cpu = {name: median([r["cpu"][name]["machine"] for r in rows]) for name in variants}
    client = {name: median([r["cpu"][name]["client"] for r in rows]) for name in variants}
    servers = {name: median([r["cpu"][name]["machine"] - r["cpu"][name]["client"] for r in rows]) for name in variants}
    return {
        "image_bytes": size, "layers": layers, "runs": runs, "blob_workers": workers,
        "ours_seconds": [round(r["ours"], 3) for r in rows], "ours_median": ours,
        "ingest_limit_seconds": [round(r["ingest"], 3) for r in rows], "ingest_limit_median": limit,
        "relay_floor_seconds": [round(r["relay"], 3) for r in rows], "relay_floor_median": floor,
        "skopeo_seconds": [round(r["skopeo"], 3) for r in rows], "skopeo_median": skopeo,
        "promote_yml_seconds": [round(r["promote_yml"], 3) for r in rows], "promote_yml_median": e2e,
        "ours_vs_ingest_limit": round(ours / limit, 2),
        "ours_vs_relay_floor": round(ours / floor, 2),
        "relay_floor_vs_ingest_limit": round(floor / limit, 2),
        "skopeo_vs_ingest_limit": round(skopeo / limit, 2),
        "speedup_vs_skopeo": round(skopeo / ours, 2),
        "promote_yml_vs_skopeo": round(e2e / skopeo, 2),
        "ours_MBps": round(size / 1e6 / ours, 1), "ingest_limit_MBps": round(size / 1e6 / limit, 1),
        "ours_requests_per_run": rows[0]["ours_requests"],
        "bytes_sent_per_run": [r["ours_bytes_sent"] for r in rows],
        "blob_uploads_per_run_ours_skopeo_promote_yml": [r["uploads_ours_skopeo"] for r in rows],
        # the machine's busy CPU seconds during each (every process: registries, router, client);
        # divided by the cores, the least wall time that work can take here
        "cores": cores, "cpu_busy_seconds_median": cpu,
        "cpu_bound_seconds": {name: round(value / cores, 3) for name, value in cpu.items()},
        "ours_cpu_vs_ingest_cpu": round(cpu["ours"] / cpu["ingest"], 2),
        "relay_cpu_vs_ingest_cpu": round(cpu["relay"] / cpu["ingest"], 2),
        # the client's own CPU (this process, or skopeo) and the rest: the registries, the router
        # and the kernel's loopback, which no client can save; the rest of a copy divided by the
        # cores is the least wall time a copy could take here with a client that cost nothing
        "cpu_client_seconds_median": client, "cpu_servers_seconds_median": servers,
        "copy_bound_with_a_free_client_seconds": round(servers["ours"] / cores, 3),
        "copy_bound_with_a_free_client_vs_ingest_limit": round(servers["ours"] / cores / limit, 2),
        "load_after": loadavg(),
    }


SYSTEM_BLOB_CACHE = "/var/lib/containers/cache"


def cleanup(bench, env, prefixes, digest):
    """Unlink the benchmark's copies from ``env``'s registry (the blobs stay until a garbage
    collection; they are shared by every copy of the image anyway)."""
    registry = bench.client(env)
    try:
        for repository in registry.catalog():
            if repository.startswith(tuple(prefixes)):
                registry.delete_manifest(repository, digest)
    finally:
        registry.close()


def count_uploads(bench, env, repository):
    """Blob uploads into ``repository`` in ``env``'s access log: each one ends with the PUT that
    commits its digest, whether the bytes came in PATCH requests or in that PUT."""
    needle = f'"PUT /v2/{repository}/blobs/uploads/'
    count = 0
    for path in bench.access_logs(env):
        with open(path, errors="replace") as handle:
            count += sum(1 for line in handle if needle in line)
    return count


def fresh_cache(argv):
    """skopeo run as root keeps a system-wide blob-info cache (/var/lib/containers/cache) and
    mounts blobs it saw in the destination registry before: a fresh $HOME does not hide it. Run
    it in a private mount namespace with an empty tmpfs there, so every run is a real copy (the
    machine's cache is not touched)."""
    if os.geteuid() != 0:
        return argv  # an unprivileged skopeo uses $HOME, which is fresh every run
    return ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', SYSTEM_BLOB_CACHE] + argv


# ---------------------------------------------------------------------------------------------
# (b) a second tag of a present digest
# ---------------------------------------------------------------------------------------------


def bench_second_tag(bench, layer_size):
    namespace = f"bench-tag-{uuid.uuid4().hex[:6]}"
    bench.ensure_namespace(namespace)
    digest = bench.lab.push(namespace, "app", "v1", 5, layer_size, seed=f"bench second tag {namespace}")["digest"]
    bench.approve_all(namespace, "app", ["v1"], "test")
    policies = bench.inventory_environments(prod={"after": "uat"})

    def reconcile():
        entries, annotations = approvals(bench, namespace)
        stats = Stats()
        source = bench.client("default", stats=stats)
        destinations = {env: bench.client(env, stats=stats) for env in bench.environments}
        started = time.monotonic()
        outcome = promotion.reconcile(entries, policies, source, destinations, scope=Scope(namespaces=[namespace]),
                                      stream_annotations=annotations)
        return outcome, stats.to_dict(), time.monotonic() - started

    first = reconcile()[0]
    bench.tag_in_source(namespace, "app", ["v1-ga"], digest, from_stream="app")
    bench.tag_in_source(namespace, "app-mirror", ["v1"], digest, from_stream="app")
    bench.approve_all(namespace, "app", ["v1-ga"], "test")
    bench.approve_all(namespace, "app-mirror", ["v1"], "test")
    second, stats, seconds = reconcile()
    copies = [a for a in second["actions"] if a.get("result") == "copied"]
    return {
        "image_bytes_first_copy": sum(a.get("bytes_sent") or 0 for a in first["actions"]),
        "copies": [{k: a.get(k) for k in ("repository", "tag") + COUNTERS + ("seconds",)} for a in copies],
        "bytes_sent": sum(a.get("bytes_sent") or 0 for a in copies),
        "blob_bytes_sent": stats["blob_bytes_sent"],
        "reconcile_seconds": round(seconds, 3),
        "registry_requests": stats["requests"], "registry_requests_by_method": stats["by_method"],
    }


# ---------------------------------------------------------------------------------------------
# (c) steady state at 100, 1,000, 10,000 tags x 3 environments; (d) the HEAD baseline
# ---------------------------------------------------------------------------------------------


def steady_names(tags):
    streams = max(1, tags // TAGS_PER_STREAM)
    return [f"s{int(i):03}" for i in range(streams)], [f"t{int(i):03}" for i in range(min(tags, TAGS_PER_STREAM))]


def steady_setup(bench, tags):
    """Namespace bench-steady-<tags>: streams of 50 tags of one small image, approved for every
    environment and copied there. Cheap: one push, then per stream a mount and one manifest PUT
    per tag, one status update and one spec update."""
    namespace = f"bench-steady-{int(tags)}"
    names, tag_names = steady_names(tags)
    bench.ensure_namespace(namespace)
    entries = approvals(bench, namespace)[0]
    wanted = ",".join(sorted(bench.environments))
    ready = [e for e in entries if e.get("digest") and ",".join(e.get("environments") or []) == wanted]
    if len(ready) >= len(names) * len(tag_names):
        return namespace, names, tag_names
    started = time.monotonic()
    log(f"(c) setup: {len(names)} streams x {len(tag_names)} tags in namespace {namespace}")
    digest = bench.lab.push(namespace, names[0], tag_names[0], 1, 16 * 1024, seed="steady")["digest"]

    def one(name):
        bench.tag_in_source(namespace, name, tag_names, digest, from_stream=names[0])
        bench.approve_all(namespace, name, tag_names, wanted)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, names))
    entries, annotations = approvals(bench, namespace)
    source = bench.client("default")
    destinations = {env: bench.client(env) for env in bench.environments}
    policies = bench.inventory_environments()
    outcome = promotion.reconcile(entries, policies, source, destinations, scope=Scope(namespaces=[namespace]),
                                  stream_annotations=annotations, image_workers=8, blob_workers=8)
    log(f"(c) setup of {int(tags)} tags: {outcome['summary']} in {time.monotonic() - started:.0f} s")
    return namespace, names, tag_names


def curl_heads(bench, namespace, names, tag_names, parallel=8):
    """(d) The registries' own cost of answering the manifest HEADs of a steady-state run: every
    (tag, environment) HEADed by curl (HTTP/2 if offered), ``parallel`` transfers per registry, the
    three registries at once (as the module reads them). One pull token per repository, fetched first."""
    work = tempfile.mkdtemp(prefix="bench-heads-")
    try:
        configs = {}
        for env, endpoint in bench.environments.items():
            lines = []
            for name in names:
                auth = "Authorization: Bearer " + bench.bearer(env, [f"{namespace}/{name}"])
                for tag in tag_names:
                    lines += [f'url = "https://{endpoint}/v2/{namespace}/{name}/manifests/{tag}"',
                              f'header = "{auth}"', f'header = "Accept: {ACCEPT}"',
                              "head", "http2", f'cacert = "{bench.ca}"', "silent", 'output = "/dev/null"',
                              'write-out = "%{http_version} %{http_code}\\n"', "next"]
            path = os.path.join(work, env + ".cfg")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # it holds tokens
            with os.fdopen(fd, "w") as handle:
                handle.write("\n".join(lines[:-1]) + "\n")
            configs[env] = path
        started = time.monotonic()
        procs = {env: subprocess.Popen(["curl", "--parallel", "--parallel-max", str(parallel), "--config", path],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for env, path in configs.items()}
        outputs = {env: proc.communicate() for env, proc in procs.items()}
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    expected = len(names) * len(tag_names)
    for env, (out, err) in outputs.items():
        # one line per HEAD ("<HTTP version> <status>"); a missing tag costs its HEAD too
        answered = len(re.findall(rb"^[0-9.]+ (?:200|404)$", out, re.MULTILINE))
        if answered != expected:
            raise RuntimeError(f"curl HEADs on {env}: {int(answered)} of {int(expected)} answered 200 or 404: {err.decode(errors='replace')[-500:]}")
    heads = expected * len(configs)
    protocol = "HTTP/" + outputs[next(iter(outputs))][0].split(None, 1)[0].decode()
    return {"heads": heads, "seconds": round(seconds, 3), "ms_per_head": round(seconds / heads * 1000, 3),
            "protocol": protocol}


def bench_steady(bench, scales, runs, sample):
    figures = {"scales": {}}
    out_dir = tempfile.mkdtemp(prefix="bench-steady-")
    try:
        for tags in scales:
            namespace, names, tag_names = steady_setup(bench, tags)
            total = len(names) * len(tag_names)
            rows = []
            for run in range(runs):
                for _attempt in range(2):  # a setup left incomplete (a lab restart) is completed by the first
                    heads = curl_heads(bench, namespace, names, tag_names)
                    # the floor, in the same conditions: right after the same burst of HEADs
                    bare = run_playbook(NOOP)[0]
                    report = os.path.join(out_dir, f"rc-{int(tags)}-{int(run)}.json")
                    wall, _stdout, memory = run_playbook(RECONCILE, {
                        "project": namespace, "segmented_registry_reconcile_report_file": report},
                        module="reconcile")
                    with open(report) as handle:
                        result = json.load(handle)
                    if not (result.get("changed") or result.get("failures")):
                        break
                    log(f"(c) {int(tags)} tags: not a no-op ({result['summary']}); measuring again")
                else:
                    raise RuntimeError(f"the steady-state run of {int(tags)} tags was not a no-op: {result['summary']}")
                stats = result["stats"]
                rows.append({"wall": wall, "bare": bare, "module": stats["seconds"]["total"],
                             "read": stats["seconds"]["read"],
                             "startup": stats["seconds"]["startup"],
                             "process": memory.lifetime(), "rss_mib": round(memory.peak_kib / 1024, 1),
                             "api_calls": stats["api_calls"], "registry_requests": stats["registry_requests"],
                             "by_method": stats["registry_requests_by_method"],
                             "token_requests": stats["token_requests"], "curl": heads, "load": loadavg()})
                log("(c) %d tags run %d: wall %.2f s, module %.2f s (startup %.2f s, read %.2f s; process %.2f s), "
                    "bare playbook %.2f s, %d API calls, %d registry requests, peak RSS %.0f MiB; curl HEADs %.3f ms "
                    "each; load %s" % (
                        total, run + 1, wall, rows[-1]["module"], rows[-1]["startup"], rows[-1]["read"],
                        rows[-1]["process"] or 0, bare,
                        stats["api_calls"], stats["registry_requests"], rows[-1]["rss_mib"], heads["ms_per_head"],
                        rows[-1]["load"]))
            module, wall = median([r["module"] for r in rows]), median([r["wall"] for r in rows])
            overhead, bare = median([r["wall"] - r["module"] for r in rows]), median([r["bare"] for r in rows])
            curl = median([r["curl"]["ms_per_head"] for r in rows])
            per = module / (total * len(bench.environments)) * 1000
            figures["scales"][total] = {
                "streams": len(names), "runs": len(rows),
                "wall_seconds": [round(r["wall"], 2) for r in rows], "wall_median": wall,
                "module_seconds": [r["module"] for r in rows], "module_median": module,
                "module_startup_seconds": [r["startup"] for r in rows],
                "module_read_seconds": [r["read"] for r in rows],
                "module_process_seconds": [r["process"] for r in rows],
                "module_ms_per_tag_and_environment": round(per, 3),
                "curl_protocol": sorted(set(r["curl"]["protocol"] for r in rows)),
                "curl_ms_per_head": [r["curl"]["ms_per_head"] for r in rows], "curl_median_ms": curl,
                "module_vs_curl_head": round(per / curl, 2),
                "bare_playbook_seconds": [round(r["bare"], 2) for r in rows], "bare_playbook_median": bare,
                "overhead_seconds": [round(r["wall"] - r["module"], 2) for r in rows], "overhead_median": overhead,
                "overhead_vs_bare_playbook": round(overhead / bare, 2),
                "api_calls": rows[0]["api_calls"], "registry_requests": rows[0]["registry_requests"],
                "registry_requests_by_method": rows[0]["by_method"], "token_requests": rows[0]["token_requests"],
                "peak_rss_mib": max(r["rss_mib"] for r in rows), "load": [r["load"] for r in rows],
            }
            if total == 1000 and sample:
                figures["naive_loop"] = naive_loop(bench, namespace, names, tag_names, sample, wall, total)
        scales_done = figures["scales"]
        if 1000 in scales_done and 10000 in scales_done:
            small, large = scales_done[1000], scales_done[10000]
            # what each further tag and environment costs, the fixed cost (startup, client, lists) left out
            further = (10000 - 1000) * len(bench.environments)  # tag and environment pairs
            marginal = (large["module_median"] - small["module_median"]) / further * 1000
            figures["cost_10000_vs_1000"] = {
                "module": round(large["module_median"] / small["module_median"], 2),
                "wall": round(large["wall_median"] / small["wall_median"], 2),
                "module_marginal_ms_per_tag_and_environment": round(marginal, 3),
                "module_marginal_vs_curl_head": round(marginal / large["curl_median_ms"], 2)}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return figures


def naive_loop(bench, namespace, names, tag_names, sample, ours_wall, total):
    """The naive alternative over a sample of tags, extrapolated linearly to ``total``."""
    sample_tags = [{"stream": names[i % len(names)], "tag": tag_names[(i * 7) % len(tag_names)]}
                   for i in range(sample)]
    seconds, stdout, _memory = run_playbook(os.path.join(HERE, "naive_loop.yml"), {
        "naive_namespace": namespace, "naive_tags": sample_tags, "naive_token": bench.token,
        "naive_ca": bench.ca, "naive_kubeconfig": bench.lab.kubeconfig,
        "naive_context": bench.lab.layout.registry_cluster, "naive_realm": bench.realm("test"),
        "naive_environments": [{"name": env, "endpoint": endpoint, "service": bench.services[env]}
                               for env, endpoint in bench.environments.items()]})
    if "NAIVE-DRIFT" in stdout:
        raise RuntimeError("the naive loop saw drift; the setup is not converged")
    extrapolated = seconds / sample * total
    log(f"(c) naive loop: {int(sample)} tags in {seconds:.1f} s")
    return {"sample_tags": sample, "sample_seconds": round(seconds, 1), "extrapolated_seconds": round(extrapolated),
            "api_calls": total, "registry_requests": total * 6,
            "ours_speedup": round(extrapolated / ours_wall, 1)}


# ---------------------------------------------------------------------------------------------
# (e) promote.yml end to end for one small tag, against the bare playbook
# ---------------------------------------------------------------------------------------------


def bench_promote(bench, runs):
    namespace = "bench-e2e-small"
    bench.ensure_namespace(namespace)
    digest = bench.lab.push(namespace, "small", "v1", 1, 64 * 1024, seed="bench e2e small")["digest"]
    rows = []
    try:
        for run in range(runs):
            stream = f"small-{uuid.uuid4().hex[:8]}"
            bench.tag_in_source(namespace, stream, ["v1"], digest, from_stream="small")
            request = {"project": namespace, "image": stream + ":v1", "env": "test"}
            copy = run_playbook(PROMOTE, request)[0]
            again = run_playbook(PROMOTE, request)[0]
            bare = run_playbook(NOOP)[0]
            rows.append((copy, again, bare))
            log(f"(e) run {int(run + 1)}: promote.yml {copy:.2f} s (copy), {again:.2f} s (nothing to do), bare playbook {bare:.2f} s")
    finally:
        cleanup(bench, "test", [namespace + "/small-"], digest)
    copy, again, bare = (median([r[i] for r in rows]) for i in range(3))
    return {"runs": runs, "promote_seconds": [round(r[0], 2) for r in rows], "promote_median": copy,
            "nothing_to_do_seconds": [round(r[1], 2) for r in rows], "nothing_to_do_median": again,
            "bare_playbook_seconds": [round(r[2], 2) for r in rows], "bare_playbook_median": bare,
            "promote_vs_bare": round(copy / bare, 2), "nothing_to_do_vs_bare": round(again / bare, 2),
            "load_after": loadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="a,b,c,e", help="which benchmarks (a,b,c,e; c includes d)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each")
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-size", type=int, default=40 * MiB)
    parser.add_argument("--blob-workers", type=int, default=6)
    parser.add_argument("--scales", default="100,1000,10000", help="tag counts of (c), multiples of 50")
    parser.add_argument("--sample", type=int, default=10, help="tags of the naive loop at 1,000 tags (0: skip)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    bench = Bench()
    figures = {"machine": {"cpus": os.cpu_count(), "load_before": loadavg()}}
    wanted = set(args.only.split(","))
    sections = [
        ("a", "a_copy_210MB", lambda: bench_copy(bench, args.runs, args.layers, args.layer_size, args.blob_workers)),
        ("b", "b_second_tag", lambda: bench_second_tag(bench, 4 * MiB)),
        ("c", "c_steady_state", lambda: bench_steady(bench, [int(x) for x in args.scales.split(",")], args.runs,
                                                     args.sample)),
        ("e", "e_promote_yml", lambda: bench_promote(bench, args.runs)),
    ]
    for letter, name, measure in sections:
        if letter not in wanted:
            continue
        figures[name] = measure()
        save_figures(figures, args.json)  # after each section: a later failure keeps what was measured
    report(figures, args.json)


if __name__ == "__main__":
    main()
