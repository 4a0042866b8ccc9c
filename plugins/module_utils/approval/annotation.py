# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Approval lists of image tags: environment names, the annotation's format, and list edits.

Which environments an image tag may live in is kept in one annotation of the tag
(``segmented.registry/environments`` unless told otherwise). This module is pure: no I/O and
no Ansible imports.

The stored value has one canonical form, environment names sorted and joined by ``,`` without
spaces (``prod,test,uat``). Reading is tolerant of what people write by hand: spaces, newlines,
any order, duplicates, a JSON or YAML flow list (``["test", "uat"]``, ``[test, uat]``) or a YAML
block list (one ``- name`` a line). Anything else is an ``EnvironmentsError`` that shows the
value and the annotation key and says how to fix it; a value that cannot be read is never
treated as empty.

``default`` is the integrated registry of the registry cluster, where builds push. A tag
without the annotation lives only there, and is reported as ``["default"]``. The stored list
never contains ``default``: a tag leaves ``default`` when it gets its first environment and
returns to it when its last environment is removed (the annotation is then deleted).
"""

from __future__ import annotations

import json
import re
from typing import Any, Collection, Iterable, NoReturn, overload

from ansible_collections.segmented.registry.plugins.module_utils.errors import ApprovalError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.model import DEFAULT_ENVIRONMENT
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_qualified_name
from ansible_collections.segmented.registry.plugins.module_utils.text import show

#: The annotation key this collection uses unless told otherwise.
DEFAULT_ANNOTATION_KEY = "segmented.registry/environments"
#: The key of the design proposal ("Central Segmented Registry"), allowed as a choice.
PROPOSAL_ANNOTATION_KEY = "environment"

SEPARATOR = ","
MAX_NAME_LENGTH = 63

_CANONICAL_HINT = "write the environment names separated by commas, like test,uat,prod"


class EnvironmentsError(ApprovalError, ValueError):
    """A bad environment name, list or annotation value; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid environment name, or None when it is one.

    An environment name is a DNS-1123 label (it names a namespace and a registry host): at
    most 63 lowercase letters, digits and ``-``, starting and ending with a letter or digit.
    """
    if not isinstance(name, str):
        return f"{show(name)} is not a string"
    if name == "":
        return "an empty name is not an environment"
    if len(name) > MAX_NAME_LENGTH:
        return f"{show(name)} is longer than {MAX_NAME_LENGTH} characters"
    if is_dns1123_label(name):
        return None
    hint = ""
    pieces = [piece for piece in re.split(r"[;|/\s]+", name.strip()) if piece]
    fixed = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower()).strip("-")
    if len(pieces) > 1 and all(is_dns1123_label(piece.lower()) for piece in pieces):
        hint = f" (to give several environments, separate them with commas: {show(SEPARATOR.join((piece.lower() for piece in pieces)))})"
    elif fixed and fixed != name and is_dns1123_label(fixed):
        hint = f" (did you mean {show(fixed)}?)"
    return "{} is not a valid environment name: use a DNS-1123 label, lowercase letters, digits and '-', starting and ending with a letter or digit{}".format(
        show(name), hint
    )


def is_annotation_key(key: object) -> bool:
    """A Kubernetes annotation key (a qualified name): ``[prefix/]name``."""
    return is_qualified_name(key)


def check_annotation_key(key: object) -> str:
    if not isinstance(key, str) or not is_annotation_key(key):
        raise EnvironmentsError(
            "annotation_key {} is not a valid annotation key: use [prefix/]name, where the optional prefix "
            "is a lowercase DNS name and name is up to 63 letters, digits, '-', '_' or '.', like {} "
            "or {}".format(show(key), DEFAULT_ANNOTATION_KEY, PROPOSAL_ANNOTATION_KEY)
        )
    return key


def _default_given(option: str) -> str:
    return (
        "{0} names {1}, which is not an environment you can give: {1} is where every tag lives while "
        "it has no environment (no annotation). A tag leaves {1} when it gets its first environment "
        "and returns to it when its last environment is removed (to send a tag back, remove its "
        "environments or set approved: [], the deprecated alias environments: [] still works)".format(option, DEFAULT_ENVIRONMENT)
    )


def check_names(names: object, option: str, known: Collection[str] | None = None, absent: Collection[str] | None = None) -> list[str]:
    """Validate environment names given in option ``option``; return them sorted, unique.

    ``known``: when given, the inventory's environments that images can be promoted to; a name
    outside it is an error that lists them. ``absent``: the inventory's environments with
    ``state: absent``; naming one is an error that says so. Every problem is reported at once.
    """
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
        raise EnvironmentsError(f"{option} must be a list of environment names, not {show(names)}")
    problems = []
    for name in names:
        if name == DEFAULT_ENVIRONMENT:
            problems.append(_default_given(option))
            continue
        problem = name_problem(name)
        if problem:
            problems.append(f"{option}: {problem}")
    if problems:
        raise EnvironmentsError("; ".join(_unique(problems)))
    result = sorted(set(names))
    retired = [name for name in result if name in (absent or ())]
    if retired:
        raise EnvironmentsError(_absent(retired, known, option))
    if known is not None:
        unknown_problem = _unknown(result, known, option)
        if unknown_problem:
            raise EnvironmentsError(unknown_problem)
    return result


@overload
def check_known(known: None, option: str = ...) -> None: ...


@overload
def check_known(known: Iterable[str], option: str = ...) -> list[str]: ...


def check_known(known: Iterable[str] | None, option: str = "known_environments") -> list[str] | None:
    """Validate a list of the inventory's environments (``option`` names it in a problem);
    return it sorted, unique."""
    if known is None:
        return None
    problems = []
    for name in known:
        if name == DEFAULT_ENVIRONMENT:
            continue  # the inventory may list it; it is always known
        problem = name_problem(name)
        if problem:
            problems.append(f"{option}: {problem}")
    if problems:
        raise EnvironmentsError("; ".join(problems))
    return sorted({name for name in known if name != DEFAULT_ENVIRONMENT})


def _unknown(names: Iterable[str], known: Collection[str], option: str) -> str | None:
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    return "{}: {} {}; the known environments (the inventory's segmented_registry_environments) are: {}".format(
        option,
        ", ".join(show(name) for name in unknown),
        "is not a known environment" if len(unknown) == 1 else "are not known environments",
        ", ".join(sorted(known)) or "(none)",
    )


def _absent(names: list[str], known: Collection[str] | None, option: str) -> str:
    return (
        "{}: {} {} state: absent in the inventory's segmented_registry_environments: no promotion target (the "
        "registry-cluster role removes its registry); use a present environment{}, or set the state of {} back "
        "to present".format(
            option,
            ", ".join(show(name) for name in names),
            "has" if len(names) == 1 else "have",
            f" ({', '.join(sorted(known))})" if known else "",
            " and ".join(names),
        )
    )


def _unique(items: Iterable[str]) -> list[str]:
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


# ---------------------------------------------------------------------------------------------
# The annotation's value
# ---------------------------------------------------------------------------------------------


def format_value(names: Iterable[str]) -> str | None:
    """The canonical annotation value of a list of environments, or None for an empty list
    (the annotation is then removed: the tag is back in ``default``)."""
    names = sorted(set(names))
    if not names:
        return None
    for name in names:
        problem = name_problem(name)
        if problem or name == DEFAULT_ENVIRONMENT:
            raise EnvironmentsError(problem or _default_given("the list"))
    return SEPARATOR.join(names)


def _flow_items(inner: str) -> list[str] | None:
    """Items of a JSON/YAML flow sequence's inside (``test, "uat", 'prod'``), or None."""
    items = []
    for raw in inner.split(","):
        item = raw.strip()
        if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
            item = item[1:-1].strip()
        elif item[:1] in ('"', "'") or item[-1:] in ('"', "'"):
            return None  # an unbalanced quote: not something to guess about
        items.append(item)
    return items


def _split(value: str) -> list[Any] | None:
    """The raw items of an annotation value, before name validation; None when its shape is
    none of the readable ones."""
    text = value.strip()
    if text.startswith("[") or text.endswith("]"):
        if not (text.startswith("[") and text.endswith("]")):
            return None
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return loaded
        inner = text[1:-1]
        if "[" in inner or "]" in inner:
            return None
        return _flow_items(inner.replace("\n", " "))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(line.startswith("-") for line in lines):
        # A YAML block list, one "- name" a line (an environment name never starts with '-').
        items = []
        for line in lines:
            if not line.startswith("- ") and line != "-":
                return None
            items.append(line[1:].strip())
        return [item[1:-1] if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'" else item for item in items]
    items = []
    for line in lines:
        items.extend(part.strip() for part in line.split(SEPARATOR))
    return items


def parse_value(value: object, annotation_key: str = DEFAULT_ANNOTATION_KEY) -> list[str]:
    """The environments stored in an annotation value, sorted and unique.

    ``None`` (no annotation) and an empty value give ``[]``: the tag is in ``default`` only.
    Raises ``EnvironmentsError`` showing the value, the key and the fix when it cannot be read.
    """
    if value is None:
        return []
    if not isinstance(value, str):
        raise EnvironmentsError(f"annotation {annotation_key} holds {show(value)}, not a string; {_CANONICAL_HINT}")
    items = _split(value)

    def fail(reason: str) -> NoReturn:
        raise EnvironmentsError(
            "annotation {} has the value {}, which cannot be read as a list of environments: {}. "
            "Fix the annotation by hand ({}), or replace the whole list with the approved option "
            "of segmented.registry.tag_environments".format(annotation_key, show(value), reason, _CANONICAL_HINT)
        )

    if items is None:
        fail("it is neither a comma-separated list nor a JSON/YAML list")
    names = []
    problems = []
    for item in items:
        if item == "" or item is None:
            continue  # "test,,uat", a trailing comma, empty lines
        if item == DEFAULT_ENVIRONMENT:
            problems.append(
                "{0} is never stored: a tag without the annotation is in {0}, and a tag with environments has left it; remove {0} from the value".format(
                    DEFAULT_ENVIRONMENT
                )
            )
            continue
        problem = name_problem(item)
        if problem:
            problems.append(problem)
            continue
        names.append(item)
    if problems:
        fail("; ".join(_unique(problems)))
    return sorted(set(names))


def is_canonical(value: str | None) -> bool:
    """True when ``value`` is exactly what ``format_value`` writes for its list."""
    try:
        return value is None or format_value(parse_value(value)) == value
    except EnvironmentsError:
        return False


# ---------------------------------------------------------------------------------------------
# Edits and the default semantics
# ---------------------------------------------------------------------------------------------


def effective(names: Iterable[str] | None) -> list[str]:
    """What the user sees: the stored list, or ``["default"]`` when it is empty."""
    names = sorted(set(names or []))
    return names if names else [DEFAULT_ENVIRONMENT]


def apply_change(
    current: Iterable[str] | None,
    add: Iterable[str] | None = None,
    remove: Iterable[str] | None = None,
    exact: Iterable[str] | None = None,
    known: Iterable[str] | None = None,
    absent: Iterable[str] | None = None,
) -> list[str]:
    """The stored list after an edit (sorted, unique, never containing ``default``).

    ``current`` is the stored list (``parse_value``). ``exact`` replaces the list and excludes
    ``add``/``remove``. With ``known`` (the inventory's environments that images can be promoted
    to), adding or setting an unknown name is an error; ``absent`` (the inventory's environments
    with ``state: absent``) cannot be added or set either, with an error that says so. Removing a
    name is allowed when it is stored, known or not, or absent, so a retired environment can still
    be taken off a tag.
    """
    if exact is not None and (add is not None or remove is not None):
        raise EnvironmentsError("approved (the exact list) cannot be combined with add or remove; give either approved, or add and/or remove")
    known_set = set(check_known(known)) if known is not None else None
    absent_set = set(check_known(absent, "absent_environments")) if absent is not None else set()
    current = sorted(set(current or []))
    if exact is not None:
        return check_names(exact, "approved", known_set, absent_set)
    add_names = check_names(add or [], "add", known_set, absent_set)
    remove_names = check_names(remove or [], "remove")
    both = sorted(set(add_names) & set(remove_names))
    if both:
        raise EnvironmentsError(
            "{} {} in both add and remove; give each environment in one of them".format(
                ", ".join(show(name) for name in both), "is" if len(both) == 1 else "are"
            )
        )
    if known_set is not None:
        problem = _unknown([name for name in remove_names if name not in current and name not in absent_set], known_set, "remove")
        if problem:
            raise EnvironmentsError(problem)
    return sorted((set(current) | set(add_names)) - set(remove_names))


def matches(names: Iterable[str] | None, environment: str) -> bool:
    """Whether a tag with stored list ``names`` is approved for ``environment`` (``default``
    selects the tags without environments)."""
    return environment in effective(names)
