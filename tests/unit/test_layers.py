"""The layer rules of plugins/module_utils, read from the imports of every file.

Each package of module_utils is a layer; a layer imports only the layers below it (``LAYERS``
says which), so the promotion engine can use OCI and approval lists but an OCI client never
reaches back into promotion, and the pure base (names, text, retry, query, errors, kinds) depends on nothing of
ours. kubernetes.core is reached through one seam, ``kube.py``; a cluster is talked to through
``cluster.py`` (its own layer above ``kube``); the Kubernetes client itself only in ``kube.py`` and
in the places ``CLIENT_OUTSIDE_SEAM`` names (debt, listed so that it cannot grow).
"""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
OURS = "ansible_collections.segmented.registry.plugins.module_utils"

#: kinds.py names the OpenShift kinds (ImageStream) that both approval and consumer use: consumer may
#: not import approval, so the names sit in a leaf below both.
BASE = {"names", "text", "retry", "query", "errors", "kinds"}
#: layer -> the layers it may import (itself always allowed)
LAYERS = {
    "base": set(),
    "kube": {"base"},
    "cluster": {"base", "kube"},
    "oci": {"base"},
    "inventory": {"base", "kube"},
    "consumer": {"base", "cluster"},
    "approval": {"base", "cluster", "inventory"},
    "credentials": {"base", "cluster", "inventory"},
    "promotion": {"base", "kube", "cluster", "inventory", "approval", "oci", "credentials"},
}
#: inventory/reachability.py probes every cluster before anything else runs (validate_inventory,
#: registry_credential): bounded requests (a timeout each, one retry) to /version and a
#: SelfSubjectReview whose model only newer kubernetes clients have (it is skipped without it).
#: It sits in the inventory layer, below cluster.py, and needs no Cluster: a probe that fails
#: must not build one.
CLIENT_OUTSIDE_SEAM = {"inventory/reachability.py"}


def layer_of(relative):
    """The layer of a file (path relative to module_utils) or of an imported module path."""
    head = relative.replace(os.sep, "/").split("/")[0]
    head = head[:-3] if head.endswith(".py") else head
    return "base" if head in BASE or head == "__init__" else head


def imports(path):
    """(module name, level) of every import statement in a file, function-level ones included."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def files():
    for root, _dirs, names in os.walk(MODULE_UTILS):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                yield os.path.relpath(path, MODULE_UTILS).replace(os.sep, "/"), path


def our_layer(relative, module, level):
    """The layer an import reaches among ours, or None for an outside import."""
    if level:
        package = relative.split("/")[:-1]
        base = package[:len(package) - (level - 1)] if level > 1 else package
        target = "/".join(base + ([module.replace(".", "/")] if module else []))
        return layer_of(target) if target else "base"
    if module.startswith(OURS + "."):
        return layer_of(module[len(OURS) + 1:].replace(".", "/"))
    return None


def violations(layers=None):
    layers = LAYERS if layers is None else layers
    found = []
    for relative, path in files():
        own = layer_of(relative)
        for module, level in imports(path):
            target = our_layer(relative, module, level)
            if target is not None and target != own and target not in layers.get(own, set()):
                found.append(f"{relative} ({own}) imports {module or '.'} ({target})")
            if level == 0 and module.startswith("ansible_collections.kubernetes.core") and relative != "kube.py":
                found.append(f"{relative} imports kubernetes.core outside the seam kube.py")
            if (level == 0 and (module == "kubernetes" or module.startswith("kubernetes."))
                    and relative != "kube.py" and relative not in CLIENT_OUTSIDE_SEAM):
                found.append(f"{relative} imports the Kubernetes client outside the seam kube.py")
    return found


def test_every_layer_imports_only_the_layers_below_it():
    assert not violations()


def test_every_package_of_module_utils_has_a_place_in_the_rules():
    packages = {layer_of(relative) for relative, _path in files()}
    assert packages <= set(LAYERS), f"place these in LAYERS: {sorted(packages - set(LAYERS))}"


def test_the_listed_exceptions_still_exist():
    """An exception that was paid off leaves the list (the list only shrinks)."""
    for relative in CLIENT_OUTSIDE_SEAM:
        found = [m for m, level in imports(os.path.join(MODULE_UTILS, relative))
                 if level == 0 and (m == "kubernetes" or m.startswith("kubernetes."))]
        assert found, f"{relative} no longer imports the Kubernetes client: take it out of CLIENT_OUTSIDE_SEAM"


def test_an_import_against_the_rules_is_reported():
    """The rule bites: with three edges the real tree uses taken away, the real imports violate it."""
    narrowed = dict(LAYERS)
    narrowed["promotion"] = LAYERS["promotion"] - {"oci"}
    narrowed["inventory"] = LAYERS["inventory"] - {"kube"}
    narrowed["approval"] = LAYERS["approval"] - {"inventory"}
    found = violations(narrowed)
    for own, reaches in (("promotion", "oci"), ("inventory", "kube"), ("approval", "inventory")):
        assert any(f"({own}) imports" in line and f"({reaches})" in line for line in found), (own, reaches)
