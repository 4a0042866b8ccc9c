"""Unit tests of plugins/module_utils/environments.py: names, the annotation's format, edits."""


import pytest

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    DEFAULT_ANNOTATION_KEY,
    EnvironmentsError,
    apply_change,
    check_annotation_key,
    check_known,
    check_names,
    effective,
    format_value,
    is_canonical,
    matches,
    name_problem,
    parse_value,
)

# --- reading: tolerant of what people write by hand ------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (None, []),
    ("", []),
    ("   \n ", []),
    ("test", ["test"]),
    ("prod,test,uat", ["prod", "test", "uat"]),
    ("uat, test , prod", ["prod", "test", "uat"]),
    ("uat,\ntest\n", ["test", "uat"]),
    ("test\nuat\nprod", ["prod", "test", "uat"]),
    ("test,test, uat,test", ["test", "uat"]),
    ("test,,uat,", ["test", "uat"]),
    ('["test", "uat"]', ["test", "uat"]),
    ('[ "uat","test","uat" ]', ["test", "uat"]),
    ("[test, uat]", ["test", "uat"]),
    ("['prod', test]", ["prod", "test"]),
    ("[test,\n uat]", ["test", "uat"]),
    ("[]", []),
    ("- test\n- uat\n", ["test", "uat"]),
    ("  - uat\n  - 'test'", ["test", "uat"]),
    ("env-01,a1,0x", ["0x", "a1", "env-01"]),
    ("a" * 63, ["a" * 63]),
])
def test_parse_tolerant(value, expected):
    assert parse_value(value) == expected


@pytest.mark.parametrize("value, shown, why", [
    ("test;uat", '"test;uat"', "separate them with commas"),
    ("Test", '"Test"', 'did you mean "test"'),
    ("te st", '"te st"', "DNS-1123"),
    ("test uat", '"test uat"', 'commas: "test,uat"'),
    ("test,-uat", '"-uat"', "DNS-1123"),
    ("test,uat-", '"uat-"', "DNS-1123"),
    ("prod_eu", '"prod_eu"', 'did you mean "prod-eu"'),
    ("a" * 64, "longer than 63", "63"),
    ("default", "default", "never stored"),
    ("test,default", "default", "never stored"),
    ("[test, uat", '"[test, uat"', "neither a comma-separated list"),
    ("test]", '"test]"', "neither a comma-separated list"),
    ("[[test]]", '"[[test]]"', "neither"),
    ('["test", 3]', "3", "not a string"),
    ("['test, uat]", "[", "neither"),
    ("- test\n-uat", "- test", "neither"),
    ("{test: true}", "{test: true}", "DNS-1123"),
])
def test_parse_malformed_is_a_clear_error(value, shown, why):
    with pytest.raises(EnvironmentsError) as info:
        parse_value(value, "my.example/envs")
    message = str(info.value)
    assert "my.example/envs" in message  # the annotation key
    assert shown in message  # the value, or the bad part of it
    assert why in message
    assert "Fix the annotation by hand" in message  # how to fix it


def test_parse_never_treats_unreadable_as_empty():
    for value in ("test;uat", "TEST", "??"):
        with pytest.raises(EnvironmentsError):
            parse_value(value)


def test_parse_rejects_non_string():
    with pytest.raises(EnvironmentsError, match="not a string"):
        parse_value(["test"])


# --- the canonical form ----------------------------------------------------------------------


def test_format_is_sorted_comma_joined_without_spaces():
    assert format_value(["uat", "test", "prod", "test"]) == "prod,test,uat"
    assert format_value(["test"]) == "test"


def test_format_of_empty_list_is_no_annotation():
    assert format_value([]) is None


def test_format_refuses_default_and_bad_names():
    with pytest.raises(EnvironmentsError, match="default"):
        format_value(["default", "test"])
    with pytest.raises(EnvironmentsError, match="DNS-1123"):
        format_value(["Test"])


@pytest.mark.parametrize("value", ["uat, test", '["test"]', "test\nuat", "test,test"])
def test_round_trip_gives_canonical(value):
    canonical = format_value(parse_value(value))
    assert is_canonical(canonical)
    assert not is_canonical(value)
    assert parse_value(canonical) == parse_value(value)


def test_is_canonical():
    assert is_canonical("prod,test,uat")
    assert is_canonical(None)
    assert not is_canonical("test,prod")
    assert not is_canonical("")
    assert not is_canonical("x;y")


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["test", "uat", "prod", "env-01", "0", "a" * 63, "x1-y2"])
def test_valid_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "Test", "te st", "-a", "a-", "a.b", "a_b", "é", "a" * 64, None, 3])
def test_invalid_names(name):
    assert name_problem(name)


def test_check_names_reports_every_problem_at_once():
    with pytest.raises(EnvironmentsError) as info:
        check_names(["Test", "ok", "default", "a b"], "add")
    message = str(info.value)
    assert '"Test"' in message and '"a b"' in message and "default" in message
    assert '"ok"' not in message


def test_check_names_default_explains_how_a_tag_leaves_and_returns():
    with pytest.raises(EnvironmentsError) as info:
        check_names(["default"], "environments")
    message = str(info.value)
    assert "leaves default when it gets its first environment" in message
    assert "environments: []" in message


def test_check_names_unknown_lists_the_known():
    with pytest.raises(EnvironmentsError) as info:
        check_names(["qa", "test"], "add", known={"test", "uat", "prod"})
    message = str(info.value)
    assert '"qa" is not a known environment' in message
    assert "prod, test, uat" in message


def test_check_names_must_be_a_list():
    with pytest.raises(EnvironmentsError, match="must be a list"):
        check_names("test", "add")


def test_check_known():
    assert check_known(["uat", "test", "default", "test"]) == ["test", "uat"]
    assert check_known(None) is None
    with pytest.raises(EnvironmentsError, match="known_environments"):
        check_known(["Bad Name"])


@pytest.mark.parametrize("key", [DEFAULT_ANNOTATION_KEY, "environment", "example.com/env_list", "a.b-c"])
def test_annotation_keys(key):
    assert check_annotation_key(key) == key


@pytest.mark.parametrize("key", ["", "/env", "Example.com/env", "a/b/c", "env-", "x" * 64, "-x"])
def test_bad_annotation_keys(key):
    with pytest.raises(EnvironmentsError, match="annotation_key"):
        check_annotation_key(key)


# --- edits -----------------------------------------------------------------------------------


def test_add():
    assert apply_change([], add=["uat", "test"]) == ["test", "uat"]
    assert apply_change(["test"], add=["prod"]) == ["prod", "test"]


def test_add_is_idempotent():
    once = apply_change(["test"], add=["uat"])
    assert apply_change(once, add=["uat"]) == once


def test_remove():
    assert apply_change(["prod", "test", "uat"], remove=["prod"]) == ["test", "uat"]


def test_remove_absent_changes_nothing():
    assert apply_change(["test"], remove=["prod"]) == ["test"]


def test_remove_is_idempotent():
    once = apply_change(["test", "uat"], remove=["uat"])
    assert apply_change(once, remove=["uat"]) == once == ["test"]


def test_add_and_remove_together():
    assert apply_change(["test", "uat"], add=["prod"], remove=["test"]) == ["prod", "uat"]


def test_same_name_in_add_and_remove_is_an_error():
    with pytest.raises(EnvironmentsError, match="both add and remove"):
        apply_change([], add=["uat"], remove=["uat"])


def test_exact():
    assert apply_change(["prod", "test"], exact=["uat", "test", "uat"]) == ["test", "uat"]
    assert apply_change(["prod"], exact=[]) == []


def test_exact_is_idempotent():
    assert apply_change(apply_change(["x"], exact=["a", "b"]), exact=["b", "a"]) == ["a", "b"]


def test_exact_excludes_add_and_remove():
    with pytest.raises(EnvironmentsError, match="cannot be combined"):
        apply_change([], add=["a"], exact=["b"])
    with pytest.raises(EnvironmentsError, match="cannot be combined"):
        apply_change([], remove=["a"], exact=[])


@pytest.mark.parametrize("kwargs", [{"add": ["default"]}, {"remove": ["default"]}, {"exact": ["default"]}])
def test_default_is_never_given(kwargs):
    with pytest.raises(EnvironmentsError, match="not an environment you can give"):
        apply_change(["test"], **kwargs)


def test_known_environments():
    known = ["test", "uat", "prod"]
    assert apply_change([], add=["uat"], known=known) == ["uat"]
    with pytest.raises(EnvironmentsError, match="known environments .* are: prod, test, uat"):
        apply_change([], add=["qa"], known=known)
    with pytest.raises(EnvironmentsError, match='"qa" is not a known'):
        apply_change([], exact=["qa"], known=known)
    with pytest.raises(EnvironmentsError, match='"qa" is not a known'):
        apply_change(["test"], remove=["qa"], known=known)


def test_a_retired_environment_still_on_a_tag_can_be_removed():
    assert apply_change(["legacy", "test"], remove=["legacy"], known=["test", "uat"]) == ["test"]


@pytest.mark.parametrize("kwargs, option", [({"add": ["uat"]}, "add"), ({"exact": ["test", "uat"]}, "approved"),
                                            ({"add": ["uat"], "known": None}, "add")])
def test_an_absent_environment_cannot_be_added_or_set(kwargs, option):
    """Promoting to an environment with state: absent fails, naming it and saying so."""
    kwargs = dict({"known": ["test", "prod"]}, **kwargs)
    with pytest.raises(EnvironmentsError) as info:
        apply_change(["test"], absent=["uat"], **kwargs)
    message = str(info.value)
    assert message.startswith(f'{option}: "uat" has state: absent in the inventory\'s segmented_registry_environments')
    assert "no promotion target" in message
    assert "set the state of uat back to present" in message
    if kwargs["known"]:
        assert "use a present environment (prod, test)" in message


def test_an_absent_environment_can_still_be_removed():
    known, absent = ["test", "prod"], ["uat"]
    assert apply_change(["test", "uat"], remove=["uat"], known=known, absent=absent) == ["test"]
    # not on the tag: nothing to do, and not "unknown" either
    assert apply_change(["test"], remove=["uat"], known=known, absent=absent) == ["test"]
    # other edits keep what the tag carries
    assert apply_change(["test", "uat"], add=["prod"], known=known, absent=absent) == ["prod", "test", "uat"]


def test_absent_environments_are_checked_names():
    with pytest.raises(EnvironmentsError, match="absent_environments: .*DNS-1123"):
        apply_change([], add=["test"], absent=["Bad Name"])


def test_an_invalid_name_is_an_error_even_without_known():
    with pytest.raises(EnvironmentsError, match="DNS-1123"):
        apply_change([], add=["UAT"])


# --- the default environment ---------------------------------------------------------------


def test_no_annotation_means_default():
    assert effective(parse_value(None)) == ["default"]
    assert effective([]) == ["default"]


def test_a_tag_leaves_default_with_its_first_environment():
    assert effective(apply_change([], add=["test"])) == ["test"]


def test_removing_the_last_environment_returns_to_default_and_deletes_the_annotation():
    after = apply_change(["test"], remove=["test"])
    assert after == []
    assert format_value(after) is None
    assert effective(after) == ["default"]


def test_matches():
    assert matches([], "default")
    assert not matches(["test"], "default")
    assert matches(["test", "uat"], "uat")
    assert not matches(["test"], "prod")
