"""Node pull configuration as OpenShift renders it: the lab's stand-in for the machine-config operator.

On OpenShift the machine-config operator turns the cluster's ``config.openshift.io/v1`` objects
(``Image`` named ``cluster``: ``spec.registrySources``; ``ImageDigestMirrorSet``;
``ImageTagMirrorSet``) into every node's ``/etc/containers/registries.conf`` (TOML, read by
containers/image's sysregistriesv2) and ``/etc/containers/policy.json`` (containers-policy.json(5)),
starting from the files its templates put on every node. CRI-O pulls through containers/image and
obeys both. This module does the same rendering, as pure functions (objects in, file texts out),
following the documented behaviour of the operator and of openshift/runtime-utils'
``EditRegistriesConfig``:

- mirrors of every ImageDigestMirrorSet (``pull-from-mirror = "digest-only"``) and
  ImageTagMirrorSet (``"tag-only"``) with the same source are merged into one list, keeping the
  relative order each object gives where the orders agree; sources are written sorted;
  a source whose mirror set says ``mirrorSourcePolicy: NeverContactSource`` is ``blocked``
  (only its mirrors are contacted);
- ``insecureRegistries`` and ``blockedRegistries`` mark their scope and every configured scope
  nested inside it (``*.example.com`` wildcards included); a scope nested inside a mirrored source
  inherits that source's mirrors with the same path suffix;
- policy.json: with ``allowedRegistries``, the default is ``reject`` and each allowed scope is
  ``insecureAcceptAnything``; with ``blockedRegistries``, the default accepts and each blocked
  scope is ``reject``; both ``docker`` and ``atomic`` transports (``atomic`` only for scopes of
  fewer than three ``/``); neither: the template file unchanged.

What the lab leaves out: the release payload (the operator never blocks the payload's own
repository; a lab cluster has no payload), ``containerRuntimeSearchRegistries`` (a drop-in file),
ClusterImagePolicy / ImagePolicy signature requirements and ImageContentSourcePolicy.
"""
import json
import re
import tomllib

from ansible_collections.segmented.registry.plugins.module_utils.consumer.scopes import nested, valid_scope

# The files the operator's templates put on every node before any edit
# (templates/*/01-*-container-runtime/_base/files/{container-registries,policy}.yaml).
SEARCH_REGISTRIES = ("registry.access.redhat.com", "docker.io")
TEMPLATE_POLICY_JSON = """{
    "default": [
        {
            "type": "insecureAcceptAnything"
        }
    ],
    "transports":
        {
            "docker-daemon":
                {
                    "": [{"type":"insecureAcceptAnything"}]
                }
        }
}
"""
NEVER_CONTACT_SOURCE = "NeverContactSource"
ALLOW_CONTACTING_SOURCE = "AllowContactingSource"
DIGEST_ONLY = "digest-only"
TAG_ONLY = "tag-only"
# openshift/api's validation patterns for ImageDigestMirrors.source and .mirrors[]
_SOURCE = re.compile(r"^\*(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+$|"
                     r"^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|"
                     r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|"
                     r"[-]*)[a-z0-9]+)+)?)+)?$")
_MIRROR = re.compile(r"^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|"
                     r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|"
                     r"[-]*)[a-z0-9]+)+)?)+)?$")


class RenderError(ValueError):
    """Objects that the operator would refuse; the message names the object and field."""


# -- mirror sets -------------------------------------------------------------------------------
def merge_orders(lists):
    """One order of every element of ``lists`` that keeps each list's order where they agree.

    Deterministic: among elements free to come next, the alphabetically first goes first; a cycle
    (two lists disagreeing) is broken at its alphabetically first element."""
    successors, preds = {}, {}
    for items in lists:
        for node in items:
            successors.setdefault(node, set())
            preds.setdefault(node, set())
        for a, b in zip(items, items[1:]):
            if a != b:
                successors[a].add(b)
                preds[b].add(a)
    ordered_all = sorted(successors)
    queue = [n for n in ordered_all if not preds[n]]
    used, result, index = set(), [], 0
    while queue or index < len(ordered_all):
        if queue:
            node = queue.pop(0)
        else:
            node = ordered_all[index]
            index += 1
            if node in used:
                continue
        used.add(node)
        result.append(node)
        ready = []
        for succ in successors[node]:
            preds[succ].discard(node)
            if not preds[succ] and succ not in used:
                ready.append(succ)
        queue.extend(sorted(ready))
    return result


def merged_mirror_sets(entries):
    """``entries``: (source, mirrors, mirrorSourcePolicy) in object order. Returns, sorted by
    source, (source, merged mirrors without the source itself at the end, never_contact_source)."""
    lists, never = {}, set()
    for source, mirrors, policy in entries:
        if not any(m != source for m in mirrors):
            continue  # no real mirror: not a mirror set (its policy is ignored)
        if policy == NEVER_CONTACT_SOURCE:
            never.add(source)
        lists.setdefault(source, []).append(list(mirrors) if source in mirrors else list(mirrors) + [source])
    result = []
    for source in sorted(lists):
        order = merge_orders(lists[source])
        if order and order[-1] == source:
            order = order[:-1]  # the source is tried last anyway
        result.append((source, order, source in never))
    return result


def _mirror_entries(objects, kind, field, where):
    entries = []
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name", "?")
        for i, item in enumerate((obj.get("spec") or {}).get(field) or []):
            path = f"{kind} {name}: spec.{field}[{int(i)}]"
            source = item.get("source") or ""
            mirrors = [str(m) for m in item.get("mirrors") or []]
            policy = item.get("mirrorSourcePolicy") or ALLOW_CONTACTING_SOURCE
            if not _SOURCE.match(source):
                raise RenderError(f"{path}.source {source!r} is not a registry scope (host[:port][/namespace...] or *.domain); fix the source")
            if policy not in (NEVER_CONTACT_SOURCE, ALLOW_CONTACTING_SOURCE):
                raise RenderError(f"{path}.mirrorSourcePolicy {policy!r} must be NeverContactSource or AllowContactingSource")
            if where.setdefault(source, (policy, path))[0] != policy:
                raise RenderError("%s.mirrorSourcePolicy %s conflicts with %s for the same source %r; "
                                  "give every mirror set of one source the same policy"
                                  % (path, policy, where[source][1], source))
            for mirror in mirrors:
                if not _MIRROR.match(mirror):
                    raise RenderError(f"{path}.mirrors has {mirror!r}, not a host[:port][/namespace...]; fix the mirror")
                if policy == NEVER_CONTACT_SOURCE and mirror == source:
                    raise RenderError(f"{path}: NeverContactSource with the source {source!r} among its mirrors; remove it from mirrors")
            entries.append((source, mirrors, policy))
    return entries


# -- registries.conf ---------------------------------------------------------------------------
class _Registry:
    def __init__(self, scope):
        wildcard = scope.startswith("*.")
        self.prefix = scope if wildcard else ""
        self.location = "" if wildcard else scope
        self.insecure = False
        self.blocked = False
        self.mirrors = []  # dicts: location, insecure, pull-from-mirror

    @property
    def scope(self):
        return self.prefix or self.location


def _edit(insecure, blocked, digest_sets, tag_sets):
    registries = []

    def entry(scope):
        for reg in registries:
            if reg.scope == scope:
                return reg
        registries.append(_Registry(scope))
        return registries[-1]

    for sets, pull in ((digest_sets, DIGEST_ONLY), (tag_sets, TAG_ONLY)):
        for source, mirrors, never in sets:
            reg = entry(source)
            reg.blocked = reg.blocked or never
            reg.mirrors.extend({"location": m, "insecure": False, "pull-from-mirror": pull} for m in mirrors)
    for scope in blocked:
        entry(scope)
    for scope in insecure:
        entry(scope).insecure = True
        for reg in registries:
            if nested(reg.scope, scope):
                reg.insecure = True
            for mirror in reg.mirrors:
                if nested(mirror["location"], scope):
                    mirror["insecure"] = True
    for scope in blocked:
        entry(scope).blocked = True
        for reg in registries:
            if nested(reg.scope, scope):
                reg.blocked = True
    for source, _, _ in list(digest_sets) + list(tag_sets):
        mirrored = entry(source)
        for reg in registries:
            if reg.scope != mirrored.scope and nested(reg.scope, mirrored.scope) and not reg.mirrors:
                suffix = reg.scope[len(mirrored.scope):]
                reg.mirrors = [dict(m, location=m["location"] + suffix) for m in mirrored.mirrors]
    return registries


def _toml_string(value):
    return json.dumps(value)  # a TOML basic string: the same escapes as JSON for these characters


def _registries_text(registries):
    lines = [f"unqualified-search-registries = [{', '.join((_toml_string(s) for s in SEARCH_REGISTRIES))}]",
             'short-name-mode = ""', 'additional-layer-store-auth-helper = ""']
    for reg in registries:
        lines += ["", "[[registry]]", f"  prefix = {_toml_string(reg.prefix)}"]
        if reg.location:
            lines.append(f"  location = {_toml_string(reg.location)}")
        if reg.insecure:
            lines.append("  insecure = true")
        if reg.blocked:
            lines.append("  blocked = true")
        for mirror in reg.mirrors:
            lines += ["", "  [[registry.mirror]]", f"    location = {_toml_string(mirror['location'])}"]
            if mirror["insecure"]:
                lines.append("    insecure = true")
            lines.append(f"    pull-from-mirror = {_toml_string(mirror['pull-from-mirror'])}")
    return "\n".join(lines) + "\n"


def _registry_sources(image):
    sources = ((image or {}).get("spec") or {}).get("registrySources") or {}
    lists = {}
    for field in ("allowedRegistries", "blockedRegistries", "insecureRegistries"):
        values = [str(v) for v in sources.get(field) or []]
        for value in values:
            if not valid_scope(value):
                raise RenderError("Image cluster: spec.registrySources.%s has %r, not a registry scope "
                                  "(host[:port][/namespace...] or *.domain); fix or remove it" % (field, value))
        lists[field] = values
    if lists["allowedRegistries"] and lists["blockedRegistries"]:
        raise RenderError("Image cluster: spec.registrySources sets both allowedRegistries and "
                          "blockedRegistries; only one of them may be set")
    return lists


def render_registries_conf(image=None, digest_mirror_sets=(), tag_mirror_sets=()):
    """registries.conf of a node of a cluster with these objects (``image``: the Image ``cluster``)."""
    sources = _registry_sources(image)
    where = {}
    digest = merged_mirror_sets(_mirror_entries(digest_mirror_sets, "ImageDigestMirrorSet", "imageDigestMirrors", where))
    tag = merged_mirror_sets(_mirror_entries(tag_mirror_sets, "ImageTagMirrorSet", "imageTagMirrors", where))
    registries = _edit(sources["insecureRegistries"], sources["blockedRegistries"], digest, tag)
    return _registries_text(registries)


# -- policy.json -------------------------------------------------------------------------------
def render_policy_json(image=None):
    """policy.json of a node of a cluster whose Image ``cluster`` is ``image``."""
    sources = _registry_sources(image)
    allowed, blocked = sources["allowedRegistries"], sources["blockedRegistries"]
    if not allowed and not blocked:
        return TEMPLATE_POLICY_JSON
    accept, reject = [{"type": "insecureAcceptAnything"}], [{"type": "reject"}]
    if allowed:
        default, scopes = reject, {scope: accept for scope in allowed}
    else:
        default, scopes = accept, {scope: reject for scope in blocked}
    policy = {
        "default": default,
        "transports": {
            "docker-daemon": {"": accept},
            "docker": scopes,
            "atomic": {scope: req for scope, req in scopes.items() if scope.count("/") < 3},
        },
    }
    return json.dumps(policy, indent=2, sort_keys=True)


def render(image=None, digest_mirror_sets=(), tag_mirror_sets=()):
    """Both files of a node: ``{"registries.conf": text, "policy.json": text}``."""
    return {
        "registries.conf": render_registries_conf(image, digest_mirror_sets, tag_mirror_sets),
        "policy.json": render_policy_json(image),
    }


def mirrors_for(registries_conf, reference):
    """Where a node with this registries.conf (text) pulls ``reference`` from: the mirror locations
    (with the reference's path below them) of the most specific registry entry that matches, in
    order, that serve this kind of reference (``digest-only`` mirrors serve ``@sha256:`` references,
    ``tag-only`` ones tags); and whether the source itself is blocked."""
    config = tomllib.loads(registries_conf)
    name = reference.split("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    best = None
    for entry in config.get("registry", []):
        scope = entry.get("prefix") or entry.get("location")
        if scope and nested(name, scope) and (best is None or len(scope) > len(best[0])):
            best = (scope, entry)
    if best is None:
        return {"source_blocked": False, "mirrors": []}
    scope, entry = best
    suffix = name[len(scope):] if not scope.startswith("*.") else name[name.index("/"):] if "/" in name else ""
    serves = ("all", DIGEST_ONLY if "@" in reference else TAG_ONLY)
    return {"source_blocked": bool(entry.get("blocked")),
            "mirrors": [{"location": m["location"] + suffix, "pull_from_mirror": m.get("pull-from-mirror", "all")}
                        for m in entry.get("mirror", []) if m.get("pull-from-mirror", "all") in serves]}
