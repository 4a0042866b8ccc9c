"""The module and event source documentation reads like every Ansible collection's (issue 27): a
``description`` of one sentence, the details in ``notes``, and every option (suboptions and this
collection's doc fragments included) with a ``type``. Role entry points open their ``description``
with one sentence as well (ansible-lint's schema has no ``notes`` for them). The event source, which
ansible-test does not read, documents exactly what it takes, and its EXAMPLES are valid arguments."""

import glob
import importlib
import os
import re
import runpy

import pytest
import yaml
from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import DEFAULT_ANNOTATION_KEY
from ansible_collections.segmented.registry.plugins.module_utils.kube import AUTH_OPTIONS

from tests.unit.plugins.test_version_added import documentation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCUMENTED = sorted(glob.glob(os.path.join(REPO, "plugins", "modules", "*.py"))) + [
    os.path.join(REPO, "extensions", "eda", "plugins", "event_source", "approvals.py")
]
FRAGMENTS = sorted(path for path in glob.glob(os.path.join(REPO, "plugins", "doc_fragments", "*.py")) if not path.endswith("__init__.py"))
ROLE_SPECS = sorted(glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml")))
# Abbreviations whose dot ends no sentence.
ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs)\.", re.IGNORECASE)


def sentence_problem(text):
    """Why ``text`` is not one sentence (None when it is)."""
    if not isinstance(text, str):
        return f"not a string: {text!r}"
    plain = ABBREVIATIONS.sub("", " ".join(text.split()))
    if not plain.endswith(".") or plain.endswith(".."):
        return f"does not end with one '.': {text!r}"
    for stop in (". ", "? ", "! "):
        if stop in plain:
            return f"more than one sentence (a {stop.strip()!r} inside): {text!r}"
    return None


def one_sentence_problem(description):
    """Why a DOCUMENTATION ``description`` is not a list of one sentence (None when it is)."""
    if isinstance(description, list):
        if len(description) != 1:
            return f"{len(description)} items; keep one sentence and move the rest to notes"
        description = description[0]
    return sentence_problem(description)


def untyped(options, where="options"):
    """The option paths without a ``type``, suboptions included."""
    for name, option in (options or {}).items():
        if "type" not in option:
            yield f"{where}.{name}"
        yield from untyped(option.get("suboptions") or option.get("options"), f"{where}.{name}")


def ids(path):
    return os.path.relpath(path, REPO)


@pytest.mark.parametrize("path", DOCUMENTED, ids=ids)
def test_description_is_one_sentence(path):
    problem = one_sentence_problem(documentation(path)["description"])
    assert problem is None, f"{ids(path)}: description: {problem}"


@pytest.mark.parametrize("path", DOCUMENTED, ids=ids)
def test_short_description_is_one_short_line(path):
    short = documentation(path)["short_description"]
    assert "\n" not in short and len(short) <= 100 and not short.endswith("."), f"{ids(path)}: {short!r}"


@pytest.mark.parametrize("path", DOCUMENTED, ids=ids)
def test_every_option_has_a_type(path):
    missing = list(untyped(documentation(path).get("options")))
    assert not missing, f"{ids(path)}: options without type: {missing}"


@pytest.mark.parametrize("path", FRAGMENTS, ids=ids)
def test_every_fragment_option_has_a_type(path):
    name = os.path.splitext(os.path.basename(path))[0]
    fragment = importlib.import_module(f"ansible_collections.segmented.registry.plugins.doc_fragments.{name}").ModuleDocFragment
    texts = {name: value for name, value in vars(fragment).items() if name.isupper() and isinstance(value, str)}
    missing = [f"{name}.{option}" for name, text in texts.items() for option in untyped(yaml.safe_load(text).get("options"))]
    assert not missing, f"{ids(path)}: options without type: {missing}"


@pytest.mark.parametrize("path", ROLE_SPECS, ids=ids)
def test_role_entry_points_open_with_one_sentence(path):
    with open(path, encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    problems = []
    for entry, spec in specs.items():
        short = spec["short_description"]
        if "\n" in short or len(short) > 100 or short.endswith("."):
            problems.append(f"{entry}: short_description {short!r}")
        first = sentence_problem(spec["description"][0])
        if first:
            problems.append(f"{entry}: description's first item: {first}")
        problems += [f"{entry}: options.{name} has no type" for name in untyped(spec.get("options"))]
    assert not problems, f"{ids(path)}: {problems}"


@pytest.mark.parametrize(
    ("description", "good"),
    [
        (["Lists tags, e.g. C(app:v1), of one namespace."], True),
        ("Edits C(config.openshift.io/v1) C(Image) named C(cluster).", True),
        (["Lists tags.", "More."], False),
        (["Lists tags. Reads once."], False),
        (["Lists tags"], False),
        (["Lists tags (test, uat, ...)."], True),
    ],
)
def test_the_sentence_rule_itself(description, good):
    assert (one_sentence_problem(description) is None) is good


def test_event_source_documents_what_it_takes():
    """What validate-modules checks for a module, for the event source (ansible-test does not read it):
    each of its own arguments documented with the default it applies, and every documented one taken."""
    source = runpy.run_path(DOCUMENTED[-1])
    options = yaml.safe_load(source["DOCUMENTATION"])["options"]
    applied = dict(source["DEFAULTS"], annotation_key=DEFAULT_ANNOTATION_KEY)  # None there means this key
    assert {name: options.get(name, {}).get("default") for name in applied} == applied
    assert set(options) <= set(applied) | set(AUTH_OPTIONS), set(options) - set(applied) - set(AUTH_OPTIONS)


def test_event_source_examples_take_documented_arguments():
    """Its EXAMPLES (a rulebook's ``sources`` entries) give only documented arguments, and valid values of them."""
    source = runpy.run_path(DOCUMENTED[-1])
    options = yaml.safe_load(source["DOCUMENTATION"])["options"]
    for entry in yaml.safe_load(source["EXAMPLES"]):
        arguments = entry["segmented.registry.approvals"]
        assert set(arguments) <= set(options), set(arguments) - set(options)
        source["options"](arguments)  # raises on a value it refuses
