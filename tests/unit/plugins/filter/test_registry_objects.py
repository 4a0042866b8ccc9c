"""What the registry-cluster role removes for an environment marked absent
(plugins/filter/registry_objects.py), checked against what its templates make."""
import os

import yaml

from ansible_collections.segmented.registry.plugins.filter.registry_objects import FilterModule, registry_objects, retired_objects

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "registry_cluster", "templates")


def test_every_object_of_the_registry_and_each_pushers_binding_in_that_namespace():
    objects = registry_objects("retired", ["segmented-registry-promotion/promoter", "ci/pusher"])
    assert {o["metadata"]["namespace"] for o in objects} == {"retired"}
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert names[:2] == [("Route", "registry"), ("Service", "registry")], "the way in goes first"
    assert names.index(("Deployment", "registry")) < names.index(("ConfigMap", "registry-config"))
    assert ("Secret", "registry-config") in names, "what versions up to 0.1.0 made goes too"
    assert names[-2:] == [("RoleBinding", "segmented-registry:promoter:segmented-registry-promotion:promoter"),
                          ("RoleBinding", "segmented-registry:promoter:ci:pusher")]
    assert ("PersistentVolumeClaim", "registry-storage") not in names, "the storage stays"
    assert len(set(names)) == len(names)


def test_the_kinds_and_names_are_those_the_templates_make():
    """Every object of templates/registry.yml.j2 and registry-gc.yml.j2 but the namespace and the
    claim is removed (read from the templates' text, where the names are literal)."""
    made = set()
    for template in ("registry.yml.j2", "registry-gc.yml.j2"):
        with open(os.path.join(TEMPLATES, template)) as handle:
            text = handle.read()
        for document in text.split("\n---"):
            kind = [line.split(":", 1)[1].strip() for line in document.splitlines() if line.startswith("kind:")]
            name = [line.split(":", 1)[1].strip() for line in document.splitlines() if line.startswith("  name:")]
            if kind and name and "{" not in name[0]:
                made.add((kind[0], name[0]))
    assert len(made) >= 10, made
    removed = {(o["kind"], o["metadata"]["name"]) for o in registry_objects("x", [])}
    assert made - {("PersistentVolumeClaim", "registry-storage")} <= removed, made - removed


def test_retired_objects_are_the_configuration_secret_of_each_namespace_and_nothing_the_templates_make():
    objects = retired_objects([{"name": "test", "namespace": "test", "state": "present"},
                               {"name": "old", "namespace": "registry-old", "state": "absent"},
                               {"name": "uat", "namespace": "registry-uat", "state": "present"}])
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "test", "registry-config"), ("Secret", "registry-uat", "registry-config")]
    assert retired_objects([]) == []
    found = [{"kind": "Secret", "metadata": {"namespace": "registry-uat", "name": "registry-config"}},
             {"metadata": {"namespace": "registry-old", "name": "registry-config"}},
             {"kind": "ConfigMap", "metadata": {"namespace": "test", "name": "registry-config"}},
             {"kind": "Secret", "metadata": {"namespace": "test", "name": "something-else"}}]
    objects = retired_objects([{"name": "test", "namespace": "test", "state": "present"},
                               {"name": "old", "namespace": "registry-old", "state": "absent"},
                               {"name": "uat", "namespace": "registry-uat", "state": "present"}], found)
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "registry-uat", "registry-config")], "only those found, of environments present"
    assert retired_objects([{"name": "test", "namespace": "test", "state": "present"}], []) == [], "none found: nothing to run"
    for template in ("registry.yml.j2", "registry-gc.yml.j2"):
        with open(os.path.join(TEMPLATES, template)) as handle:
            assert "kind: Secret\nmetadata:\n  name: registry-config" not in handle.read()


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"registry_objects", "retired_objects"}
    for name in FilterModule().filters():
        with open(os.path.join(TEMPLATES, "..", "..", "..", "plugins", "filter", name + ".yml")) as handle:
            assert yaml.safe_load(handle)["DOCUMENTATION"]["name"] == name
