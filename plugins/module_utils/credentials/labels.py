# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What a credential is made of, and how each object is marked as ours (pure: no I/O).

Everything is tracked with labels and annotations on the objects themselves, never with state kept
on the controller:

- On the **registry cluster**, in the identity's namespace (the collection's namespace of the
  consumers' pull identities, or the build namespace for a push credential): the ServiceAccount
  (the identity) and one Secret per credential generation; its RoleBinding where it has its access
  (the environment's namespace, or the build namespace). A
  TokenRequest token is bound to its generation Secret; deleting the Secret revokes the token. A
  generation that rotation replaced carries ``revoke-after``; a later run deletes it after then.
- On the **consumer cluster**: the ``kubernetes.io/dockerconfigjson`` Secrets, which name the
  identity and generation they hold and the service accounts they were linked to.
"""

from __future__ import annotations

import time
from typing import Iterable

from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "segmented.registry"
PREFIX = "segmented.registry/"
LABEL_CREDENTIAL = PREFIX + "credential"  # the credential's name (pull, push-<namespace>)
LABEL_CLUSTER = PREFIX + "cluster"  # the consumer cluster (inventory host)
LABEL_ACCESS = PREFIX + "access"  # pull or push
LABEL_IDENTITY = PREFIX + "identity"  # on generation Secrets: the ServiceAccount's name
ANNOTATION_IDENTITY = PREFIX + "identity"  # namespace/name of the ServiceAccount
ANNOTATION_GENERATION = PREFIX + "generation"  # namespace/name of the generation Secret
ANNOTATION_GENERATION_UID = PREFIX + "generation-uid"
ANNOTATION_EXPIRES = PREFIX + "expires"  # epoch seconds, or "never"
ANNOTATION_REGISTRY = PREFIX + "registry"  # the dockerconfigjson key (host[:port])
ANNOTATION_LINKED = PREFIX + "linked"  # service accounts linked, comma-separated
ANNOTATION_REVOKE_AFTER = PREFIX + "revoke-after"  # on a replaced generation: epoch seconds
ANNOTATION_ACCOUNT_UID = PREFIX + "service-account-uid"
ANNOTATION_GRANT_NAMESPACE = PREFIX + "grant-namespace"  # on an identity: where its RoleBinding is
ANNOTATION_AUDIENCE = PREFIX + "audience"  # on generation Secrets: the token's audience ("": the API's)

ACCESS_PULL = "pull"
ACCESS_PUSH = "push"
#: The ClusterRole that gives the access, in the identity's namespace: pull from an environment
#: registry is the token server's own right (roles/registry_cluster makes the role; no built-in
#: role carries it), push to the integrated registry is OpenShift's.
CLUSTER_ROLES = {ACCESS_PULL: "segmented-registry:environment-puller", ACCESS_PUSH: "system:image-pusher"}
#: The user name written into the dockerconfigjson (the registry ignores it).
USERNAME = "serviceaccount"

TOKEN_BOUND = "bound"
TOKEN_LONG_LIVED = "long_lived"
NEVER = "never"


def base_labels(credential: str, cluster: str, access: str) -> dict[str, str]:
    """The labels of every object a credential makes."""
    return {MANAGED_BY: MANAGED_BY_VALUE, LABEL_CREDENTIAL: credential, LABEL_CLUSTER: cluster, LABEL_ACCESS: access}


def owns(secret: dict | None, credential: str, cluster: str, registry: str | None, identity_namespace: str) -> bool:
    """Whether a consumer Secret (a dict) is this credential's to overwrite, read and remove: made by
    segmented.registry for ``credential``, and either for the inventory host ``cluster`` or for the
    same registry through an identity in the same registry-cluster namespace (the same environment's
    or build namespace's credential, after the host was renamed in the inventory: adopted). A Secret
    of another registry (another installation writing to the same cluster) is not."""
    metadata = (secret or {}).get("metadata") or {}
    found = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    if found.get(MANAGED_BY) != MANAGED_BY_VALUE or found.get(LABEL_CREDENTIAL) != credential:
        return False
    if found.get(LABEL_CLUSTER) == cluster:
        return True
    return annotations.get(ANNOTATION_REGISTRY) == registry and (annotations.get(ANNOTATION_IDENTITY) or "").partition("/")[0] == identity_namespace


def selector(**labels: str) -> str:
    """A label selector for our objects with these extra labels (keys without the prefix)."""
    items = [f"{MANAGED_BY}={MANAGED_BY_VALUE}"] + [f"{PREFIX}{key}={value}" for key, value in sorted(labels.items())]
    return ",".join(items)


def identity_name(access: str, cluster: str) -> str:
    """The registry-cluster ServiceAccount of ``cluster``'s credential (its RoleBinding has the same name)."""
    return f"segmented-{access}-{cluster}"


def credential_name(access: str, namespace: str | None = None) -> str:
    """``pull`` for a cluster's pull credential, ``push-<namespace>`` for a builder's."""
    return ACCESS_PULL if access == ACCESS_PULL else f"{ACCESS_PUSH}-{namespace}"


def generation_name(identity: str, number: int) -> str:
    """The name of ``identity``'s generation Secret ``number``."""
    return f"{identity}-gen{int(number)}"


def generation_number(name: str, identity: str) -> int | None:
    """The number of a generation Secret's name, or None when it is not one of ``identity``'s."""
    prefix = f"{identity}-gen"
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return None
    return int(name[len(prefix) :])


def cluster_label_problem(cluster: str) -> str | None:
    """Why ``cluster`` (an inventory host name) cannot name a credential, or None."""
    if not is_dns1123_label(cluster) or len(cluster) > 40:
        return (
            "credentials are named after the cluster, so its inventory host name must be a lowercase DNS label of at most 40 characters (letters, digits, '-')"
        )
    return None


def expires_text(epoch: float | None) -> str:
    """An expiry as the annotation records it: epoch seconds, or ``never``."""
    return NEVER if epoch is None else str(int(epoch))


def expires_epoch(text: str | None) -> int | None:
    """Epoch seconds from ``expires_text``; None for never; 0 (expired) for anything unreadable."""
    if text == NEVER:
        return None
    if text is None:
        return 0
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def keep_generation(expires: float | None, renew_before: float, now: float | None = None) -> bool:
    """Whether a generation that expires at ``expires`` (epoch seconds, None: never) is kept: it is
    renewed once it is within ``renew_before`` seconds of its expiry."""
    if expires is None:
        return True
    now = time.time() if now is None else now
    return expires - now > renew_before


#: How much later than ``duration`` allows a generation may expire and still be kept: its expiry is
#: the API server's clock, ``now`` the controller's.
EXPIRY_TOLERANCE = 300


def outlives_duration(expires: float | None, duration: float, now: float | None = None) -> bool:
    """Whether a generation that expires at ``expires`` (epoch seconds, None: never) expires later
    than a token of ``duration`` seconds minted now would, beyond ``EXPIRY_TOLERANCE`` (the duration
    was shortened since it was minted)."""
    if expires is None:
        return False
    now = time.time() if now is None else now
    return expires - now > duration + EXPIRY_TOLERANCE


def due_for_revocation(annotations: dict[str, str] | None, now: float | None = None) -> bool:
    """Whether a replaced generation's grace period is over (one without ``revoke-after`` is current)."""
    value = (annotations or {}).get(ANNOTATION_REVOKE_AFTER)
    if value is None:
        return False
    now = time.time() if now is None else now
    try:
        return float(value) <= now
    except ValueError:
        return True


def linked_list(text: str | None) -> list[str]:
    """The service account names of a ``linked`` annotation."""
    return [item for item in (text or "").split(",") if item]


def linked_text(names: Iterable[str]) -> str:
    """The ``linked`` annotation of these service account names (sorted, once each)."""
    return ",".join(sorted(set(names)))
