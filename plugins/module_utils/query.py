# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Named JMESPath queries over a module's own result (the ``query`` option of the reconcile,
promote and tag_environments_info modules), so a playbook or an AWX job gets the rows it wants
(drifted tags, gated tags, one environment's copies) without a filter plugin on the controller.

Every expression is compiled before the module reaches any cluster: a bad one is an error that
names the option and changes nothing.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Mapping

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.segmented.registry.plugins.module_utils.errors import Module, SegmentedRegistryError, failing

JMESPATH_IMPORT_ERROR: str | None
try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError:
    jmespath = None
    JMESPATH_IMPORT_ERROR = traceback.format_exc()
else:
    JMESPATH_IMPORT_ERROR = None

#: The option, as it appears in an argument spec.
ARGUMENT_SPEC = {"query": {"type": "dict"}}


class QueryError(SegmentedRegistryError, ValueError):
    """A query that cannot be compiled or evaluated; the message names ``query.<name>``."""


def compile_queries(queries: Mapping[str, object] | None) -> dict[str, Any]:
    """``{name: compiled expression}`` of the ``query`` option (None or ``{}``: no queries).

    Raises ``QueryError`` naming the first bad entry, and ``ImportError`` (with the traceback in
    ``JMESPATH_IMPORT_ERROR``) when queries are given but the jmespath library is missing."""
    if not queries:
        return {}
    if jmespath is None:
        raise ImportError("jmespath")
    compiled = {}
    for name in sorted(queries):
        expression = queries[name]
        if not isinstance(expression, str) or not expression.strip():
            raise QueryError(f'query.{name}: give a JMESPath expression as a string, for example "audit[?length(drift) > `0`].tag" (got {expression!r})')
        compiled[name] = _jmespath(name, expression, "is not a JMESPath expression", jmespath.compile, expression)
    return compiled


def run_queries(compiled: Mapping[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """``{name: value}``: each compiled query applied to ``result`` (the module result, without
    the queries' own output)."""
    return {name: _jmespath(name, expression.expression, "failed on the result", expression.search, result) for name, expression in compiled.items()}


def _jmespath(name: str, expression: str, failure: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``; a JMESPath error becomes a ``QueryError`` naming ``query.<name>``."""
    try:
        return call(*args)
    except JMESPathError as exc:
        raise QueryError(f"query.{name}: {expression!r} {failure}: {' '.join(str(exc).split())}") from None


def compile_query_option(module: Module) -> dict[str, Any]:
    """The module's ``query`` option compiled (``{}`` without one); a bad expression or a missing
    jmespath library fails the module before it reaches any cluster."""
    try:
        with failing(module):
            return compile_queries(module.params["query"])
    except ImportError:
        module.fail_json(msg=missing_required_lib("jmespath", reason="for the query option"), exception=JMESPATH_IMPORT_ERROR)
