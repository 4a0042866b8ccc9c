#!/usr/bin/python

# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: tag_environments_info
short_description: List image tags with their approval lists and digests
version_added: 0.1.0
author:
  - segmented.registry contributors (!UNKNOWN)
description:
  - Lists the image stream tags of the registry cluster with the environments each is approved for and its
    current image digest, for one namespace, several, or the whole cluster.
notes:
  - The approval list is the annotation that M(segmented.registry.tag_environments) edits.
  - Reads with one C(image.openshift.io/v1) ImageStream list call per namespace, or a single
    cluster-wide list call; never one call per tag.
  - Every tag of a stream is listed, spec tags and tags that were only pushed.
  - A tag without the annotation is in the C(default) environment only (the integrated registry)
    and is reported as C(["default"]).
  - A tag whose annotation cannot be read is reported with an C(error) (and in I(errors)); the rest
    of the listing is unaffected.
  - With O(rollbacks=true), also reads the promotion history ConfigMaps (label
    C(segmented.registry/history=true)) with one ConfigMap list call per namespace, as
    M(segmented.registry.reconcile) does; a namespace whose history the account may not list (403)
    is reported in a warning and read as having no rollback in force.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - segmented.registry.cluster
  - segmented.registry.query
  - segmented.registry.attributes
  - segmented.registry.attributes.READ_ONLY
options:
  namespace:
    description:
      - Namespace, or list of namespaces, to list. One list call each.
      - When not given, the whole cluster is listed with one cluster-wide list call (needs C(list
        imagestreams) cluster-wide, like the C(registry-viewer) cluster role).
    type: list
    elements: str
  environment:
    description:
      - Only the tags approved for this environment, for example V(prod). C(default) selects the tags
        without any environment.
      - Tags whose annotation cannot be read are then left out of I(tags) and reported in I(errors).
    type: str
  known_environments:
    description:
      - The environments of the inventory. When given, each tag gets C(unknown_environments), the
        names of its list that are not among them (a typo, or a retired environment), and a warning
        says so; nothing is copied for such a name.
    type: list
    elements: str
  annotation_key:
    description:
      - The annotation that holds the list; C(segmented.registry/environments) by default, or the
        design proposal's C(environment). See M(segmented.registry.tag_environments).
    type: str
    default: segmented.registry/environments
  rollbacks:
    description:
      - Also give each tag the rollbacks in force from the promotion history (C(rollback.yml)), by
        environment, in C(rollbacks); what M(segmented.registry.promote) and
        M(segmented.registry.reconcile) keep there while the source still serves the digest rolled back from.
      - The history of the namespaces of O(namespace), or of the namespaces with a tag when the
        whole cluster is listed. Needs C(list configmaps) there.
    type: bool
    default: false
    version_added: 0.1.0
seealso:
  - module: segmented.registry.tag_environments
"""

EXAMPLES = r"""
- name: What may run in prod, in two namespaces
  segmented.registry.tag_environments_info:
    namespace: [myproject, payments]
    environment: prod
  register: prod_tags

- name: Everything on the registry cluster
  segmented.registry.tag_environments_info:
  register: all_tags

- name: Tags still only in default (never promoted)
  segmented.registry.tag_environments_info:
    namespace: myproject
    environment: default

- name: The tags of myproject with the rollbacks in force
  segmented.registry.tag_environments_info:
    namespace: myproject
    rollbacks: true
  register: listing
  # listing.tags[0].rollbacks: {prod: {rolled_back_from: "sha256:...", rolled_back_to: "sha256:..."}}

- name: Only the names of myproject's tags approved for uat but not prod
  segmented.registry.tag_environments_info:
    namespace: myproject
    query:
      uat_only: "tags[?contains(environments, 'uat') && !contains(environments, 'prod')].join(':', [stream, tag])"
  register: listing
"""

RETURN = r"""
query_results:
  description: The answer of each I(query) expression, by name.
  returned: when I(query) is given
  type: dict
  sample: {drifted: ["myproject/app:v2"]}
tags:
  description: The tags, sorted by namespace, stream and tag.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the image stream.
      type: str
    stream:
      description: Name of the image stream.
      type: str
    tag:
      description: Name of the tag.
      type: str
    environments:
      description:
        - The tag's approval list, the environments it is approved for; C(["default"]) when none; null when the
          annotation cannot be read.
        - Not the inventory's environment definitions (the I(environments) option of M(segmented.registry.promote)
          and M(segmented.registry.reconcile)); the key keeps its name.
      type: list
      elements: str
      sample: [test, uat]
    digest:
      description: The tag's current image (C(status.tags[<tag>].items[0].image)), or null.
      type: str
    unknown_environments:
      description: The names of the list that I(known_environments) does not have.
      type: list
      elements: str
      returned: when I(known_environments) is given
    rollbacks:
      description:
        - The rollbacks in force for this tag, by environment; empty when none.
        - Each has C(rolled_back_from) and C(rolled_back_to); a rollback holds while the tag's source
          digest is still C(rolled_back_from).
      type: dict
      returned: when O(rollbacks=true)
      sample: {prod: {rolled_back_from: "sha256:...", rolled_back_to: "sha256:..."}}
    error:
      description: Why the annotation cannot be read (the value, the key and the fix).
      type: str
      returned: when the annotation cannot be read
errors:
  description: The tags whose annotation cannot be read, with namespace, stream, tag and error.
  returned: always
  type: list
  elements: dict
namespaces:
  description: The namespaces listed, or C(["*"]) for the whole cluster.
  returned: always
  type: list
  elements: str
list_calls:
  description: How many ImageStream list calls were made (one per namespace, or one).
  returned: always
  type: int
"""

from ansible_collections.segmented.registry.plugins.module_utils.approval.annotation import (
    DEFAULT_ANNOTATION_KEY,
    DEFAULT_ENVIRONMENT,
    EnvironmentsError,
    check_annotation_key,
    check_known,
    name_problem,
)
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestreams import check_namespace
from ansible_collections.segmented.registry.plugins.module_utils.approval.imagestream_api import ImageStreamAPI, list_tags
from ansible_collections.segmented.registry.plugins.module_utils.errors import failing
from ansible_collections.segmented.registry.plugins.module_utils.kube import AnsibleK8SModule, auth_argument_spec
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history import rollbacks_by_tag
from ansible_collections.segmented.registry.plugins.module_utils.promotion.history_api import read as read_history
from ansible_collections.segmented.registry.plugins.module_utils.query import (
    ARGUMENT_SPEC as QUERY_SPEC,
    compile_query_option,
    run_queries,
)


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        namespace={"type": "list", "elements": "str"},
        environment={"type": "str"},
        known_environments={"type": "list", "elements": "str"},
        annotation_key={"type": "str", "default": DEFAULT_ANNOTATION_KEY, "no_log": False},
        rollbacks={"type": "bool", "default": False},
        **QUERY_SPEC,
    )
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    queries = compile_query_option(module)
    with failing(module):
        key = check_annotation_key(params["annotation_key"])
        known = check_known(params["known_environments"])
        namespaces = params["namespace"]
        if namespaces is not None:
            namespaces = sorted({check_namespace(namespace) for namespace in namespaces})
        environment = params["environment"]
        if environment is not None and environment != DEFAULT_ENVIRONMENT and name_problem(environment):
            raise EnvironmentsError(f"environment: {name_problem(environment)}")
        api = ImageStreamAPI.connect(module)
        listing = list_tags(api, namespaces, key, environment)
        if params["rollbacks"]:
            in_force = rollbacks_by_tag(read_history(api.cluster, namespaces or {entry["namespace"] for entry in listing["tags"]}, module.warn))
            for entry in listing["tags"]:
                entry["rollbacks"] = in_force.get((f"{entry['namespace']}/{entry['stream']}", entry["tag"]), {})
    for error in listing["errors"]:
        module.warn(error["error"])
    if known is not None:
        for entry in listing["tags"]:
            entry["unknown_environments"] = [env for env in entry["environments"] or [] if env != DEFAULT_ENVIRONMENT and env not in known]
            if entry["unknown_environments"]:
                module.warn(
                    f"{entry['namespace']}/{entry['stream']}:{entry['tag']} is approved for "
                    f"{', '.join(entry['unknown_environments'])}, which the inventory does not define "
                    f"(known: {', '.join(known)}); nothing is copied there"
                )
    if queries:
        with failing(module, **listing):  # the listing rides along with the query's error
            listing["query_results"] = run_queries(queries, listing)
    module.exit_json(changed=False, **listing)


if __name__ == "__main__":
    main()
