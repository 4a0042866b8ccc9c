# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The one schema of an environment entry of ``segmented_registry_environments`` (pure data).

Everything else is derived from it or checked against it: ``validate`` takes its keys and
defaults from here, modules take their argument spec from ``argument_spec()``, and a unit test
checks that the ``segmented.registry.inventory`` doc fragment documents exactly this tree
(names, types, required, defaults).
"""

import copy

SCAN_GATE_DEFAULT_VALUE = "passed"

#: ``state``: a present environment is deployed and is a promotion target; an absent one stays in
#: the topology (the registry-cluster role removes what it made for it) and is no promotion target.
STATE_PRESENT = "present"
STATE_ABSENT = "absent"
STATES = (STATE_PRESENT, STATE_ABSENT)

REPLICAS_DEFAULT = 1
REPLICAS_MAX = 10

#: ``tls.termination``: the Route's TLS termination.
TERMINATION_EDGE = "edge"
TERMINATION_REENCRYPT = "reencrypt"
TERMINATION_PASSTHROUGH = "passthrough"
TERMINATIONS = (TERMINATION_EDGE, TERMINATION_REENCRYPT, TERMINATION_PASSTHROUGH)

S3_REGION_DEFAULT = "us-east-1"

ENVIRONMENT = {
    "name": {"type": "str", "required": True},
    "route_host": {"type": "str", "required": True},
    "state": {"type": "str", "default": STATE_PRESENT, "choices": list(STATES)},
    "endpoint": {"type": "str"},
    "ca_cert": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "replicas": {"type": "int", "default": REPLICAS_DEFAULT},
    "tls": {"type": "dict", "options": {
        "termination": {"type": "str", "default": TERMINATION_EDGE, "choices": list(TERMINATIONS)},
        # the name of a Secret, not a secret
        "serving_cert_secret": {"type": "str", "no_log": False},
    }},
    "storage": {"type": "dict", "options": {
        "size": {"type": "str"},
        "storage_class": {"type": "str"},
        "claim_name": {"type": "str"},
        "s3": {"type": "dict", "options": {
            "bucket": {"type": "str", "required": True},
            "region": {"type": "str", "default": S3_REGION_DEFAULT},
            "endpoint": {"type": "str"},
            "credentials_secret": {"type": "str", "required": True, "no_log": False},
            "force_path_style": {"type": "bool", "default": False},
            "root_directory": {"type": "str"},
        }},
    }},
    "policy": {"type": "dict", "options": {
        "after": {"type": "str"},
        "scan_gate": {"type": "dict", "options": {
            "annotation": {"type": "str", "required": True},
            "value": {"type": "str", "default": SCAN_GATE_DEFAULT_VALUE},
        }},
    }},
}

ENVIRONMENT_KEYS = tuple(ENVIRONMENT)
STORAGE_KEYS = tuple(ENVIRONMENT["storage"]["options"])
S3_KEYS = tuple(ENVIRONMENT["storage"]["options"]["s3"]["options"])
TLS_KEYS = tuple(ENVIRONMENT["tls"]["options"])
POLICY_KEYS = tuple(ENVIRONMENT["policy"]["options"])
SCAN_GATE_KEYS = tuple(ENVIRONMENT["policy"]["options"]["scan_gate"]["options"])


def argument_spec():
    """The ``environments`` option of a module: a list of environment entries."""
    return {"type": "list", "elements": "dict", "options": copy.deepcopy(ENVIRONMENT)}
