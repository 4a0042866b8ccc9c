# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# The options of a promotion job, shared by the reconcile and promote modules, documented once
# next to plugins/module_utils/promotion/job.py (its argument_spec; a unit test compares them).


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  environments:
    description:
      - The environments, exactly as the inventory variable C(segmented_registry_environments)
        (each with C(name), C(route_host), and optionally C(state), C(endpoint), C(ca_cert),
        C(validate_certs), C(policy), and the deployment keys C(replicas), C(tls), C(storage), which
        a promotion does not use). See M(segmented.registry.validate_inventory) for the meaning of each key.
      - They are validated as the inventory is; every problem is reported at once.
      - An environment with C(state=absent) is no promotion target. Its registry is never read,
        planned, copied to, removed from or audited, and adding it to a tag's approval list is an error.
    type: list
    elements: dict
    required: true
  integrated_registry:
    description:
      - C(host[:port]) of the registry cluster's integrated registry, the source of every copy
        (the inventory variable C(segmented_registry_integrated_registry)).
      - Required to reconcile (M(segmented.registry.promote) with I(reconcile=false) does not need it).
    type: str
  integrated_ca_cert:
    description:
      - Path of the PEM bundle that signs the integrated registry's certificate, when the system
        trust store does not.
    type: path
  integrated_validate_certs:
    description:
      - Whether to verify the integrated registry's TLS certificate. V(false) is an explicit opt-out.
    type: bool
    default: true
  token_realm_hosts:
    description:
      - Host names, other than a registry's own, whose token realm may receive the registry credentials.
      - A registry's C(Bearer) challenge names the token server (its realm) the credentials are sent to. They go
        only to a realm on the registry's own host (any port) or on one of these hosts, and only over HTTPS
        (plain HTTP only to the registry's own host, when the registry itself is plain HTTP). Any other realm
        fails the run, naming both hosts, before a credential is sent; a challenge that later moves the realm
        is checked again.
      - The playbooks pass the registry cluster's token server (C(registry_cluster_token_server_route_host))
        and the inventory list C(segmented_registry_token_realm_hosts).
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  service_account:
    description:
      - C(namespace/name) of the service account on the registry cluster whose short-lived
        TokenRequest tokens are the registry passwords - two per run, minted with the module's Kubernetes
        credentials, nothing long-lived is stored - an API token (the API server's audience) for the
        integrated registry, and one for the audience C(segmented.registry/token-server) for the
        environment registries, whose token server accepts no other.
      - It needs C(segmented-registry:promotion-source-reader) (list image streams, pull) in each source namespace, and
        C(segmented-registry:environment-promoter) in each environment namespace (pull, push, delete and
        catalog on C(environmentregistries.segmented.registry), the token server's own rights) - the
        registry-cluster role makes such an account and binds it, C(registry_cluster_pushers).
      - Mutually exclusive with I(registry_token); one of them is required.
    type: str
  token_duration:
    description: Lifetime in seconds of the minted token (at least 600, the TokenRequest API's minimum).
    type: int
    default: 900
  registry_token:
    description:
      - A token of the registry cluster to use as the registry password, for the integrated registry and
        every environment registry, instead of minting them. The integrated registry takes an API token;
        the environment registries' token server takes only a token minted for the audience
        C(segmented.registry/token-server) - so it must carry both audiences (a TokenRequest with the API
        server's audience and C(segmented.registry/token-server)).
    type: str
  annotation_key:
    description: The annotation that holds a tag's environments (see M(segmented.registry.tag_environments)).
    type: str
    default: segmented.registry/environments
  prune:
    description: Remove tags that are no longer approved. V(false) only copies.
    type: bool
    default: true
  parallel_images:
    description: How many images are copied at once.
    type: int
    default: 4
  parallel_blobs:
    description: How many blobs are copied at once (over all images).
    type: int
    default: 6
  retries:
    description: How many times a registry request is retried after a connection error, a timeout, 429 or 5xx.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for a registry to answer (read timeout; connecting waits at most 10 seconds).
    type: int
    default: 60
  details:
    description:
      - V(all) returns every action and an audit row for every tag in scope. V(changes) leaves out
        the skips (their count stays in C(summary)) and the audit rows without drift, which keeps
        the result small when a run covers thousands of tags with nothing to do (the report file
        holds the same).
    type: str
    choices: [all, changes]
    default: all
  history_limit:
    description:
      - How many entries the promotion history keeps per tag and environment (newest first). Every copy
        (C(promote)) and removal (C(demote)) a run carries out, or fails to, is recorded on the registry
        cluster, in the ImageStream's namespace, in the ConfigMap C(segmented-registry-history-<stream>),
        one data key C(<tag>.<environment>) holding a JSON list of entries (C(time), C(action),
        C(environment), C(tag), C(digest_before), C(digest_after), C(by), C(result), C(message)).
      - V(0) keeps none. At most 480, so that one key stays well under the API server's 1 MiB limit for
        an object (an entry takes at most 2048 bytes); a larger value is refused before anything is read.
      - Written with the module's Kubernetes credentials, which then need C(get), C(create) and C(update)
        on C(configmaps) in the ImageStream's namespace (the registry-cluster role's
        C(segmented-registry:promotion-history-editor), or C(edit)) and C(list) to read it before the run
        plans (the rollbacks in force).
      - Credentials without those rights (the API server answers 403) change nothing for the run; it plans
        and copies as it would without a history, and warns, naming the right, the namespace and the fix;
        the rollbacks recorded there are not honoured then, and the run is not recorded.
    type: int
    default: 20
    version_added: 0.1.0
  copy_jobs:
    description:
      - Run the copies as Kubernetes Jobs on the registry cluster instead of in this process, so that no
        image byte passes through the machine that runs Ansible (the plan, check mode, removals and the
        report stay here). Unset, copies run in this process. In check mode no Job starts; the Services
        the Jobs would reach are read and each Job is created as a server-side dry run.
      - Copies are sharded by namespace over at most I(copy_jobs.jobs) Jobs in the namespace of
        I(service_account), each running the copier image as that service account (it needs no right
        beyond the environment registries' push and the integrated registry's pull, which
        roles/registry_cluster grants the promotion job). The Jobs reach the registries through their
        Services, verified against the service CA (the ConfigMap C(segmented-registry-copier-ca), filled by
        OpenShift's service CA operator) or the environment's C(ca_cert).
      - Needs I(service_account), and on the registry cluster C(create), C(get), C(list) and C(delete) on
        C(jobs), C(create), C(get) and C(update) on C(configmaps), C(list) on C(pods), C(get) on C(pods/log) (the
        copier's log is followed), C(list) on C(events) in that namespace, and C(get) on the C(services) the Jobs use.
    type: dict
    version_added: 0.1.0
    suboptions:
      image:
        description:
          - The copier image (components/copier), pinned by digest (C(<repository>@sha256:<digest>)).
        type: str
        required: true
      jobs:
        description:
          - The most Jobs one run starts; a namespace's copies always share a Job.
        type: int
        default: 1
      integrated_service:
        description:
          - The integrated registry's Service, C(<service>.<namespace>.svc:<port>); its C(/openshift/token)
            is the token endpoint the Jobs use for it.
        type: str
        default: image-registry.openshift-image-registry.svc:5000
      token_server_service:
        description:
          - The registry token server's Service (roles/registry_cluster's C(token-server) in
            C(registry_cluster_token_server_namespace)), the environment registries' token endpoint for the Jobs.
        type: str
        default: token-server.segmented-registry.svc:8443
      timeout:
        description:
          - Seconds a Job may run (its C(activeDeadlineSeconds)); copies it did not report are failed, by name.
        type: int
        default: 1800
  requester:
    description:
      - Who asked for the run, recorded as C(by) in the promotion history (the playbooks pass AWX's
        C(awx_user_name) when AWX runs them).
      - Unset, C(segmented.registry), the field manager of the collection's writes.
    type: str
    version_added: 0.1.0
  show_history:
    description:
      - Also return the recorded promotion history of the ImageStreams in scope as C(history) (one list,
        newest first; a JMESPath I(query) selects on it, like C(history[?environment=='prod'])). One
        LIST of ConfigMaps per namespace in scope; needs C(list) on C(configmaps) there.
    type: bool
    default: false
    version_added: 0.1.0
  report_file:
    description:
      - Also write the result (every action, the audit rows and the counters) as JSON to this file
        on the managed node (mode 0600). Written in check mode too.
    type: path
requirements:
  - requests >= 2.32
"""
