# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The options of segmented.registry.registry_credential: one credential's (single mode) and the
# batch's (credentials, each element taking one credential's options, shared here through a YAML
# merge key), documented once next to the module's argument_spec (validate-modules compares them).


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  registry_cluster:
    description:
      - How to reach the registry cluster - kubernetes.core's authentication options. Empty - the
        C(K8S_AUTH_*) environment variables.
    type: dict
    default: {}
    suboptions: &k8s_auth
      kubeconfig:
        description:
          - Path to a kubeconfig file, or an inline kubeconfig (a mapping).
        type: raw
      context:
        description:
          - The name of a context in the kubeconfig.
        type: str
      host:
        description:
          - The URL of the API server, such as C(https://api.cluster.example.com:6443).
        type: str
      api_key:
        description:
          - A token to authenticate with the API. Keep it in a vault.
        type: str
      username:
        description:
          - A user name for HTTP basic authentication (rarely enabled on OpenShift).
        type: str
      password:
        description:
          - The password for C(username).
        type: str
      validate_certs:
        description:
          - Whether to verify the API server's TLS certificate.
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description:
          - Path to the CA bundle that signs the API server's certificate.
        type: path
        aliases: [ssl_ca_cert]
      client_cert:
        description:
          - Path to a client certificate to authenticate with the API.
        type: path
        aliases: [cert_file]
      client_key:
        description:
          - Path to the key of C(client_cert).
        type: path
        aliases: [key_file]
      proxy:
        description:
          - URL of an HTTP proxy to reach the API server through.
        type: str
      no_proxy:
        description:
          - Comma-separated hosts, domains and networks not to reach through C(proxy).
        type: str
      proxy_headers:
        description:
          - Headers for the proxy.
        type: dict
        suboptions:
          proxy_basic_auth:
            description:
              - Colon-separated C(username:password) for proxy basic authentication.
            type: str
          basic_auth:
            description:
              - Colon-separated C(username:password) for basic authentication.
            type: str
          user_agent:
            description:
              - The user agent to send.
            type: str
      persist_config:
        description:
          - Whether to save refreshed kubeconfig tokens back to the kubeconfig file.
        type: bool
      impersonate_user:
        description:
          - A user name to impersonate.
        type: str
      impersonate_groups:
        description:
          - Groups to impersonate.
        type: list
        elements: str
  credentials:
    description:
      - Many credentials in one call (a batch) - a list of elements, each taking the options of one credential
        (every option but O(registry_cluster), which they share, and O(parallel)) with the same meaning, choices,
        defaults and requirements; in the descriptions of the elements, O(cluster_name) and the others mean the
        element's own option.
      - Every element is checked before any cluster is reached; a bad one (any the module would refuse in
        single mode) is refused with a message naming it, C(credentials[<index>]) and its cluster, and
        nothing is changed.
      - The elements then run in threads, O(parallel) at a time; one failing does not stop the others. The
        module fails if any failed, naming each; RV(credentials) lists every element, in input order.
      - Without it, O(cluster_name), O(access) and O(namespace) are required; with it, they and the other
        options of one credential are refused outside the elements.
    type: list
    elements: dict
    suboptions:
      <<: &credential
        cluster:
          description:
            - How to reach the consumer cluster - kubernetes.core's authentication options.
            - Required with O(state=present). With O(state=absent) and without it, only the registry side is
              revoked (the consumer cluster left the inventory); its Secrets then hold a dead token.
          type: dict
          suboptions: *k8s_auth
        grant_namespace:
          description:
            - The namespace on the registry cluster where the identity gets its access (its RoleBinding, named
              C(segmented-<access>-<cluster_name>.<namespace>), with the ServiceAccount of O(namespace) as
              subject), when the identity lives in another namespace O(namespace). Default - O(namespace).
            - The credentials role keeps the consumers' pull identities in a namespace of their own
              (C(credentials_pull_namespace)) and grants them in the environment's namespace, so that an
              editor of the environment's namespace cannot mint tokens for them.
          type: str
        registry:
          description:
            - The C(host[:port]) the credential is for - the key of the dockerconfigjson entry (the environment
              registry's endpoint, or the integrated registry's), for example V(prod-registry.apps.registry.example.com).
              Required with O(state=present).
          type: str
        secret_name:
          description:
            - The name of the Secret on the consumer cluster.
            - Default C(segmented-registry-pull) or C(segmented-registry-push).
          type: str
        targets:
          description:
            - The namespaces of the consumer cluster that get the Secret. A Secret of this credential in a
              namespace no longer listed is unlinked and deleted.
          type: list
          elements: dict
          default: []
          suboptions:
            namespace:
              description: The namespace.
              type: str
              required: true
            service_accounts:
              description:
                - Service accounts of that namespace to link the Secret to. Each must exist. One that was
                  linked by an earlier run and is no longer listed is unlinked.
              type: list
              elements: str
              default: []
            secret_name:
              description:
                - The Secret's name in this namespace. Default O(secret_name).
              type: str
        token_type:
          description:
            - V(bound) - a TokenRequest token of O(duration) seconds, bound to its generation Secret.
            - V(long_lived) - a C(kubernetes.io/service-account-token) Secret (no expiry). OpenShift 4.11+ no
              longer makes these on its own but still honours them; prefer V(bound). Refused with O(access=pull) -
              such a Secret holds an API token, which the environment registries' token server does not accept.
          type: str
          choices: [bound, long_lived]
          default: bound
        duration:
          description:
            - The lifetime of a bound token in seconds (at least 600; the API server may cap it, and the
              expiry it grants is the one recorded).
          type: int
          default: 604800
        renew_before:
          description:
            - A bound token within this many seconds of its expiry is replaced by a normal run.
          type: int
          default: 172800
        rotate:
          description:
            - Make a new generation even when the current one is valid, and mark the old one for revocation
              after O(grace) seconds.
          type: bool
          default: false
        grace:
          description:
            - Seconds the replaced generation stays valid after a rotation. V(0) revokes it as soon as the new
              one is written everywhere.
          type: int
          default: 0
        revoke_retired:
          description:
            - Revoke now every generation an earlier run replaced and left valid (a rotation's grace period, a
              renewed generation until its expiry), instead of when its time is up. Set it once every holder
              has the current generation - playbooks/rotate_credentials.yml and playbooks/credentials.yml do,
              after the consumers' nodes report the new global pull secret. A generation this run replaces is
              not affected.
          type: bool
          default: false
        state:
          description:
            - V(present) - the credential exists and is distributed. V(absent) - revoked and removed.
          type: str
          choices: [present, absent]
          default: present
      cluster_name:
        description: &cluster_name
          - The consumer cluster's inventory host name, for example V(prod); it names the identity and labels
            every object. A lowercase DNS label of at most 40 characters. Renamed, it takes over the Secrets of the same
            O(registry) and O(namespace) made under the former name.
        type: str
        required: true
      access:
        description: &access
          - V(pull) - pull from the registry of the environment O(namespace); V(push) - push to the build
            namespace O(namespace) of the integrated registry.
        type: str
        choices: [pull, push]
        required: true
      namespace:
        description: &namespace
          - The namespace on the registry cluster where the identity (its ServiceAccount and generation
            Secrets) lives and, without O(grant_namespace), gets its access - the environment's namespace
            (pull) or the build namespace (push). It must exist.
        type: str
        required: true
  parallel:
    description:
      - How many elements of O(credentials) run at once (at least 1).
    type: int
    default: 8
  <<: *credential
  cluster_name:
    description: *cluster_name
    type: str
  access:
    description: *access
    type: str
    choices: [pull, push]
  namespace:
    description: *namespace
    type: str
"""
