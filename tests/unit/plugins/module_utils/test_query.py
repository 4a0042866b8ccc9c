"""The query option (pure): named JMESPath expressions over a module result; a bad one is an error
that names it, before anything runs."""

import pytest

from ansible_collections.segmented.registry.plugins.module_utils import query

RESULT = {
    "audit": [
        {"tag": "myproject/app:v1", "approved": ["test", "uat"], "drift": []},
        {"tag": "myproject/app:v2", "approved": ["test"], "drift": ["test: missing"]},
        {"tag": "myproject/old:v0", "approved": [], "drift": ["prod: not approved"]},
    ],
    "gated": [{"environment": "prod", "repository": "myproject/app", "tag": "v3", "reason": "scan: failed"}],
}


def test_no_queries_compile_to_nothing():
    assert query.compile_queries(None) == {}
    assert query.compile_queries({}) == {}


def test_named_queries_answer_from_the_result():
    compiled = query.compile_queries({
        "drifted": "audit[?length(drift) > `0`].tag",
        "held_back": "gated[].{tag: join(':', [repository, tag]), environment: environment}",
        "nothing": "audit[?contains(approved, 'prod')].tag",
    })
    assert query.run_queries(compiled, RESULT) == {
        "drifted": ["myproject/app:v2", "myproject/old:v0"],
        "held_back": [{"tag": "myproject/app:v3", "environment": "prod"}],
        "nothing": [],
    }


@pytest.mark.parametrize("expression, expected", [
    ("audit[?drift", "query.bad: 'audit[?drift' is not a JMESPath expression"),
    ("", "query.bad: give a JMESPath expression as a string"),
    (["audit"], "query.bad: give a JMESPath expression as a string"),
])
def test_a_bad_expression_names_the_query(expression, expected):
    with pytest.raises(query.QueryError) as info:
        query.compile_queries({"good": "audit", "bad": expression})
    assert str(info.value).startswith(expected)


def test_an_expression_that_fails_on_the_result_names_the_query():
    # compiles, but a function given the wrong type fails only when it runs
    compiled = query.compile_queries({"sum": "sum(audit)"})
    with pytest.raises(query.QueryError, match=r"^query.sum: 'sum\(audit\)' failed on the result"):
        query.run_queries(compiled, RESULT)
