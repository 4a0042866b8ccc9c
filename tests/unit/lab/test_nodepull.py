"""lab/nodepull.py renders registries.conf and policy.json as the machine-config operator does:
each case in golden/ holds inputs and the files the operator's own test fixtures expect."""
import json
import os
import tomllib

import pytest
import yaml

from lab import nodepull

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
CASES = sorted(d for d in os.listdir(GOLDEN) if os.path.isdir(os.path.join(GOLDEN, d)))


def _read(case, name):
    with open(os.path.join(GOLDEN, case, name)) as handle:
        return handle.read()


def _inputs(case):
    data = yaml.safe_load(_read(case, "input.yaml"))
    return data["image"], data["imageDigestMirrorSets"], data["imageTagMirrorSets"]


def test_there_are_golden_cases():
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_registries_conf_matches_golden(case):
    rendered = nodepull.render_registries_conf(*_inputs(case))
    assert rendered == _read(case, "registries.conf")
    tomllib.loads(rendered)  # and it is TOML


@pytest.mark.parametrize("case", CASES)
def test_policy_json_matches_golden(case):
    image = _inputs(case)[0]
    rendered = nodepull.render_policy_json(image)
    assert rendered == _read(case, "policy.json")
    json.loads(rendered)


def _idms(*entries, name="idms"):
    return {"metadata": {"name": name}, "spec": {"imageDigestMirrors": list(entries)}}


def _itms(*entries, name="itms"):
    return {"metadata": {"name": name}, "spec": {"imageTagMirrors": list(entries)}}


@pytest.mark.parametrize("image, idms, itms, message", [
    ({"spec": {"registrySources": {"allowedRegistries": ["a.io"], "blockedRegistries": ["b.io"]}}}, [], [],
     "only one of them may be set"),
    ({"spec": {"registrySources": {"insecureRegistries": ["*.a.io/ns"]}}}, [], [],
     "spec.registrySources.insecureRegistries has '*.a.io/ns'"),
    (None, [_idms({"source": "registry-b.com", "mirrors": ["m.io"]})],
     [_itms({"source": "registry-b.com", "mirrors": ["t.io"], "mirrorSourcePolicy": "NeverContactSource"})],
     "ImageTagMirrorSet itms: spec.imageTagMirrors[0].mirrorSourcePolicy NeverContactSource conflicts"),
    (None, [_idms({"source": "a.io/x", "mirrors": ["a.io/x", "m.io/x"], "mirrorSourcePolicy": "NeverContactSource"})], [],
     "NeverContactSource with the source 'a.io/x' among its mirrors"),
    (None, [_idms({"source": "a.io/UPPER", "mirrors": ["m.io"]})], [],
     "spec.imageDigestMirrors[0].source 'a.io/UPPER' is not a registry scope"),
    (None, [_idms({"source": "a.io", "mirrors": ["m.io", "bad mirror"]})], [],
     "spec.imageDigestMirrors[0].mirrors has 'bad mirror'"),
])
def test_what_the_operator_refuses_is_a_clear_error(image, idms, itms, message):
    with pytest.raises(nodepull.RenderError) as error:
        nodepull.render(image, idms, itms)
    assert message in str(error.value)


def test_a_mirror_set_that_only_repeats_its_source_is_ignored():
    # runtime-utils mergedMirrorsetsTestcases "Mirrors includes only source"
    idms = _idms({"source": "source.example.com", "mirrors": ["source.example.com"]},
                 {"source": "source.example.net", "mirrors": ["source.example.net"] * 3})
    assert nodepull.render_registries_conf(None, [idms]) == _read("unchanged", "registries.conf")


@pytest.mark.parametrize("lists, order", [
    # runtime-utils mergedMirrorsetsTestcases "Sets with a shared element - strict order"
    ([["z1", "y2", "S"], ["y2", "x3", "S"]], ["z1", "y2", "x3", "S"]),
    # "Source included in mirrors"
    ([["z1", "S", "y2"], ["S", "y2", "x3"]], ["z1", "S", "y2", "x3"]),
    # a conflict (a, b vs b, a) is broken deterministically
    ([["b", "a"], ["a", "b"]], ["a", "b"]),
])
def test_merge_orders(lists, order):
    assert nodepull.merge_orders(lists) == order


def test_mirrors_for_names_where_a_reference_is_pulled_from():
    mirror_set = {"source": "registry.apps.example.com", "mirrors": ["prod-registry.example.com"],
                  "mirrorSourcePolicy": "NeverContactSource"}
    conf = nodepull.render_registries_conf(
        {"spec": {}}, [{"metadata": {"name": "a"}, "spec": {"imageDigestMirrors": [mirror_set]}}],
        [{"metadata": {"name": "a"}, "spec": {"imageTagMirrors": [mirror_set]}}])
    by_tag = nodepull.mirrors_for(conf, "registry.apps.example.com/myproject/app:v1")
    assert by_tag == {"source_blocked": True, "mirrors": [
        {"location": "prod-registry.example.com/myproject/app", "pull_from_mirror": "tag-only"}]}
    by_digest = nodepull.mirrors_for(conf, "registry.apps.example.com/myproject/app@sha256:" + "0" * 64)
    assert [m["pull_from_mirror"] for m in by_digest["mirrors"]] == ["digest-only"]
    assert nodepull.mirrors_for(conf, "quay.io/x/y:v1") == {"source_blocked": False, "mirrors": []}
