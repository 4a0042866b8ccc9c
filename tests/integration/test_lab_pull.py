"""``labctl pull --cluster NAME IMAGE`` pulls as a node of that cluster: through containers/image
(skopeo) with the registries.conf and policy.json rendered from the cluster's own
ImageDigestMirrorSets and Image ``cluster`` (lab/nodepull.py). Source and mirror are real
registries of our own (CNCF distribution, the lab's token server); their access logs show which
one was contacted."""
import json
import os
import subprocess
import tempfile

import pytest
from kubernetes import client as kclient
from kubernetes.dynamic import DynamicClient

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import TOKEN_SERVER_AUDIENCE
from lab import image
from lab import labctl
from tests.integration.promotion_lab import PROMOTER_ROLE, REPO, ExtraRegistry

CLUSTER = "prod"


@pytest.fixture
def setup(lab, unique):
    """Source and mirror registries holding the same image, credentials for both, and the
    consumer cluster's API (objects created here are removed afterwards)."""
    namespace = "pull-" + unique
    registry_api = lab.api_client(lab.layout.registry_cluster)
    token = lab.service_account_token(namespace, "puller", [PROMOTER_ROLE], audiences=[TOKEN_SERVER_AUDIENCE])
    with tempfile.TemporaryDirectory(prefix="lab-pull-test-") as work:
        registries = []
        try:
            for name in ("source", "mirror"):
                os.makedirs(os.path.join(work, name))
                registries.append(ExtraRegistry(lab, os.path.join(work, name)).start())
            source, mirror = registries
            layout = os.path.join(work, "layout")
            image.build_oci_layout(layout, layers=2, layer_size=128 * 1024, seed=namespace)
            repo = "test/app-" + unique
            digests = {image.push(layout, f"{r.endpoint}/{repo}:v1", username="puller", password=token,
                                  ca_dir=lab.trust_dir) for r in registries}
            assert len(digests) == 1
            only_source = os.path.join(work, "only-source")
            image.build_oci_layout(only_source, layers=1, layer_size=64 * 1024, seed=namespace + "-only-source")
            only_source_digest = image.push(only_source, f"{source.endpoint}/{repo}:v2", username="puller",
                                            password=token, ca_dir=lab.trust_dir)
            auth = os.path.join(work, "auth.json")
            with open(auth, "w") as handle:
                json.dump({"auths": {r.endpoint: image.auth_config(r.endpoint, "puller", token)["auths"][r.endpoint]
                                     for r in registries}}, handle)
            yield {"source": source, "mirror": mirror, "repo": repo, "digest": digests.pop(), "auth": auth,
                   "only_source_digest": only_source_digest,
                   "dyn": DynamicClient(lab.api_client(CLUSTER)), "name": "lab-pull-" + unique}
        finally:
            for registry in registries:
                registry.stop()
            kclient.RbacAuthorizationV1Api(registry_api).delete_cluster_role_binding(
                f"{PROMOTER_ROLE}:{namespace}:puller")
            kclient.CoreV1Api(registry_api).delete_namespace(namespace)


def labctl_pull(reference, auth):
    """Run the command itself; returns (exit code, parsed stdout or None, stderr)."""
    proc = subprocess.run([os.path.join(REPO, "lab", "labctl"), "pull", "--cluster", CLUSTER,
                           "--authfile", auth, reference], capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, (json.loads(proc.stdout) if proc.returncode == 0 else None), proc.stderr


class Log:
    """What a registry's access log gained since this object was made."""

    def __init__(self, registry):
        self.path = registry.log
        self.offset = os.path.getsize(self.path)

    def new(self):
        with open(self.path) as handle:
            handle.seek(self.offset)
            return handle.read()


def _mirror_set(setup, policy):
    idms = setup["dyn"].resources.get(api_version="config.openshift.io/v1", kind="ImageDigestMirrorSet")
    idms.create(body={
        "apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet", "metadata": {"name": setup["name"]},
        "spec": {"imageDigestMirrors": [{
            "source": f"{setup['source'].endpoint}/{setup['repo']}",
            "mirrors": [f"{setup['mirror'].endpoint}/{setup['repo']}"],
            "mirrorSourcePolicy": policy}]}})
    return idms


def test_pull_by_digest_follows_the_digest_mirror_set_and_never_contacts_the_source(setup):
    source, mirror = setup["source"], setup["mirror"]
    by_digest = f"{source.endpoint}/{setup['repo']}@{setup['digest']}"
    # without a mirror set the node pulls from the source itself, and its log shows it
    log = Log(source)
    code, result, err = labctl_pull(by_digest, setup["auth"])
    assert code == 0, err
    assert f"/v2/{setup['repo']}/manifests/{setup['digest']}" in log.new()

    idms = _mirror_set(setup, "NeverContactSource")
    try:
        source_log, mirror_log = Log(source), Log(mirror)
        code, result, err = labctl_pull(by_digest, setup["auth"])
        assert code == 0, err
        assert result["digest"] == setup["digest"]
        assert f"/v2/{setup['repo']}/manifests/{setup['digest']}" in mirror_log.new()
        assert "/v2/" not in source_log.new()  # never contacted

        # an image only the source has: the mirror lacks it and the source may not be asked
        code, _out, err = labctl_pull(f"{source.endpoint}/{setup['repo']}@{setup['only_source_digest']}",
                                      setup["auth"])
        assert code == 1 and "cannot pull" in err
        assert "/v2/" not in source_log.new()
        # a tag is not mirrored by an ImageDigestMirrorSet, and the source is blocked: refused, uncontacted
        code, _out, err = labctl_pull(f"{source.endpoint}/{setup['repo']}:v1", setup["auth"])
        assert code == 1
        assert "cannot pull" in err and "blocked" in err
        assert "/v2/" not in source_log.new()
        with open(result["registries_conf"]) as handle:
            conf = handle.read()
        assert (f"location = \"{source.endpoint}/{setup['repo']}\"\n  blocked = true") in conf
        assert 'pull-from-mirror = "digest-only"' in conf
    finally:
        idms.delete(name=setup["name"])


def test_allowed_registries_reject_every_other_registry_with_a_clear_refusal(setup):
    images = setup["dyn"].resources.get(api_version="config.openshift.io/v1", kind="Image")
    original = images.get(name="cluster").to_dict()
    images.patch(name="cluster", content_type="application/merge-patch+json",
                 body={"spec": {"registrySources": {"allowedRegistries": [setup["mirror"].endpoint]}}})
    try:
        code, _out, err = labctl_pull(f"{setup['source'].endpoint}/{setup['repo']}@{setup['digest']}",
                                      setup["auth"])
        assert code == 1
        assert "the policy.json of cluster prod refuses" in err and "rejected by policy" in err
        code, result, err = labctl_pull(f"{setup['mirror'].endpoint}/{setup['repo']}:v1", setup["auth"])
        assert code == 0, err
        assert result["digest"] == setup["digest"]
        with open(result["policy_json"]) as handle:
            policy = json.load(handle)
        assert policy["default"] == [{"type": "reject"}]
        assert policy["transports"]["docker"] == {setup["mirror"].endpoint: [{"type": "insecureAcceptAnything"}]}
    finally:
        images.patch(name="cluster", content_type="application/merge-patch+json",
                     body={"spec": {"registrySources": (original.get("spec") or {}).get("registrySources")}})


def test_objects_the_operator_would_refuse_are_a_clear_error(setup, lab):
    idms = setup["dyn"].resources.get(api_version="config.openshift.io/v1", kind="ImageDigestMirrorSet")
    itms = setup["dyn"].resources.get(api_version="config.openshift.io/v1", kind="ImageTagMirrorSet")
    source = f"{setup['source'].endpoint}/{setup['repo']}"
    idms.create(body={"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
                      "metadata": {"name": setup["name"]},
                      "spec": {"imageDigestMirrors": [{"source": source, "mirrors": ["other.example.com/app"],
                                                       "mirrorSourcePolicy": "NeverContactSource"}]}})
    itms.create(body={"apiVersion": "config.openshift.io/v1", "kind": "ImageTagMirrorSet",
                      "metadata": {"name": setup["name"]},
                      "spec": {"imageTagMirrors": [{"source": source, "mirrors": ["other.example.com/app"],
                                                    "mirrorSourcePolicy": "AllowContactingSource"}]}})
    try:
        with pytest.raises(labctl.LabError) as error:
            lab.pull(CLUSTER, source + "@" + setup["digest"], setup["auth"])
        assert f"ImageTagMirrorSet {setup['name']}: spec.imageTagMirrors[0].mirrorSourcePolicy" in str(error.value)
    finally:
        idms.delete(name=setup["name"])
        itms.delete(name=setup["name"])
