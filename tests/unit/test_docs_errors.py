"""The troubleshooting guide names every error class the collection raises: each subclass of
``SegmentedRegistryError`` defined under plugins/ or extensions/ (found in the source, so a new class
cannot be left out) has a row ``ClassName`` in docs/docsite/rst/guide_troubleshooting.rst."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(REPO, "docs", "docsite", "rst", "guide_troubleshooting.rst")
BASE = "SegmentedRegistryError"


def class_bases():
    """Every class defined in plugins/ and extensions/ with the names of its bases."""
    found = {}
    for top in ("plugins", "extensions"):
        for root, _dirs, names in os.walk(os.path.join(REPO, top)):
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(root, name), encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.ClassDef):
                        bases = [base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "") for base in node.bases]
                        found[node.name] = bases
    return found


def error_classes():
    """The base and every class that derives from it, directly or not."""
    bases = class_bases()
    errors = {BASE}
    grown = True
    while grown:
        more = {name for name, parents in bases.items() if name not in errors and errors.intersection(parents)}
        errors |= more
        grown = bool(more)
    return errors


def test_the_error_classes_are_found():
    assert {"Conflict", "Gone", "HistoryForbidden", "SourceMoved", "QueryError"} <= error_classes()


def test_the_troubleshooting_guide_names_every_error_class():
    with open(GUIDE, encoding="utf-8") as handle:
        guide = handle.read()
    missing = sorted(name for name in error_classes() if f"* - ``{name}``" not in guide)
    assert not missing, f"guide_troubleshooting.rst ('Every error class') lacks a row for {', '.join(missing)}: say what it means and the fix"
