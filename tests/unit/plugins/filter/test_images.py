"""segmented.registry.unpinned_images (plugins/filter/images.py): which images are not pinned by
digest, named by the variable that holds them (pure logic)."""

import pytest

from ansible_collections.segmented.registry.plugins.filter.images import FilterModule, unpinned_images

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_pinned_images_say_nothing():
    assert unpinned_images({"registry_cluster_gc_image": f"registry.lab.local:5000/kubectl@{DIGEST}",
                            "registry_cluster_registry_image": f"registry@{DIGEST}"}) == []


@pytest.mark.parametrize("image, shown", [
    ("quay.io/example/kubectl:1.30", '"quay.io/example/kubectl:1.30"'),
    (f"registry:2@{DIGEST}"[:-1], f'"registry:2@{DIGEST[:-1]}"'),  # a digest too short
    ("registry@sha256:" + "A" * 64, '"registry@sha256:' + "A" * 64 + '"'),  # upper-case hex
    (f"my registry@{DIGEST}", f'"my registry@{DIGEST}"'),  # a space
    (None, '"None"'),
])
def test_each_unpinned_image_is_named_with_its_variable(image, shown):
    assert unpinned_images({"registry_cluster_gc_image": image, "registry_cluster_registry_image": f"r@{DIGEST}"}) == [
        f"registry_cluster_gc_image is {shown}, not pinned by digest."]


def test_in_the_order_given():
    found = unpinned_images({"b": "x:1", "a": "y:2"})
    assert found == ['b is "x:1", not pinned by digest.', 'a is "y:2", not pinned by digest.']


def test_registered():
    assert FilterModule().filters()["unpinned_images"] is unpinned_images
