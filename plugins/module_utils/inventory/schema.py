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

ENVIRONMENT = {
    "name": {"type": "str", "required": True},
    "route_host": {"type": "str", "required": True},
    "endpoint": {"type": "str"},
    "ca_cert": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "storage": {"type": "dict", "options": {
        "size": {"type": "str"},
        "storage_class": {"type": "str"},
        "claim_name": {"type": "str"},
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
POLICY_KEYS = tuple(ENVIRONMENT["policy"]["options"])
SCAN_GATE_KEYS = tuple(ENVIRONMENT["policy"]["options"]["scan_gate"]["options"])


def argument_spec():
    """The ``environments`` option of a module: a list of environment entries."""
    return {"type": "list", "elements": "dict", "options": copy.deepcopy(ENVIRONMENT)}
