# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Which approved tags a consumer cluster gets ImageStream tags for (documented in
image_stream_tags.yml beside this file)."""


def image_stream_tags(tags, environment, run=None):
    """The entries of ``tags`` (``tag_environments_info``'s) approved for ``environment``, without
    those that ``run`` (the promotion's result: ``gated`` and ``failures`` actions, each with
    ``environment``, ``repository`` and ``tag``) held back or failed to copy there."""
    held = {
        (item.get("repository"), item.get("tag"))
        for key in ("gated", "failures")
        for item in (run or {}).get(key) or []
        if item.get("environment") == environment
    }
    return [
        entry
        for entry in tags
        if environment in (entry.get("environments") or []) and (f"{entry.get('namespace')}/{entry.get('stream')}", entry.get("tag")) not in held
    ]


class FilterModule:
    def filters(self):
        return {"image_stream_tags": image_stream_tags}
