# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Which consumer clusters ask for ImageStream tags, and which approved tags each gets, at which
digest (documented in image_stream_consumers.yml and image_stream_tags.yml beside this file)."""


def image_stream_consumers(hostvars, topology):
    """The consumers that ask for ImageStreams and the namespaces they ask for, ``{"consumers":
    [...], "namespaces": [...]}``: the consumers of the environments of the topology's
    ``promotion_order`` (an environment with state absent is not in it), in that order, that are
    hosts of the inventory (in ``hostvars``) with a non-empty
    ``consumer_cluster_image_stream_namespaces``; the namespaces sorted, each once."""
    consumers = [
        name
        for environment in topology["promotion_order"]
        for name in topology["environments"][environment]["consumers"]
        if name in hostvars and hostvars[name].get("consumer_cluster_image_stream_namespaces")
    ]
    namespaces = {namespace for name in consumers for namespace in hostvars[name]["consumer_cluster_image_stream_namespaces"]}
    return {"consumers": consumers, "namespaces": sorted(namespaces)}


def image_stream_tags(tags, environment, run=None):
    """The entries of ``tags`` (``tag_environments_info``'s) approved for ``environment``, without
    those that ``run`` (the promotion's result: ``gated`` and ``failures`` actions, each with
    ``environment``, ``repository`` and ``tag``) held back or failed to copy there, and with the
    digest a rollback in force there (an entry's ``rollbacks``, from ``tag_environments_info`` with
    ``rollbacks``) keeps while the source still serves the digest it was rolled back from (as the
    promotion's plan does)."""
    held = {
        (item.get("repository"), item.get("tag"))
        for key in ("gated", "failures")
        for item in (run or {}).get(key) or []
        if item.get("environment") == environment
    }
    result = []
    for entry in tags:
        if environment not in (entry.get("environments") or []) or (f"{entry.get('namespace')}/{entry.get('stream')}", entry.get("tag")) in held:
            continue
        rollback = (entry.get("rollbacks") or {}).get(environment)
        result.append(dict(entry, digest=rollback["rolled_back_to"]) if rollback and entry.get("digest") == rollback["rolled_back_from"] else entry)
    return result


class FilterModule:
    def filters(self):
        return {"image_stream_consumers": image_stream_consumers, "image_stream_tags": image_stream_tags}
