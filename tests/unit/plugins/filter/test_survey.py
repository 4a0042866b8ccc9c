"""survey_list (plugins/filter/survey.py): an AWX survey's answer, or an extra variable, as a list."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.segmented.registry.plugins.filter.survey import FilterModule, survey_list


def test_it_is_registered():
    assert FilterModule().filters() == {"survey_list": survey_list}


@pytest.mark.parametrize("value,expected", [
    ("test", ["test"]),
    ("test,uat", ["test", "uat"]),
    (" test , uat ,, ", ["test", "uat"]),
    ("", []),
    (" , ", []),
    (None, []),
    (2024, ["2024"]),
], ids=["one", "two", "whitespace-and-empty-items", "empty", "only-commas", "none", "a-number"])
def test_a_string_is_split_at_commas_stripped_and_empty_items_dropped(value, expected):
    assert survey_list(value) == expected


def test_a_list_is_passed_through():
    value = ["test", " uat"]
    assert survey_list(value) == ["test", " uat"]
    assert survey_list(("prod",)) == ["prod"]
    assert survey_list([]) == []


@pytest.mark.parametrize("value", [{"env": "test"}, True], ids=["mapping", "boolean"])
def test_anything_else_is_refused_naming_the_variable_and_the_fix(value):
    with pytest.raises(AnsibleFilterError, match=r"^env is (dict|bool), not a list: give a comma-separated string like test,uat or a list"):
        survey_list(value, "env")
