"""Benchmarks of the promotion engine (issue 4), on the running lab. Figures, not asserts.

    .venv/bin/python bench/bench_promote.py [--only a,b,c] [--runs 3] [--json out.json]

(a) copy: a 5-layer image of about 200 MB (5 x 40 MiB of incompressible data) from the test
    registry to the uat registry: segmented.registry's copier (plugins/module_utils/sync.py,
    in-process, fresh clients, tokens and destination repository every run) against
    ``skopeo copy --all`` (fresh blob-info cache, i.e. fresh $HOME, every run) on the same
    registries in the same run, interleaved. Median of each, ratio of medians.
(b) second tag: promote another tag of a digest the test registry already holds, in the same
    repository and in another repository (mount): blob bytes sent and time of the reconcile.
(c) steady state: 1,000 tags (20 streams x 50 tags) approved for test, uat and prod and already
    in place; a reconcile run of the module (ansible-playbook, as a job runs it) that finds nothing
    to do: wall time, API calls, registry requests. Against a naive playbook that loops over the
    tags with kubernetes.core.k8s_info + ansible.builtin.uri (a token and a manifest HEAD per
    environment); the loop runs over a sample (50 tags by default) and is extrapolated linearly to
    1,000 tags. Ratio of the two.

Sized for a 2-core machine; it runs on demand, never in CI. It needs the lab up (lab/labctl up) and
applies lab/promoter.yml. Setup for (c) is kept in namespace ``bench-steady`` and reused.
"""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "lab"))

import promotion_lab as pl  # noqa: E402  (lays out ansible_collections, lab helpers)
from kubernetes import client as kclient  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402

import labctl  # noqa: E402
from ansible_collections.segmented.registry.plugins.module_utils import imagestreams, oci, sync  # noqa: E402

MiB = 1024 * 1024
KEY = "segmented.registry/environments"
ENVS = {"test": "localhost:5101", "uat": "localhost:5102", "prod": "localhost:5103"}
STEADY_NS = "bench-steady"
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def log(text):
    print(text, file=sys.stderr, flush=True)


def ensure_namespace(lab, name):
    try:
        kclient.CoreV1Api(lab.api_client(lab.layout.registry_cluster)).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def streams_resource(lab):
    return DynamicClient(lab.api_client(lab.layout.registry_cluster)).resources.get(
        api_version="image.openshift.io/v1", kind="ImageStream")


def approve_all(lab, namespace, stream, tags, value):
    """Write the whitelist annotation on every tag of a stream in one ImageStream update."""
    resource = streams_resource(lab)
    for _attempt in range(10):
        body = resource.get(name=stream, namespace=namespace).to_dict()
        spec_tags = {t["name"]: t for t in (body.get("spec") or {}).get("tags") or []}
        for tag in tags:
            item = spec_tags.setdefault(tag, {"name": tag, "referencePolicy": {"type": "Source"}})
            item.setdefault("annotations", {})[KEY] = value
        body.setdefault("spec", {})["tags"] = [spec_tags[name] for name in sorted(spec_tags)]
        try:
            resource.replace(body=body, namespace=namespace)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise RuntimeError("could not annotate %s/%s" % (namespace, stream))


def record_all(lab, namespace, stream, tags, digest):
    """Record many tags of one digest in the ImageStream status in one status update."""
    resource = streams_resource(lab)
    for _attempt in range(10):
        body = resource.get(name=stream, namespace=namespace).to_dict()
        status = body.get("status") or {}
        for tag in tags:
            status, _changed = pl.image.add_tag_event(status, tag, pl.image.make_tag_event(
                lab.layout.integrated_endpoint, namespace, stream, digest, body["metadata"].get("generation") or 1,
                pl.image.rfc3339_now()))
        body["status"] = status
        try:
            resource.status.replace(body=body, namespace=namespace)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise RuntimeError("could not record %s/%s" % (namespace, stream))


class _Client:
    """What imagestreams.Registry needs of kubernetes.core's client, over a plain DynamicClient."""

    def __init__(self, dyn):
        self.dyn = dyn

    def resource(self, kind, api_version):
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def get(self, resource, **kwargs):
        return self.dyn.get(resource, **kwargs)


def whitelist(lab, namespace):
    """Entries and stream annotations through issue 3's reader: one list call."""
    registry = imagestreams.Registry(_Client(DynamicClient(lab.api_client(lab.layout.registry_cluster))))
    entries, annotations = [], {}
    for stream in registry.list(namespace):
        meta = stream["metadata"]
        annotations["%s/%s" % (meta["namespace"], meta["name"])] = meta.get("annotations") or {}
        entries.extend(imagestreams.tag_entries(stream, KEY))
    return entries, annotations


def clients(lab, token, stats=None):
    stats = stats or oci.Stats()
    source = pl.client(lab, lab.layout.integrated_endpoint, token, name="default", stats=stats)
    destinations = dict((env, pl.client(lab, endpoint, token, name=env, stats=stats))
                        for env, endpoint in ENVS.items())
    return source, destinations, stats


# ---------------------------------------------------------------------------------------------
# (a) a 200 MB copy: ours vs skopeo
# ---------------------------------------------------------------------------------------------


def bench_copy(lab, token, runs, layers, layer_size, workers):
    namespace = "bench-copy"
    ensure_namespace(lab, namespace)
    pushed = lab.push(namespace, "big", "v1", layers, layer_size, seed="bench-copy %d x %d" % (layers, layer_size))
    digest = pushed["digest"]
    source_repo = "%s/big" % namespace
    # the image, into the test registry (the source of the measured copies)
    integrated = pl.client(lab, lab.layout.integrated_endpoint, token, name="default")
    test = pl.client(lab, ENVS["test"], token, name="test")
    executor = sync.Executor(integrated, {"test": test}, image_workers=1, blob_workers=workers)
    with executor_pool(executor):
        counters = {"bytes_sent": 0, "blobs_sent": 0, "blobs_mounted": 0, "blobs_present": 0, "manifests_put": 0}
        executor.copy("test", source_repo, "v1", digest, counters)
    size = sum(b["size"] or 0 for b in oci.parse_manifest(*_manifest(test, source_repo, digest))["blobs"])
    log("(a) image %s: %d layers, %.1f MB of blobs, in test" % (digest[:19], layers, size / 1e6))

    home = tempfile.mkdtemp(prefix="bench-skopeo-")
    authfile = os.path.join(home, "auth.json")
    with open(authfile, "w") as handle:
        json.dump({"auths": {e: {"auth": base64.b64encode(("promoter:" + token).encode()).decode()}
                             for e in ENVS.values()}}, handle)
    os.chmod(authfile, 0o600)
    ours, theirs, sent, uploads = [], [], [], []
    try:
        for run in range(runs):
            tag = uuid.uuid4().hex[:8]
            # ours: fresh clients (new connections, new tokens), fresh destination repository
            started = time.monotonic()
            src = pl.client(lab, ENVS["test"], token, name="test")
            dst = pl.client(lab, ENVS["uat"], token, name="uat")
            executor = sync.Executor(src, {"uat": dst}, image_workers=1, blob_workers=workers)
            with executor_pool(executor):
                counters = {"bytes_sent": 0, "blobs_sent": 0, "blobs_mounted": 0, "blobs_present": 0,
                            "manifests_put": 0}
                executor.copy("uat", "bench-ours-%s/big" % tag, "v1", digest, counters, source_repository=source_repo)
            ours.append(time.monotonic() - started)
            sent.append(counters["bytes_sent"])
            src.close()
            dst.close()
            # skopeo: fresh $HOME (no blob-info cache: no mount shortcut), fresh destination repository
            run_home = tempfile.mkdtemp(prefix="home-", dir=home)
            started = time.monotonic()
            argv = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--authfile", authfile,
                    "--src-cert-dir", lab.trust_dir, "--dest-cert-dir", lab.trust_dir,
                    "docker://%s/%s:v1" % (ENVS["test"], source_repo),
                    "docker://%s/bench-skopeo-%s/big:v1" % (ENVS["uat"], tag)]
            proc = subprocess.run(fresh_cache(argv), capture_output=True, text=True, env=dict(os.environ, HOME=run_home),
                                  timeout=900, check=False)
            theirs.append(time.monotonic() - started)
            if proc.returncode != 0:
                raise RuntimeError("skopeo copy failed: %s" % proc.stderr[-1000:])
            uploads.append((count_uploads(lab, "uat", "bench-ours-%s/big" % tag),
                            count_uploads(lab, "uat", "bench-skopeo-%s/big" % tag)))
            log("(a) run %d: ours %.2f s (%d bytes of blobs sent, %d blob uploads), skopeo %.2f s (%d blob uploads)" % (
                run + 1, ours[-1], sent[-1], uploads[-1][0], theirs[-1], uploads[-1][1]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
        cleanup(lab, token, "uat", ["bench-ours-", "bench-skopeo-"], digest)
    return {
        "image_bytes": size, "layers": layers, "runs": runs, "blob_workers": workers,
        "ours_seconds": [round(s, 3) for s in ours], "skopeo_seconds": [round(s, 3) for s in theirs],
        "ours_median": round(statistics.median(ours), 3), "skopeo_median": round(statistics.median(theirs), 3),
        "speedup_vs_skopeo": round(statistics.median(theirs) / statistics.median(ours), 2),
        "ours_MBps": round(size / 1e6 / statistics.median(ours), 1),
        "bytes_sent_per_run": sent,
        "blob_uploads_per_run_ours_skopeo": uploads,
        "note": "both tools copy every blob every run (blob uploads counted in the destination registry's access "
                "log); skopeo runs with an empty private blob-info cache so that it cannot mount blobs it saw before",
    }


SYSTEM_BLOB_CACHE = "/var/lib/containers/cache"


def cleanup(lab, token, env, prefixes, digest):
    """Unlink the benchmark's copies from ``env``'s registry (the blobs stay until a garbage
    collection; they are shared by every copy of the image anyway)."""
    registry = pl.client(lab, ENVS[env], token, name=env)
    try:
        for repository in registry.catalog():
            if repository.startswith(tuple(prefixes)):
                registry.delete_manifest(repository, digest)
    finally:
        registry.close()


def count_uploads(lab, env, repository):
    """Blob uploads (PATCH requests) into ``repository`` in the access log of ``env``'s registry."""
    needle = '"PATCH /v2/%s/blobs/uploads/' % repository
    with open(lab.procs.log_path("registry-" + env), errors="replace") as handle:
        return sum(1 for line in handle if needle in line)


def fresh_cache(argv):
    """skopeo run as root keeps a system-wide blob-info cache (/var/lib/containers/cache) and
    mounts blobs it saw in the destination registry before: a fresh $HOME does not hide it. Run
    it in a private mount namespace with an empty tmpfs there, so every run is a real copy (the
    machine's cache is not touched)."""
    if os.geteuid() != 0:
        return argv  # an unprivileged skopeo uses $HOME, which is fresh every run
    return ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', SYSTEM_BLOB_CACHE] + argv


class executor_pool:
    """Executor.copy outside execute(): give it its blob pool."""

    def __init__(self, executor):
        self.executor = executor

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor
        self.pool = ThreadPoolExecutor(max_workers=self.executor.blob_workers)
        self.executor._blob_pool = self.pool
        return self.executor

    def __exit__(self, *exc):
        self.pool.shutdown()


def _manifest(registry, repository, digest):
    manifest = registry.get_manifest(repository, digest)
    return manifest["data"], manifest["media_type"]


# ---------------------------------------------------------------------------------------------
# (b) a second tag of a present digest
# ---------------------------------------------------------------------------------------------


def bench_second_tag(lab, token, layer_size):
    namespace = "bench-tag-%s" % uuid.uuid4().hex[:6]
    ensure_namespace(lab, namespace)
    digest = lab.push(namespace, "app", "v1", 5, layer_size, seed="bench second tag %s" % namespace)["digest"]
    approve_all(lab, namespace, "app", ["v1"], "test")
    policies = {"test": {}, "uat": {}, "prod": {"after": "uat"}}
    entries, annotations = whitelist(lab, namespace)
    source, destinations, stats = clients(lab, token)
    first = sync.reconcile(entries, policies, source, destinations, scope=sync.Scope(namespaces=[namespace]),
                           stream_annotations=annotations)
    moved_first = sum(a.get("bytes_sent") or 0 for a in first["actions"])
    pl.tag_in_source(lab, namespace, "app", "v1-ga", digest)
    pl.tag_in_source(lab, namespace, "app-mirror", "v1", digest, from_stream="app")
    approve_all(lab, namespace, "app", ["v1-ga"], "test")
    approve_all(lab, namespace, "app-mirror", ["v1"], "test")
    entries, annotations = whitelist(lab, namespace)
    source, destinations, stats = clients(lab, token)
    started = time.monotonic()
    second = sync.reconcile(entries, policies, source, destinations, scope=sync.Scope(namespaces=[namespace]),
                            stream_annotations=annotations)
    seconds = time.monotonic() - started
    copies = [a for a in second["actions"] if a.get("result") == "copied"]
    return {
        "image_bytes_first_copy": moved_first,
        "second_tag_same_repository": {k: v for k, v in copies[0].items() if k in (
            "repository", "tag", "bytes_sent", "blobs_sent", "blobs_present", "blobs_mounted")}
        if copies else None,
        "copies": [{k: a.get(k) for k in ("repository", "tag", "bytes_sent", "blobs_sent", "blobs_present",
                                          "blobs_mounted", "seconds")} for a in copies],
        "bytes_sent": sum(a.get("bytes_sent") or 0 for a in copies),
        "reconcile_seconds": round(seconds, 3),
        "registry_requests": stats.to_dict()["requests"],
    }


# ---------------------------------------------------------------------------------------------
# (c) steady state, 1,000 tags x 3 environments
# ---------------------------------------------------------------------------------------------


def steady_setup(lab, token, streams, per_stream):
    ensure_namespace(lab, STEADY_NS)
    names = ["s%02d" % i for i in range(streams)]
    tags = ["t%03d" % i for i in range(per_stream)]
    entries = whitelist(lab, STEADY_NS)[0]
    approved = [e for e in entries if e["stream"] in names and e["tag"] in tags
                and e.get("environments") == ["prod", "test", "uat"] and e.get("digest")]
    if len(approved) < streams * per_stream:
        log("(c) setup: %d streams x %d tags in namespace %s" % (streams, per_stream, STEADY_NS))
        for name in names:
            digest = lab.push(STEADY_NS, name, tags[0], 1, 16 * 1024, seed="steady %s" % name)["digest"]
            builder = pl.client(lab, lab.layout.integrated_endpoint, lab.builder_token(STEADY_NS), name="integrated")
            manifest = builder.get_manifest("%s/%s" % (STEADY_NS, name), digest)
            for tag in tags[1:]:
                builder.put_manifest("%s/%s" % (STEADY_NS, name), tag, manifest["data"], manifest["media_type"])
            builder.close()
            record_all(lab, STEADY_NS, name, tags, digest)
            approve_all(lab, STEADY_NS, name, tags, "prod,test,uat")
    entries, annotations = whitelist(lab, STEADY_NS)
    source, destinations, stats = clients(lab, token)
    started = time.monotonic()
    converge = sync.reconcile(entries, {"test": {}, "uat": {}, "prod": {"after": "uat"}}, source, destinations,
                              scope=sync.Scope(namespaces=[STEADY_NS]), stream_annotations=annotations,
                              image_workers=8, blob_workers=8)
    log("(c) converge: %s in %.1f s" % (converge["summary"], time.monotonic() - started))
    return names, tags


def run_playbook(playbook, extravars, inventory=None):
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), playbook, "-e", json.dumps(extravars)]
    if inventory:
        argv[2:2] = ["-i", inventory]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=VENV_BIN + ":" + os.environ["PATH"],
               ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (playbook, proc.stdout[-3000:]))
    return seconds, proc.stdout


def bench_steady(lab, token, runs, streams, per_stream, sample):
    names, tags = steady_setup(lab, token, streams, per_stream)
    total = len(names) * len(tags)
    out_dir = tempfile.mkdtemp(prefix="bench-steady-")
    try:
        ours = []
        for run in range(runs):
            out = os.path.join(out_dir, "rc-%d.json" % run)
            seconds = run_playbook(os.path.join(REPO, "tests", "integration", "playbooks", "reconcile.yml"), {
                "rc_args": {"environments": pl.lab_environments(lab),
                            "integrated_registry": lab.layout.integrated_endpoint,
                            "integrated_ca_cert": lab.ca.cert_path, "service_account": pl.PROMOTER,
                            "namespace": [STEADY_NS]},
                "rc_auth": {"kubeconfig": lab.kubeconfig, "context": lab.layout.registry_cluster},
                "rc_out": out})[0]
            with open(out) as handle:
                result = json.load(handle)
            if result.get("failed") or result.get("changed"):
                raise RuntimeError("steady-state run was not a no-op: %s" % result.get("msg") or result["summary"])
            ours.append((seconds, result))
            log("(c) ours run %d: %.2f s wall (module %.2f s), %s, %d API calls, %d registry requests" % (
                run + 1, seconds, result["stats"]["seconds"]["total"], result["summary"],
                result["stats"]["api_calls"], result["stats"]["registry_requests"]))
        # the naive loop, over a sample
        sample_tags = [{"stream": names[i % len(names)], "tag": tags[(i * 7) % len(tags)]} for i in range(sample)]
        seconds, stdout = run_playbook(os.path.join(HERE, "naive_loop.yml"), {
            "naive_namespace": STEADY_NS, "naive_tags": sample_tags, "naive_token": token,
            "naive_ca": lab.ca.cert_path, "naive_kubeconfig": lab.kubeconfig,
            "naive_context": lab.layout.registry_cluster,
            "naive_environments": [{"name": env, "endpoint": endpoint, "service": "env-" + env}
                                   for env, endpoint in ENVS.items()]})
        if "NAIVE-DRIFT" in stdout:
            raise RuntimeError("the naive loop saw drift; the setup is not converged")
        log("(c) naive loop: %d tags in %.1f s" % (sample, seconds))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    walls = [item[0] for item in ours]
    median_run = sorted(ours, key=lambda item: item[0])[len(ours) // 2][1]
    naive_total = seconds / sample * total
    return {
        "tags": total, "environments": 3, "runs": runs,
        "ours_wall_seconds": [round(s, 2) for s in walls], "ours_wall_median": round(statistics.median(walls), 2),
        "ours_module_seconds": median_run["stats"]["seconds"],
        "ours_api_calls": median_run["stats"]["api_calls"],
        "ours_registry_requests": median_run["stats"]["registry_requests"],
        "ours_registry_requests_by_method": median_run["stats"]["registry_requests_by_method"],
        "ours_token_requests": median_run["stats"]["token_requests"],
        "naive_sample_tags": sample, "naive_sample_seconds": round(seconds, 1),
        "naive_api_calls_per_tag": 1, "naive_registry_requests_per_tag": 6,
        "naive_extrapolated_seconds": round(naive_total, 0),
        "naive_extrapolated_api_calls": total, "naive_extrapolated_registry_requests": total * 6,
        "speedup_vs_naive": round(naive_total / statistics.median(walls), 1),
        "note": "the naive loop ran over %d tags and is extrapolated linearly to %d" % (sample, total),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="a,b,c", help="which benchmarks (a,b,c)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-size", type=int, default=40 * MiB)
    parser.add_argument("--blob-workers", type=int, default=6)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--tags-per-stream", type=int, default=50)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    lab = labctl.Lab()
    if not lab.status()["all_running"]:
        sys.exit("the lab is not running: lab/labctl up")
    token = pl.promoter_token(lab)
    figures = {"machine": {"cpus": os.cpu_count()}}
    wanted = set(args.only.split(","))
    if "a" in wanted:
        figures["a_copy_200MB"] = bench_copy(lab, token, args.runs, args.layers, args.layer_size, args.blob_workers)
    if "b" in wanted:
        figures["b_second_tag"] = bench_second_tag(lab, token, 4 * MiB)
    if "c" in wanted:
        figures["c_steady_state"] = bench_steady(lab, token, args.runs, args.streams, args.tags_per_stream,
                                                 args.sample)
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
