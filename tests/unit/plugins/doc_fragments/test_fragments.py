"""Each doc fragment documents exactly the options its one source defines (names, types,
required, defaults, choices, suboptions): the environment schema, a promotion job's argument spec,
the tag options and the query option."""

import yaml

from ansible_collections.segmented.registry.plugins.doc_fragments import inventory, promotion, query, tag
from ansible_collections.segmented.registry.plugins.module_utils.approval.edit import edit_argument_spec, tag_argument_spec
from ansible_collections.segmented.registry.plugins.module_utils.inventory import schema
from ansible_collections.segmented.registry.plugins.module_utils.kube import AUTH_OPTIONS
from ansible_collections.segmented.registry.plugins.module_utils.promotion import job
from ansible_collections.segmented.registry.plugins.module_utils.query import ARGUMENT_SPEC as QUERY_SPEC


def documented(options):
    """{name: (type, required, default, choices, suboptions)} of documented options."""
    return {name: (doc.get("type", "str"), bool(doc.get("required", False)), doc.get("default"),
                   doc.get("choices"), documented(doc.get("suboptions") or {}))
            for name, doc in options.items()}


def specified(spec):
    """The same shape, from an argument spec."""
    return {name: (item.get("type", "str"), bool(item.get("required", False)), item.get("default"),
                   item.get("choices"), specified(item.get("options") or {}))
            for name, item in spec.items()}


def test_inventory_fragment_documents_the_environment_schema():
    options = yaml.safe_load(inventory.ModuleDocFragment.DOCUMENTATION)["options"]
    environments = documented(options)["environments"]
    assert environments[:4] == ("list", False, None, None)
    assert environments[4] == specified(schema.ENVIRONMENT)


def test_promotion_fragment_documents_the_job_options():
    options = yaml.safe_load(promotion.ModuleDocFragment.DOCUMENTATION)["options"]
    spec = {name: item for name, item in job.argument_spec().items() if name not in AUTH_OPTIONS and name not in QUERY_SPEC}
    assert documented(options) == specified(spec)


def test_query_fragment_documents_the_query_option():
    options = yaml.safe_load(query.ModuleDocFragment.DOCUMENTATION)["options"]
    assert documented(options) == specified(QUERY_SPEC)


def test_tag_fragment_documents_the_tag_options():
    options = yaml.safe_load(tag.ModuleDocFragment.DOCUMENTATION)["options"]
    assert documented(options) == specified(tag_argument_spec())
    edit = yaml.safe_load(tag.ModuleDocFragment.EDIT)["options"]
    assert documented(edit) == specified(edit_argument_spec())
