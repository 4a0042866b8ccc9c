# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The shape of an inventory value (types, required keys, choices, unknown keys, defaults),
checked by ansible-core's ``ArgumentSpecValidator`` against an argument spec of ``schema``.

The validator runs one mapping at a time, one option at a time, so that every error it finds is
known to belong to one field, whose full path (``storage.s3.bucket``, ``builders[1].namespace``)
the problem then names; nested ``options`` (of a ``dict``, or of a ``list`` of ``dict``
elements) are walked the same way. An option may carry two keys of the collection beside
Ansible's, for its problems (``schema`` strips them from a module's argument spec):

- ``what``: what a value must be, like ``a number of registry pods``;
- ``fix``: how to write it, like ``write a whole number from 1 to 10 (default 1)``; it may name
  ``{namespace}`` (the environment's namespace, for an example).

Values that pass come back with Ansible's conversions (``"no"`` -> ``False``, ``"4"`` -> ``4``)
and defaults filled in; a value with a problem comes back as None. Checks of a value against
other values (names unique, a reference known) are not shapes: ``validate`` and its helpers do
them on what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentValueError, RequiredError

from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import type_name, unknown_key_message
from ansible_collections.segmented.registry.plugins.module_utils.inventory.schema import MESSAGE_KEYS
from ansible_collections.segmented.registry.plugins.module_utils.text import show

_NESTED_TYPES = ("dict", "list")
_WHAT = {"str": "a string", "path": "a path", "bool": "a boolean", "int": "a whole number", "dict": "a mapping", "list": "a list", "raw": "a value"}


def _text(value: Any) -> str:
    """Ansible's ``str`` type without stringifying what is no scalar: a string, or a number as
    written (``size: 1073741824``); a boolean, a list or a mapping is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a string")


def _validator_option(option: Mapping) -> dict:
    """One option as the validator takes it for its own level: without the collection's keys
    and without nested ``options`` (walked one level at a time)."""
    result = {key: value for key, value in option.items() if key not in MESSAGE_KEYS and key != "options"}
    if "options" in option and result.get("elements") == "dict":
        del result["elements"]  # each element is checked on its own, to name it by its index
    if result.get("type", "str") == "str":
        result["type"] = _text
    if result.get("elements") == "str":
        result["elements"] = _text
    return result


def _message(option: Mapping, error: Exception, value: Any, context: Mapping) -> str:
    """The problem of ``value`` for the validator's ``error``: what is wrong, then the fix."""
    kind = option.get("type", "str")
    fix = option.get("fix", "").format(**context)
    if isinstance(error, RequiredError):
        return f"is required: {fix}" if fix else "is required"
    if isinstance(error, ArgumentValueError) and not fix:
        fix = "use one of: " + ", ".join(str(choice) for choice in option["choices"])
    what = option.get("what", "").format(**context) or _WHAT.get(kind, f"a {kind}")
    shown = "a secret" if option.get("no_log") else show(value)
    if kind in _NESTED_TYPES:
        text = f"must be {what}, not {type_name(value)}" + ("" if option.get("no_log") else f" {shown}")
    else:
        text = f"{shown} is not {what}"
    return f"{text}; {fix}" if fix else text


def check(spec: Mapping, value: Mapping, context: Mapping | None = None, path: str = "") -> tuple[dict, list]:
    """Check the mapping ``value`` against the argument spec ``spec`` (and its nested options).

    Returns ``(values, problems)``: ``values`` maps every option of ``spec`` to its converted
    value or default (None when not set, or when it has a problem); ``problems`` lists
    ``(field, message)``, ``field`` being the option's path below ``path``, in spec order after
    the unknown keys. ``value`` is not changed; a key set to None counts as not set.
    """
    context = dict(context or {})
    problems = []
    given = {key: item for key, item in value.items() if item is not None}
    level = ArgumentSpecValidator({key: _validator_option(option) for key, option in spec.items()})
    unknown = level.validate(dict(value)).unsupported_parameters
    known = list(spec)
    for key in value:
        if key in unknown:
            problems.append((_join(path, key), unknown_key_message(key, known)))
    values: dict[str, Any] = {}
    for key, option in spec.items():
        field = _join(path, key)
        result = ArgumentSpecValidator({key: _validator_option(option)}).validate({key: given[key]} if key in given else {})
        errors = list(result.errors)
        if errors:  # one problem per field: the first error says what is wrong with it
            problems.append((field, _message(option, errors[0], given.get(key), context)))
            values[key] = None
            continue
        item = result.validated_parameters.get(key)
        if option.get("options") and item is not None:
            if option.get("type") == "dict":
                item, found = check(option["options"], item, context, field)
                problems.extend(found)
            else:
                items = []
                for index, element in enumerate(item):
                    element, found = _check_element(option["options"], element, context, f"{field}[{index}]")
                    items.append(element)
                    problems.extend(found)
                item = items
        values[key] = item
    return values, problems


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_element(spec: Mapping, element: Any, context: Mapping, path: str) -> tuple:
    """One element of a list of mappings: ``check`` once the validator has it as a mapping."""
    result = ArgumentSpecValidator({"element": {"type": "dict"}}).validate({"element": element})
    if list(result.errors):
        return None, [(path, f"must be a mapping with {', '.join(spec)}, not {type_name(element)} {show(element)}")]
    return check(spec, result.validated_parameters["element"], context, path)
