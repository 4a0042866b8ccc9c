"""Every plugin, and every option that says when it came, names a collection version that exists:
not later than galaxy.yml's version (the one being released), in the form antsibull-changelog
reads (a release of this collection, not of ansible-core)."""

import ast
import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLUGINS = [os.path.join(root, name) for kind in ("modules", "lookup", "action")
           for root, _dirs, names in os.walk(os.path.join(REPO, "plugins", kind)) for name in sorted(names)
           if name.endswith(".py") and name != "__init__.py"]


def version(text):
    return tuple(int(part) for part in str(text).split("."))


def galaxy_version():
    with open(os.path.join(REPO, "galaxy.yml")) as handle:
        return version(yaml.safe_load(handle)["version"])


def documentation(path):
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DOCUMENTATION"]:
            return yaml.safe_load(node.value.value)
    return None


def added(options, where):
    for name, option in (options or {}).items():
        if "version_added" in option:
            yield f"{where}.{name}", option["version_added"]
        yield from added(option.get("suboptions"), f"{where}.{name}")


@pytest.mark.parametrize("path", PLUGINS, ids=lambda path: os.path.relpath(path, REPO))
def test_version_added_is_a_version_of_this_collection(path):
    doc = documentation(path)
    if doc is None:  # an action plugin beside its module: the module documents it
        assert os.path.basename(os.path.dirname(path)) == "action", path
        return
    assert "version_added" in doc, f"{path}: no version_added"
    found = [("the plugin", doc["version_added"])] + list(added(doc.get("options"), "options"))
    late = [(where, value) for where, value in found if version(value) > galaxy_version()]
    assert not late, f"{os.path.relpath(path, REPO)}: version_added later than galaxy.yml's version: {late}"
