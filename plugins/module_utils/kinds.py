# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The OpenShift API kinds that more than one layer names (pure, a leaf): the ImageStream, read and
annotated on the registry cluster (``approval``) and written on the consumer clusters
(``consumer``). Where a cluster serves a kind is ``Cluster.kind``'s to discover."""

from __future__ import annotations

IMAGE_STREAM_API_VERSION = "image.openshift.io/v1"
IMAGE_STREAM_KIND = "ImageStream"
