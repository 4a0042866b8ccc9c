# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""What one registry credential is (``Spec``, its ``Target`` namespaces) and everything wrong with
one (``spec_problems``): pure, checked before any cluster is reached."""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.segmented.registry.plugins.module_utils.credentials import labels, link
from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import MIN_TOKEN_SECONDS, TOKEN_SERVER_AUDIENCE
from ansible_collections.segmented.registry.plugins.module_utils.errors import CredentialsError
from ansible_collections.segmented.registry.plugins.module_utils.inventory.checks import split_host_port
from ansible_collections.segmented.registry.plugins.module_utils.names import is_dns1123_label, is_dns1123_subdomain
from ansible_collections.segmented.registry.plugins.module_utils.text import show

STATE_PRESENT = "present"
STATE_ABSENT = "absent"

#: The audience a credential's tokens are minted for: a pull credential is for an environment
#: registry's token server only; a push credential is for the integrated registry, which takes API
#: tokens of the registry cluster (None: the API server's default audience).
AUDIENCES = {labels.ACCESS_PULL: [TOKEN_SERVER_AUDIENCE], labels.ACCESS_PUSH: None}


@dataclass
class Target:
    """A consumer namespace that gets the Secret, and the service accounts there it is linked to."""

    namespace: str
    service_accounts: list[str] = field(default_factory=list)
    #: The Secret's name in this namespace; None: the credential's ``secret_name``.
    secret_name: str | None = None


@dataclass
class Spec:
    cluster: str
    access: str
    namespace: str
    registry: str | None = None
    secret_name: str | None = None
    targets: list[Target] = field(default_factory=list)
    token_type: str = labels.TOKEN_BOUND
    duration: int = 7 * 86400
    renew_before: int = 86400
    rotate: bool = False
    grace: int = 0
    #: Revoke every generation retired by an earlier run now (its holders have the current one).
    revoke_retired: bool = False
    state: str = STATE_PRESENT
    #: Where the identity is granted its access (the RoleBinding); None: ``namespace``.
    grant_namespace: str | None = None

    @property
    def identity(self) -> str:
        """The registry-cluster ServiceAccount of this credential."""
        return labels.identity_name(self.access, self.cluster)

    @property
    def identity_path(self) -> str:
        """``namespace/identity``."""
        return f"{self.namespace}/{self.identity}"

    @property
    def grant_ns(self) -> str:
        """The namespace of the RoleBinding: the environment's (pull) or the build namespace (push)."""
        return self.grant_namespace or self.namespace

    @property
    def binding(self) -> str:
        """The RoleBinding's name: the identity's, suffixed with the identity's namespace when that is
        another one (so that it never collides with the binding of an identity in ``grant_ns``)."""
        return self.identity if self.grant_ns == self.namespace else f"{self.identity}.{self.namespace}"

    @property
    def binding_path(self) -> str:
        """``grant_ns/binding``."""
        return f"{self.grant_ns}/{self.binding}"

    @property
    def credential(self) -> str:
        """The credential's name (``labels.credential_name``)."""
        return labels.credential_name(self.access, self.namespace)

    @property
    def link_field(self) -> str:
        """The ServiceAccount field its Secrets are linked in."""
        return link.field_for(self.access)

    @property
    def audiences(self) -> list[str] | None:
        """The audiences its tokens are minted for (None: the API server's)."""
        return AUDIENCES.get(self.access)

    @property
    def audience_text(self) -> str:
        """What a generation Secret records of its token's audience ("": the API server's)."""
        return ",".join(self.audiences or ())

    @property
    def present_registry(self) -> str:
        """``registry``, which a present credential needs (an absent one needs none). Raises
        ``CredentialsError`` without it; ``spec_problems`` refuses such a spec first, so it never
        does in practice."""
        if self.registry is None:
            raise CredentialsError(
                "registry: a present credential needs the registry it is for: set registry (host[:port])", field="registry", fix="set registry"
            )
        return self.registry

    def secret_of(self, target: Target) -> str:
        """The Secret's name in ``target`` (only a present credential has one). Raises
        ``CredentialsError`` without a name; ``spec_problems`` refuses such a spec first, so it never
        does in practice."""
        name = target.secret_name or self.secret_name
        if name is None:
            raise CredentialsError(
                f"secret_name: a present credential needs the name of its Secret in {target.namespace}: set secret_name",
                field="secret_name",
                fix="set secret_name",
            )
        return name

    def owns(self, secret: dict | None) -> bool:
        """Whether a consumer Secret is this credential's (see ``labels.owns``)."""
        return labels.owns(secret, self.credential, self.cluster, self.registry, self.namespace)


def spec_problems(spec: Spec) -> list[str]:
    """Everything wrong with ``spec`` (pure), each naming the option and the fix."""
    problems = []
    problem = labels.cluster_label_problem(spec.cluster)
    if problem:
        problems.append(f"cluster_name: {show(spec.cluster)}: {problem}")
    if spec.access not in labels.CLUSTER_ROLES:
        problems.append(f"access: {show(spec.access)} is not pull or push")
    if not is_dns1123_label(spec.namespace):
        problems.append(f"namespace: {show(spec.namespace)} is not a namespace name (a DNS-1123 label like test or myproject)")
    if spec.grant_namespace is not None and not is_dns1123_label(spec.grant_namespace):
        problems.append(f"grant_namespace: {show(spec.grant_namespace)} is not a namespace name (a DNS-1123 label like test)")
    if spec.state == STATE_ABSENT:
        return problems
    try:
        split_host_port(spec.registry)
    except ValueError as error:
        problems.append(f"registry: {show(spec.registry)} is not host[:port]: {error}")
    if not is_dns1123_subdomain(spec.secret_name):
        problems.append(f"secret_name: {show(spec.secret_name)} is not a Secret name (a lowercase DNS name)")
    seen = set()
    for index, target in enumerate(spec.targets):
        if not is_dns1123_label(target.namespace):
            problems.append(f"targets[{index}].namespace: {show(target.namespace)} is not a namespace name")
        elif target.namespace in seen:
            problems.append(f"targets[{index}].namespace: {target.namespace} is listed twice; list each namespace once with all its service accounts")
        seen.add(target.namespace)
        if target.secret_name is not None and not is_dns1123_subdomain(target.secret_name):
            problems.append(f"targets[{index}].secret_name: {show(target.secret_name)} is not a Secret name (a lowercase DNS name)")
        for name in target.service_accounts:
            if not is_dns1123_subdomain(name):
                problems.append(f"targets[{index}].service_accounts: {show(name)} is not a service account name")
    if spec.token_type not in (labels.TOKEN_BOUND, labels.TOKEN_LONG_LIVED):
        problems.append(f"token_type: {show(spec.token_type)} is not bound or long_lived")
    elif spec.token_type == labels.TOKEN_LONG_LIVED and spec.audiences:
        problems.append(
            f"token_type: long_lived cannot make a {spec.access} credential: the environment registries' "
            f"token server accepts only tokens minted for its audience ({', '.join(spec.audiences)}), and a "
            "long-lived token Secret holds an API token; use token_type bound"
        )
    if spec.token_type == labels.TOKEN_BOUND:
        if not isinstance(spec.duration, int) or spec.duration < MIN_TOKEN_SECONDS:
            problems.append(f"duration: {show(spec.duration)} seconds; the TokenRequest API needs at least {MIN_TOKEN_SECONDS}")
        elif not isinstance(spec.renew_before, int) or not 0 <= spec.renew_before < spec.duration:
            problems.append(
                f"renew_before: {show(spec.renew_before)} must be from 0 to less than duration ({spec.duration}), or every run would mint a new token"
            )
    if not isinstance(spec.grace, int) or spec.grace < 0:
        problems.append(f"grace: {show(spec.grace)} must be a number of seconds, 0 or more")
    return problems
