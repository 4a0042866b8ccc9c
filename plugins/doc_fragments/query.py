# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The query option of the reconcile, promote and tag_environments_info modules, documented once
# next to plugins/module_utils/query.py (its ARGUMENT_SPEC; a unit test compares them).


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  query:
    description:
      - Named L(JMESPath,https://jmespath.org/) expressions, each applied to this module's own result
        when the module is done; the answers are returned in C(query_results) under the same names.
      - Saves a playbook or an AWX job a C(community.general.json_query) filter on the controller,
        and keeps large results out of registered variables that only need a few rows.
      - Every expression is compiled before any cluster is reached; a bad one is an error naming
        C(query.<name>), and nothing is read or written.
      - Needs the C(jmespath) Python library where the module runs (in the collection's
        C(requirements.txt), so in the execution environment).
    type: dict
requirements:
  - jmespath (only with I(query))
"""
