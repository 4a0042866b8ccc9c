# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The Secrets the inventory's environments name, and what the registry-cluster role reads in them
(documented in named_secrets.yml, named_secret_problems.yml and serving_ca.yml beside this file)."""

import base64

#: The inventory field naming each kind of Secret, and the keys the registry reads in it.
SERVING_CERT = "tls.serving_cert_secret"
S3_CREDENTIALS = "storage.s3.credentials_secret"
KEYS = {SERVING_CERT: ["tls.crt", "tls.key"], S3_CREDENTIALS: ["access_key", "secret_key"]}


def _named(env, field, secret):
    return {"environment": env["name"], "field": field, "namespace": env["namespace"], "secret": secret, "keys": KEYS[field]}


def named_secrets(environments):
    """``[{"environment", "field", "namespace", "secret", "keys"}, ...]``: every Secret the present
    ``environments`` (as validate_inventory normalized them) name - the registry's serving
    certificate (reencrypt, passthrough) and its S3 credentials - in inventory order."""
    out = []
    for env in environments:
        if env["state"] != "present":
            continue
        if env["tls"].get("serving_cert_secret"):
            out.append(_named(env, SERVING_CERT, env["tls"]["serving_cert_secret"]))
        if env["storage"].get("s3"):
            out.append(_named(env, S3_CREDENTIALS, env["storage"]["s3"]["credentials_secret"]))
    return out


def _data(read):
    return ((read["resources"] or [{}])[0]).get("data") or {}


def named_secret_problems(reads):
    """One line per Secret of ``reads`` (the results of k8s_info over named_secrets) that does not
    exist or lacks a key the registry reads, naming the environment's field."""
    problems = []
    for read in reads:
        item = read["item"]
        where = f"segmented_registry_environments ({item['environment']}).{item['field']}: Secret {item['namespace']}/{item['secret']}"
        absent = [key for key in item["keys"] if key not in _data(read)]
        if not read["resources"]:
            problems.append(f"{where} does not exist")
        elif absent:
            problems.append(f"{where} has no key {', '.join(absent)}")
    return problems


def serving_ca(reads, environment):
    """The ``ca.crt`` (PEM text) of ``environment``'s serving certificate Secret among ``reads``, or
    "" when it names none or it has no ca.crt (the router then trusts OpenShift's service CA)."""
    for read in reads:
        if read["item"]["environment"] == environment and read["item"]["field"] == SERVING_CERT:
            value = _data(read).get("ca.crt")
            return base64.b64decode(value).decode() if value else ""
    return ""


class FilterModule:
    def filters(self):
        return {"named_secrets": named_secrets, "named_secret_problems": named_secret_problems, "serving_ca": serving_ca}
