# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The schema of the inventory (pure data): an entry of ``segmented_registry_environments``
(``ENVIRONMENT``) and the variables of a host (``CLUSTER``), as argument specs.

Everything else is derived from it or checked against it: ``shape`` checks a value's shape
(types, required keys, choices, unknown keys, defaults) against it with ansible-core's
``ArgumentSpecValidator``, modules take their argument spec from ``argument_spec()``, and a unit
test checks that the ``segmented.registry.inventory`` doc fragment documents exactly this tree
(names, types, required, defaults).
"""

from __future__ import annotations

#: The keys of an option that are the collection's, not Ansible's: they word its problems (see
#: ``shape``) and are stripped from a module's argument spec (``ansible_spec``).
MESSAGE_KEYS = ("what", "fix")

# The inventory's variables (its contract).
VAR_ENVIRONMENTS = "segmented_registry_environments"
VAR_ROLE = "segmented_registry_role"
VAR_ENVIRONMENT = "segmented_registry_environment"
VAR_INTEGRATED_REGISTRY = "segmented_registry_integrated_registry"
VAR_K8S_AUTH = "segmented_registry_k8s_auth"
VAR_CREDENTIALS = "segmented_registry_credentials"

ROLE_REGISTRY = "registry"
ROLE_CONSUMER = "consumer"
ROLES = (ROLE_REGISTRY, ROLE_CONSUMER)

#: The service account of a build namespace that gets its push credential, by default.
DEFAULT_BUILDER = "builder"

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

#: One entry of ``segmented_registry_environments``. ``what`` and ``fix`` word its problems (see
#: ``shape``); ``{namespace}`` in a ``fix`` is the entry's namespace.
ENVIRONMENT = {
    "name": {"type": "str", "required": True, "what": "a DNS-1123 label", "fix": "a lowercase DNS label like test, uat or prod"},
    "route_host": {
        "type": "str",
        "required": True,
        "what": "a DNS-1123 subdomain",
        "fix": "the host name of this environment's registry Route, like {namespace}-registry.apps.registry.example.com",
    },
    "state": {
        "type": "str",
        "default": STATE_PRESENT,
        "choices": list(STATES),
        "what": "a state",
        "fix": "use present (the default: the environment's registry is deployed and images are promoted to "
        "it) or absent (its registry is removed and it is no longer a promotion target)",
    },
    "endpoint": {"type": "str", "what": "host[:port]", "fix": "write the host (and port) clients pull from, like {namespace}-registry.example.com:8443"},
    "ca_cert": {"type": "path", "what": "the path of a PEM file"},
    "validate_certs": {"type": "bool", "default": True, "what": "a boolean", "fix": "write true (the default) or false"},
    "replicas": {
        "type": "int",
        "default": REPLICAS_DEFAULT,
        "what": "a number of registry pods",
        "fix": f"write a whole number from 1 to {REPLICAS_MAX} (default {REPLICAS_DEFAULT})",
    },
    "tls": {
        "type": "dict",
        "what": "a mapping like {{termination: reencrypt}}",
        "options": {
            "termination": {
                "type": "str",
                "default": TERMINATION_EDGE,
                "choices": list(TERMINATIONS),
                "what": "a Route termination",
                "fix": "use edge (the default: the router ends TLS and talks plain HTTP to the registry pod), "
                "reencrypt (the router ends TLS and opens a new TLS connection to the pod) or "
                "passthrough (the pod ends TLS itself)",
            },
            # the name of a Secret, not a secret
            "serving_cert_secret": {
                "type": "str",
                "no_log": False,
                "what": "a Secret name",
                "fix": "name a kubernetes.io/tls Secret in namespace {namespace}, like {namespace}-registry-tls",
            },
        },
    },
    "storage": {
        "type": "dict",
        "what": "a mapping with size and storage_class, claim_name, or s3",
        "options": {
            "size": {"type": "str", "what": "a Kubernetes quantity", "fix": "write a positive size like 100Gi or 500G"},
            "storage_class": {
                "type": "str",
                "what": "a StorageClass name",
                "fix": "use a lowercase DNS name like gp3-csi, or leave it out for the cluster's default StorageClass",
            },
            "claim_name": {"type": "str", "what": "a PersistentVolumeClaim name", "fix": "use a lowercase DNS name like registry-storage"},
            "s3": {
                "type": "dict",
                "what": "a mapping like {{bucket: acme-{namespace}-registry, credentials_secret: {namespace}-registry-s3}}",
                "options": {
                    "bucket": {
                        "type": "str",
                        "required": True,
                        "what": "an S3 bucket name",
                        "fix": "the bucket that holds this registry's images, like acme-{namespace}-registry",
                    },
                    "region": {
                        "type": "str",
                        "default": S3_REGION_DEFAULT,
                        "what": "a region name",
                        "fix": f"write one like {S3_REGION_DEFAULT} (the default) or eu-west-1",
                    },
                    "endpoint": {"type": "str", "what": "an http(s)://host[:port] URL of an S3-compatible server", "fix": "leave it out for AWS S3"},
                    "credentials_secret": {
                        "type": "str",
                        "required": True,
                        "no_log": False,
                        "what": "a Secret name",
                        "fix": "name a Secret in namespace {namespace} with the keys access_key and "
                        "secret_key (the bucket's credentials), like {namespace}-registry-s3",
                    },
                    "force_path_style": {"type": "bool", "default": False, "what": "a boolean", "fix": "write false (the default) or true"},
                    "root_directory": {"type": "str", "what": "an absolute path", "fix": "write the prefix in the bucket starting with /, like /registry"},
                },
            },
        },
    },
    "policy": {
        "type": "dict",
        "what": "a mapping with after and/or scan_gate",
        "options": {
            "after": {
                "type": "str",
                "what": "the name of another environment",
                "fix": "name the environment whose registry must hold a digest first (for prod, usually uat)",
            },
            "scan_gate": {
                "type": "dict",
                "what": "a mapping like {{annotation: example.com/scan, value: passed}}",
                "options": {
                    "annotation": {
                        "type": "str",
                        "required": True,
                        "what": "a Kubernetes annotation key",
                        "fix": "name the image annotation that the scanner sets, like security.example.com/scan-result",
                    },
                    "value": {
                        "type": "str",
                        "default": SCAN_GATE_DEFAULT_VALUE,
                        "what": "a string",
                        "fix": f"write the annotation's value that lets an image through (default {SCAN_GATE_DEFAULT_VALUE!r})",
                    },
                },
            },
        },
    },
}

ENVIRONMENT_KEYS = tuple(ENVIRONMENT)

#: The variables of one inventory host (a cluster), as far as their shape says.
#: ``segmented_registry_environment`` is a name or a list of one name, and
#: ``segmented_registry_k8s_auth`` kubernetes.core's authentication options (with their aliases
#: and ``K8S_AUTH_*`` fallbacks, which must not be filled in here): both are checked by ``validate``
#: and ``auth``. A builder given as a string is the mapping ``{namespace: <string>}``.
CLUSTER = {
    VAR_ROLE: {
        "type": "str",
        "choices": list(ROLES),
        "what": "a role",
        "fix": "use registry (the one cluster hosting the environment registries) or consumer, or leave it out (a host with an environment is a consumer)",
    },
    VAR_ENVIRONMENT: {"type": "raw"},
    VAR_INTEGRATED_REGISTRY: {
        "type": "str",
        "what": "host[:port]",
        "fix": "write the host (and port) of the integrated registry's default route, like default-route-openshift-image-registry.apps.registry.example.com",
    },
    VAR_K8S_AUTH: {"type": "raw"},
    VAR_CREDENTIALS: {
        "type": "dict",
        "what": "a mapping with pull (a list of namespace/serviceaccount) and/or builders (a list of {{namespace, service_account}})",
        "options": {
            "pull": {"type": "list", "elements": "str", "what": "a list of namespace/serviceaccount", "fix": "write it like [myproject/default]"},
            "builders": {
                "type": "list",
                "elements": "dict",
                "what": "a list like [{{namespace: myproject, service_account: builder}}]",
                "options": {
                    "namespace": {
                        "type": "str",
                        "required": True,
                        "what": "a namespace name",
                        "fix": "name the build namespace (the same on this cluster and in the integrated registry), like myproject",
                    },
                    "service_account": {"type": "str", "default": DEFAULT_BUILDER, "what": "a service account name", "fix": "like builder"},
                },
            },
        },
    },
}


def ansible_spec(spec: dict) -> dict:
    """``spec`` as Ansible takes it: without the collection's ``what`` and ``fix``, at every level."""
    result = {}
    for name, option in spec.items():
        option = {key: value for key, value in option.items() if key not in MESSAGE_KEYS}
        if "options" in option:
            option["options"] = ansible_spec(option["options"])
        result[name] = option
    return result


def argument_spec() -> dict:
    """The ``environments`` option of a module: a list of environment entries."""
    return {"type": "list", "elements": "dict", "options": ansible_spec(ENVIRONMENT)}
