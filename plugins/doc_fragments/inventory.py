# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The inventory contract of segmented.registry, documented once, next to the code that reads it
# (plugins/module_utils/inventory/schema.py; tests/unit/plugins/doc_fragments/test_fragments.py
# checks that this documents exactly that tree). Modules that take the inventory as options extend this.


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  environments:
    description:
      - The lifecycle environments, as in the inventory variable C(segmented_registry_environments)
        (normally set once, in C(group_vars/all)).
      - Each environment is a namespace named like it on the registry cluster, holding that
        environment's registry, exposed by a Route.
      - When omitted, the action plugin reads C(segmented_registry_environments) from the
        inventory hosts, and fails if two hosts see different values.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The environment's name, for example V(test), V(uat) or V(prod). It becomes the namespace of
            the environment's registry, so it must be a DNS-1123 label (at most 63 lowercase letters,
            digits and C(-), starting and ending with a letter or digit), unique among the environments.
          - V(default) is reserved for the integrated registry; namespaces OpenShift keeps for itself
            (C(openshift), C(openshift-*), C(kube-*)) are refused.
        type: str
        required: true
      route_host:
        description:
          - The host name of the Route of this environment's registry (its C(spec.host)), a DNS-1123
            subdomain such as C(test-registry.apps.registry.example.com). Unique among the environments.
        type: str
        required: true
      state:
        description:
          - V(present) deploys this environment's registry and makes the environment a promotion target.
          - V(absent) keeps the environment in the topology so that the registry-cluster role removes what
            it made for it, but it is no promotion target. The promotion jobs never plan, copy to, remove
            from or audit its registry, and promoting a tag to it is an error. No consumer cluster may be
            assigned to it, and no O(environments[].policy.after) may name it.
        type: str
        choices: [present, absent]
        default: present
      endpoint:
        description:
          - The C(host[:port]) that clients use to reach this environment's registry, when it is not
            O(environments[].route_host) (a load balancer, another port). Unique among the environments.
          - Defaults to O(environments[].route_host).
        type: str
      ca_cert:
        description:
          - Path, on the controller, of the PEM bundle that signs the certificate of
            O(environments[].endpoint), when it is not signed by a CA the system trusts.
        type: path
      validate_certs:
        description:
          - Whether to verify the TLS certificate of O(environments[].endpoint).
          - V(false) is an explicit opt-out for this one endpoint; prefer O(environments[].ca_cert).
        type: bool
        default: true
      replicas:
        description:
          - How many pods serve this environment's registry, from 1 to 10.
          - More than one needs object storage (O(environments[].storage.s3)), because filesystem storage
            on one volume serves one replica.
        type: int
        default: 1
      tls:
        description:
          - How the Route of this environment's registry terminates TLS.
        type: dict
        suboptions:
          termination:
            description:
              - V(edge) - the router ends TLS and talks plain HTTP to the registry pod.
              - V(reencrypt) - the router ends TLS and opens a new TLS connection to the registry pod.
              - V(passthrough) - the router passes TLS through; the registry pod serves the certificate
                that clients see.
            type: str
            choices: [edge, reencrypt, passthrough]
            default: edge
          serving_cert_secret:
            description:
              - Name of a C(kubernetes.io/tls) Secret in the environment's namespace that the registry pod
                serves TLS with.
              - Required with V(passthrough). Optional with V(reencrypt); when omitted, OpenShift's service
                CA issues the pod's certificate (the Service annotation
                C(service.beta.openshift.io/serving-cert-secret-name)). Not allowed with V(edge).
            type: str
      storage:
        description:
          - The storage of this environment's registry.
          - Either O(environments[].storage.size) and/or O(environments[].storage.storage_class)
            (a claim to create), or O(environments[].storage.claim_name) (an existing claim), not both;
            or O(environments[].storage.s3) (a bucket), without any of those three.
        type: dict
        suboptions:
          size:
            description:
              - Size of the claim to create, a Kubernetes quantity such as V(100Gi).
            type: str
          storage_class:
            description:
              - StorageClass of the claim to create; the cluster's default StorageClass when omitted.
            type: str
          claim_name:
            description:
              - Name of an existing PersistentVolumeClaim in the environment's namespace to use instead.
            type: str
          s3:
            description:
              - An S3 bucket (AWS S3 or an S3-compatible server) that holds the registry's images instead of
                a volume; needed for more than one replica.
            type: dict
            suboptions:
              bucket:
                description:
                  - The bucket's name (3 to 63 lowercase letters, digits, C(.) and C(-), starting and ending
                    with a letter or digit).
                type: str
                required: true
              region:
                description:
                  - The bucket's region.
                type: str
                default: us-east-1
              endpoint:
                description:
                  - The C(http(s)://host[:port]) URL of an S3-compatible server. Omit it for AWS S3.
                type: str
              credentials_secret:
                description:
                  - Name of a Secret in the environment's namespace with the keys C(access_key) and
                    C(secret_key), the bucket's credentials. The inventory never holds them.
                type: str
                required: true
              force_path_style:
                description:
                  - Whether to address the bucket in the URL path (C(host/bucket)) instead of the host name
                    (C(bucket.host)), as many S3-compatible servers need.
                type: bool
                default: false
              root_directory:
                description:
                  - A prefix in the bucket under which the registry keeps everything, starting with C(/).
                type: str
      policy:
        description:
          - Promotion policy of this environment.
        type: dict
        suboptions:
          after:
            description:
              - Name of another environment whose registry must already hold an image digest before
                this environment takes it (for example V(uat) for V(prod)). The environments must not
                wait on each other in a cycle.
            type: str
          scan_gate:
            description:
              - An image annotation that must have a given value before an image enters this environment.
            type: dict
            suboptions:
              annotation:
                description:
                  - The annotation key, a Kubernetes qualified name such as C(security.example.com/scan-result).
                type: str
                required: true
              value:
                description:
                  - The value the annotation must have.
                type: str
                default: passed
  clusters:
    description:
      - The inventory hosts, one per cluster, with their C(segmented_registry_*) variables.
      - When omitted, the action plugin builds it from every host in the C(all) group.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The inventory host name.
        type: str
        required: true
      role:
        description:
          - The inventory variable C(segmented_registry_role).
          - V(registry) marks the one cluster that hosts every environment's registry; exactly one
            host must have it.
          - V(consumer) is implied for a host with an environment.
        type: str
        choices: [registry, consumer]
      environment:
        description:
          - The inventory variable C(segmented_registry_environment), the one environment this
            consumer cluster is assigned (a string; a list of more than one name is refused).
          - Absent or V(default) leaves the cluster alone (it keeps using the integrated registry);
            such clusters are reported as default clusters.
          - Must not be set on the registry cluster, which hosts every environment.
        type: raw
      integrated_registry:
        description:
          - The inventory variable C(segmented_registry_integrated_registry), registry cluster only.
          - The external C(host[:port]) of the registry cluster's integrated registry, the V(default)
            environment that builds push to.
        type: str
      k8s_auth:
        description:
          - The inventory variable C(segmented_registry_k8s_auth), how to reach this cluster's API.
          - Takes exactly kubernetes.core's authentication options (see M(kubernetes.core.k8s)),
            for example O(clusters[].k8s_auth.kubeconfig) and O(clusters[].k8s_auth.context), or
            O(clusters[].k8s_auth.host) and O(clusters[].k8s_auth.api_key).
          - When absent, the C(K8S_AUTH_*) environment variables are used, which is what an AWX or
            Automation Controller Kubernetes credential injects. At most one managed cluster may rely
            on them, or several hosts would silently reach the same cluster.
        type: dict
        suboptions:
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
              - The password for O(clusters[].k8s_auth.username).
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
              - Path to the key of O(clusters[].k8s_auth.client_cert).
            type: path
            aliases: [key_file]
          proxy:
            description:
              - URL of an HTTP proxy to reach the API server through.
            type: str
          no_proxy:
            description:
              - Comma-separated hosts, domains and networks not to reach through O(clusters[].k8s_auth.proxy).
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
          - The inventory variable C(segmented_registry_credentials), consumer clusters with an environment
            only - who on this cluster gets the registry credentials that the role
            C(segmented.registry.credentials) mints.
          - C(pull) - a list of C(namespace/serviceaccount); each namespace gets the environment registry's
            pull Secret, linked to those service accounts' C(imagePullSecrets).
          - C(builders) - a list of C({namespace, service_account}) (C(service_account) defaults to
            V(builder)); the namespace gets a Secret that pushes to that namespace of the integrated
            registry, linked to the builder's C(secrets).
        type: raw
notes:
  - "The inventory: every host is a cluster (with C(ansible_connection=local)). Variables:
    C(segmented_registry_environments) (all hosts, usually C(group_vars/all)) is O(environments);
    C(segmented_registry_role), C(segmented_registry_environment),
    C(segmented_registry_integrated_registry), C(segmented_registry_k8s_auth) and
    C(segmented_registry_credentials) (per host) are O(clusters[].role), O(clusters[].environment),
    O(clusters[].integrated_registry), O(clusters[].k8s_auth) and O(clusters[].credentials)."
  - Every problem of the inventory is reported at once, each naming the inventory host (or the
    entry of C(segmented_registry_environments)), the variable, the bad value and the fix. Secret
    values are never repeated.
"""
