# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The options that name one image stream tag (tag_environments, promote, rollback) and, as
# segmented.registry.tag.edit, the one that bounds a write of its approval list (tag_environments,
# promote), documented once next to plugins/module_utils/approval/edit.py (its tag_argument_spec
# and edit_argument_spec; a unit test compares them).


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description: Namespace (project) of the image stream on the registry cluster.
    type: str
    required: true
  name:
    description:
      - The image stream tag as C(<stream>:<tag>), like C(app:v1.2.3).
      - Give either I(name), or I(stream) and I(tag).
    type: str
  stream:
    description: Name of the image stream. Goes with I(tag); excludes I(name).
    type: str
  tag:
    description: Name of the tag in I(stream). Goes with I(stream); excludes I(name).
    type: str
"""

    EDIT = r"""
options:
  max_attempts:
    description:
      - How many refused writes to accept before giving up with an error, counting only those
        that did not lose a race to another edit of the tag (the API server's own 409 Conflict).
        Lost races are retried too, up to four times I(max_attempts) attempts in all. Nothing is
        written by a failed run.
    type: int
    default: 10
"""
