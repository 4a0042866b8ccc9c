# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Registry credentials, one concern per module:

- ``mint``: tokens of registry-cluster service accounts (TokenRequest, bound to a Secret per
  credential generation, or a long-lived token Secret);
- ``dockerconfig``: ``kubernetes.io/dockerconfigjson`` data (pure);
- ``link``: a Secret in a ServiceAccount's ``imagePullSecrets`` / ``secrets`` (pure);
- ``labels``: names, labels and annotations that track what was made (pure);
- ``access``: SelfSubjectAccessReviews before anything is written;
- ``distribute``: one credential, minted on the registry cluster and written to a consumer;
- ``consumer``: the consumer cluster's part of a credential run (its Secrets and their links);
- ``calls``: the API reads and recorded writes of a run, on either cluster.

``mint_token``, ``TOKEN_SERVER_AUDIENCE`` and ``CredentialsError`` stay importable from here (the lab and the promotion
job use them).
"""

from ansible_collections.segmented.registry.plugins.module_utils.credentials.mint import (  # noqa: F401
    MIN_TOKEN_SECONDS,
    TOKEN_SERVER_AUDIENCE,
    CredentialsError,
    mint_token,
    parse_service_account,
)
