# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""A survey answer as a list (documented in survey_list.yml beside this file)."""

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError


def survey_list(value, name="the survey answer"):
    """``value`` as a list: a comma-separated string (an AWX survey's text answer, or ``-e
    env=test,uat``) split at the commas, each item stripped of whitespace and empty items dropped;
    None is the empty list; a number is its text; a list is passed through. ``name`` (the variable)
    is named in the error for any other type."""
    if value is None:
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, Sequence) and not isinstance(value, (bytes, Mapping)):
        return list(value)
    raise AnsibleFilterError(f"{name} is {type(value).__name__}, not a list: give a comma-separated string like test,uat or a list like [test, uat]")


class FilterModule:
    def filters(self):
        return {"survey_list": survey_list}
