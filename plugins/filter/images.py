# Copyright: (c) 2026, segmented.registry contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Images given by digest (documented in unpinned_images.yml beside this file)."""

import json
import re

#: An image pinned by digest: <name>@sha256:<64 hex digits>.
PINNED = re.compile(r"^[^@ ]+@sha256:[0-9a-f]{64}$")


def unpinned_images(images):
    """``["<variable> is \\"<image>\\", not pinned by digest.", ...]``: each of ``images`` (variable
    name -> image, in their order) that is not ``<name>@sha256:<digest>``."""
    return [f"{name} is {json.dumps(str(image))}, not pinned by digest." for name, image in images.items() if not PINNED.match(str(image))]


class FilterModule:
    def filters(self):
        return {"unpinned_images": unpinned_images}
