"""An in-memory API server behind the kubernetes client's dynamic ``request``, for the unit tests of
``cluster.Cluster`` and of its callers: ``fake_cluster()`` is a real ``Cluster`` over it, so a
caller's test runs the same paths, error mapping and retries as on a real server.

The server keeps objects by (kind, namespace, name) with a resourceVersion counter, answers
404, 409 (a stale resourceVersion on PUT or DELETE), 422 (a JSON patch ``test`` that fails) and 410
(a watch from a version it no longer keeps) as an API server does, records every request in
``requests`` and can be told to refuse the next matching request (``refuse``).
"""
import copy
import itertools
import json

import jsonpatch

from ansible_collections.segmented.registry.plugins.module_utils.cluster import Cluster

#: (api_version, kind) -> (plural, namespaced) of the kinds the fake serves beyond the fixed ones.
KINDS = {
    ("image.openshift.io/v1", "ImageStream"): ("imagestreams", True),
    ("config.openshift.io/v1", "Image"): ("images", False),
    ("machineconfiguration.openshift.io/v1", "MachineConfigPool"): ("machineconfigpools", False),
    ("operator.openshift.io/v1alpha1", "ImageContentSourcePolicy"): ("imagecontentsourcepolicies", False),
    ("config.openshift.io/v1", "ImageDigestMirrorSet"): ("imagedigestmirrorsets", False),
    ("config.openshift.io/v1", "ImageTagMirrorSet"): ("imagetagmirrorsets", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("discovery.k8s.io/v1", "EndpointSlice"): ("endpointslices", True),
}


class ApiError(Exception):
    """What the kubernetes client raises for an answer outside 2xx: ``status``, ``reason``, ``body``."""

    def __init__(self, status, message="", details=None, reason=""):
        super().__init__(f"({status}) {reason}")
        self.status = status
        self.reason = reason
        body = {"kind": "Status", "code": status, "message": message}
        if details is not None:
            body["details"] = details
        self.body = json.dumps(body)


class ResourceNotFoundError(Exception):
    """Discovery found no such kind (the kubernetes client's ``ResourceNotFoundError`` by name)."""


class Resource:
    def __init__(self, name, namespaced):
        self.name = name
        self.namespaced = namespaced


class Resources:
    def __init__(self, server):
        self.server = server

    def get(self, prefix=None, api_version=None, kind=None):
        self.server.lookups.append((api_version, kind))
        if (api_version, kind) not in self.server.kinds:
            raise self.server.missing_kind(f"No matches found for {api_version} {kind}")
        plural, namespaced = self.server.kinds[(api_version, kind)]
        return Resource(plural, namespaced)


class Configuration:
    host = "https://api.example.com:6443"


class Stream:
    """A streamed answer (a watch): one JSON event per line."""

    def __init__(self, events):
        self.events = events
        self.released = False
        self.closed = False

    def stream(self, amt=None, decode_content=False):
        for event in self.events:
            yield (json.dumps(event) + "\n").encode()

    def close(self):
        self.closed = True

    def release_conn(self):
        self.released = True


class LogStream(Stream):
    """A pod's log as the API server answers it (whole, or followed): its lines as written."""

    def __init__(self, text):
        super().__init__([])
        self.text = text

    def stream(self, amt=None, decode_content=False):
        for line in self.text.splitlines(keepends=True):
            yield line.encode()

    @property
    def data(self):
        return self.text.encode()


def _merge(target, patch):
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeApiServer:
    """The dynamic client of one fake API server (``request`` and ``resources``). Objects are kept
    by (kind, namespace, name) in ``objects``; every successful write is logged in ``writes`` as
    (verb, kind, namespace, name), verb one of create, replace, patch, delete."""

    uids = itertools.count(1)

    def __init__(self, objects=(), kinds=None, allowed=True):
        from ansible_collections.segmented.registry.plugins.module_utils import kube

        self.configuration = Configuration()
        self.kinds = dict(KINDS if kinds is None else kinds)
        self.missing_kind = kube.ResourceNotFoundError if kube.HAS_KUBERNETES else ResourceNotFoundError
        self.objects = {}
        self.version = 100
        self.events = []
        #: Events before this resourceVersion are no longer kept (a watch from before them gets 410).
        self.oldest = 0
        self.requests = []
        self.writes = []
        self.lookups = []
        self.refusals = []
        self.streams = []  # the watches and logs answered, in order
        self.logs = {}  # pod name -> its log
        self.allowed = allowed
        self.tokens = 0
        self.resources = Resources(self)
        for obj in objects:
            self.put(obj)

    # -- set-up --------------------------------------------------------------------------------

    def _served(self):
        """(api_version, plural) -> (kind, namespaced) of every kind served."""
        served = {(k.api_version, k.plural): (k.kind, k.namespaced) for k in _fixed()}
        served.update({(api_version, plural): (kind, namespaced) for (api_version, kind), (plural, namespaced) in self.kinds.items()})
        return served

    def put(self, obj, event="ADDED"):
        """Store ``obj`` (a new resourceVersion, a uid unless it has one) as if a client wrote it;
        the stored copy."""
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        meta.setdefault("uid", f"uid-{next(self.uids)}")
        self.objects[(stored["kind"], meta.get("namespace"), meta["name"])] = stored
        self.events.append({"type": event, "object": copy.deepcopy(stored)})
        return copy.deepcopy(stored)

    def refuse(self, method, fragment, error, times=1):
        """Answer the next ``times`` requests of ``method`` whose path contains ``fragment`` with ``error``."""
        self.refusals.extend([(method, fragment, error)] * times)

    # -- the dynamic client ----------------------------------------------------------------------

    def request(self, method, path, body=None, serializer=None, serialize=True, **params):
        self.requests.append((method, path, copy.deepcopy(body), {k: v for k, v in params.items() if v is not None}))
        for index, (refused_method, fragment, error) in enumerate(self.refusals):
            if refused_method == method and fragment in path:
                del self.refusals[index]
                raise error
        if params.get("watch"):
            self.streams.append(self._watch(path, params))
            return self.streams[-1]
        if path.endswith("/log"):
            pod = path.split("/")[-2]
            self.streams.append(LogStream(self.logs[pod]))
            return self.streams[-1]
        answer = self._answer(method, path, body, params)
        return serializer(self, copy.deepcopy(answer)) if serializer else answer

    def _split(self, path):
        """(api_version, kind, namespace, name, subresource) of an API path."""
        parts = path.strip("/").split("/")
        api_version, rest = (parts[1], parts[2:]) if parts[0] == "api" else ("/".join(parts[1:3]), parts[3:])
        namespace = None
        if rest[0] == "namespaces" and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        kind, namespaced = self._served()[(api_version, rest[0])]
        return api_version, kind, namespace, (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)

    def token(self, namespace, name, body):
        """The answer to a TokenRequest for service account ``namespace/name`` (it exists)."""
        self.tokens += 1
        return {**body, "status": {"token": f"token-{self.tokens}", "expirationTimestamp": "2026-01-02T03:04:05Z"}}

    def created(self, body):
        """What the server stores of a created object (a controller may fill it in)."""
        return body

    def _answer(self, method, path, body, params):
        api_version, kind, namespace, name, subresource = self._split(path)
        dry = params.get("dry_run") == "All"
        if kind == "SelfSubjectAccessReview":
            attributes = body["spec"]["resourceAttributes"]
            allowed = self.allowed(attributes) if callable(self.allowed) else self.allowed
            return {**body, "status": {"allowed": bool(allowed), "reason": "" if allowed else "no RBAC policy matched"}}
        current = self.objects.get((kind, namespace, name)) if name else None
        if subresource == "token":
            if current is None:
                raise ApiError(404, f'serviceaccounts "{name}" not found', reason="Not Found")
            return self.token(namespace, name, body)
        if method == "get" and name is None:
            items = [copy.deepcopy(obj) for (k, ns, _n), obj in sorted(self.objects.items(), key=lambda item: str(item[0]))
                     if k == kind and namespace in (None, ns) and _selected(obj, params.get("label_selector"))]
            return {"kind": f"{kind}List", "metadata": {"resourceVersion": str(self.version)}, "items": items}
        if method == "get":
            if current is None:
                raise ApiError(404, f'"{name}" not found', reason="Not Found")
            return current
        if method == "post":
            name = body["metadata"]["name"]
            if (kind, namespace, name) in self.objects:
                raise ApiError(409, f'"{name}" already exists', reason="AlreadyExists")
            return self._store("create", api_version, kind, namespace, name, self.created(body), dry)
        if current is None:
            raise ApiError(404, f'"{name}" not found', reason="Not Found")
        if method == "put":
            if body["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
                raise ApiError(409, "the object has been modified; please apply your changes to the latest version and try again", reason="Conflict")
            return self._store("replace", api_version, kind, namespace, name, body, dry, current)
        if method == "patch":
            new = copy.deepcopy(current)
            if params.get("content_type") == "application/json-patch+json":
                try:
                    new = jsonpatch.apply_patch(new, body)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
                    raise ApiError(422, "the server rejected our request due to an error in our request", reason="Unprocessable Entity")
            else:
                _merge(new, body)
            return self._store("patch", api_version, kind, namespace, name, new, dry, current)
        if method == "delete":
            wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
            if wanted not in (None, current["metadata"]["resourceVersion"]):
                raise ApiError(409, "Precondition failed: ResourceVersion in precondition does not match", reason="Conflict")
            if not dry:
                del self.objects[(kind, namespace, name)]
                self.version += 1
                self.writes.append(("delete", kind, namespace, name))
                self.events.append({"type": "DELETED", "object": copy.deepcopy(current)})
            return {"kind": "Status", "status": "Success"}
        raise AssertionError(f"the fake does not answer {method} {path}")

    def _store(self, verb, api_version, kind, namespace, name, body, dry, current=None):
        stored = copy.deepcopy(body)
        stored.update(apiVersion=api_version, kind=kind)
        meta = stored.setdefault("metadata", {})
        meta["name"] = name
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = current["metadata"]["uid"] if current is not None else f"uid-{next(self.uids)}"
        if dry:
            return stored
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        self.objects[(kind, namespace, name)] = stored
        self.writes.append((verb, kind, namespace, name))
        self.events.append({"type": "ADDED" if current is None else "MODIFIED", "object": copy.deepcopy(stored)})
        return copy.deepcopy(stored)

    def _watch(self, path, params):
        since = int(params.get("resource_version") or 0)
        if since < self.oldest:
            return Stream([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}])
        _api_version, kind, namespace, _name, _sub = self._split(path)
        events = [e for e in self.events if int(e["object"]["metadata"]["resourceVersion"]) > since
                  and e["object"]["kind"] == kind and namespace in (None, e["object"]["metadata"].get("namespace"))]
        if params.get("allow_watch_bookmarks"):
            events.append({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": str(self.version)}}})
        return Stream(events)


def _selected(obj, selector):
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, _eq, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _fixed():
    from ansible_collections.segmented.registry.plugins.module_utils import cluster

    return cluster.FIXED.values()


def fake_cluster(objects=(), where=None, dry_run=False, **kwargs):
    """A real ``Cluster`` over a new ``FakeApiServer`` (``cluster.dynamic``), with no back-off sleeps."""
    found = Cluster(FakeApiServer(objects, **kwargs), where, dry_run=dry_run)
    found.sleep = lambda seconds: None
    return found
