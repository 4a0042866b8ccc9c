# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# What every module that talks to one cluster (the modules of the segmented.registry.cluster
# action group) needs, beside kubernetes.core's k8s_auth_options.


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
notes:
  - The auth options fall back to the C(K8S_AUTH_*) environment variables (AWX credentials).
"""
