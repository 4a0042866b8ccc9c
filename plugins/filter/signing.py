# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The token signing certificates the registries trust, and what a rotation writes (documented in
signing_trust.yml and signing_rotation.yml beside this file)."""

import base64
import binascii
import datetime

from ansible.errors import AnsibleFilterError

#: When the certificate a rotation replaced (previous.crt) stops being trusted, RFC 3339 (UTC).
RETIRE_AFTER = "segmented.registry/previous-retire-after"


def _time(value, what, name="signing_trust"):
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise AnsibleFilterError(f"{name}: {what} {value!r} is not an RFC 3339 time (like 2026-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        raise AnsibleFilterError(f"{name}: {what} {value!r} has no time zone; use UTC (a trailing Z)")
    return moment.astimezone(datetime.timezone.utc)


def _rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _grace(grace_seconds, name):
    try:
        grace = int(grace_seconds)
    except (TypeError, ValueError):
        grace = -1
    if grace < 0:
        raise AnsibleFilterError(
            f"{name}: the grace {grace_seconds!r} must be a number of seconds, 0 or more (registry_cluster_signing_previous_grace_seconds)"
        )
    return grace


def _pem(data, key):
    try:
        return base64.b64decode(data[key]).decode().strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AnsibleFilterError(
            f"signing_trust: the Secret's {key} is not base64 PEM text; rotate the signing key (registry_cluster_rotate_signing_key)"
        ) from None


def signing_trust(secret, now, grace_seconds):
    """What the registries trust from the token server's signing Secret at ``now``, and the change the
    Secret needs. ``secret``: the Secret object (or {} / None when there is none). Returns
    {"certs": [PEM, ...] (current first), "patch": merge patch for the Secret or None,
    "retire_after": RFC 3339 time or None}.

    The replaced certificate (``previous.crt``) stays trusted until the Secret's RETIRE_AFTER
    annotation has passed; then the patch removes it and the annotation. A previous.crt without the
    annotation (written before it existed) starts its grace now."""
    if not isinstance(secret, dict) and secret is not None:
        raise AnsibleFilterError(f"signing_trust takes the Secret object, not {type(secret).__name__}")
    grace = _grace(grace_seconds, "signing_trust")
    now = _time(now, "now")
    secret = secret or {}
    data = secret.get("data") or {}
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    certs = [_pem(data, "tls.crt")] if data.get("tls.crt") else []
    if not data.get("previous.crt"):
        return {"certs": certs, "patch": None, "retire_after": None}
    if not annotations.get(RETIRE_AFTER):
        retire_after = _rfc3339(now + datetime.timedelta(seconds=grace))
        return {
            "certs": certs + [_pem(data, "previous.crt")],
            "retire_after": retire_after,
            "patch": {"metadata": {"annotations": {RETIRE_AFTER: retire_after}}},
        }
    retire_after = _time(annotations[RETIRE_AFTER], f"the Secret's annotation {RETIRE_AFTER}")
    if now >= retire_after:
        return {"certs": certs, "retire_after": None, "patch": {"metadata": {"annotations": {RETIRE_AFTER: None}}, "data": {"previous.crt": None}}}
    return {"certs": certs + [_pem(data, "previous.crt")], "patch": None, "retire_after": _rfc3339(retire_after)}


def signing_rotation(secret, certificate, now, grace_seconds):
    """What the token server's signing Secret holds after a rotation to ``certificate`` (PEM) at
    ``now``: {"certs": {"tls.crt": base64 PEM[, "previous.crt": the replaced tls.crt]},
    "annotations": {RETIRE_AFTER: now + grace} or {}}. ``secret``: the Secret before (or {} / None
    on the first run, when nothing is replaced)."""
    if not isinstance(secret, dict) and secret is not None:
        raise AnsibleFilterError(f"signing_rotation takes the Secret object, not {type(secret).__name__}")
    grace = _grace(grace_seconds, "signing_rotation")
    now = _time(now, "now", "signing_rotation")
    certs = {"tls.crt": base64.b64encode(str(certificate).encode()).decode()}
    replaced = ((secret or {}).get("data") or {}).get("tls.crt")
    if not replaced:
        return {"certs": certs, "annotations": {}}
    return {"certs": dict(certs, **{"previous.crt": replaced}), "annotations": {RETIRE_AFTER: _rfc3339(now + datetime.timedelta(seconds=grace))}}


class FilterModule:
    def filters(self):
        return {"signing_trust": signing_trust, "signing_rotation": signing_rotation}
