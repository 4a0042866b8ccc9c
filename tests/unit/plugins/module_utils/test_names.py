"""``namespace/name`` as every option and inventory variable that names a namespaced object takes it."""
import pytest

from ansible_collections.segmented.registry.plugins.module_utils.names import split_namespaced


@pytest.mark.parametrize("value, expected", [
    ("segmented-registry/promoter", ("segmented-registry", "promoter")),
    ("openshift-config/segmented-registry.pull", ("openshift-config", "segmented-registry.pull")),
    ("promoter", None), ("a/b/c", None), ("My/app", None), ("ns/", None), ("/name", None), (None, None), (7, None),
])
def test_split_namespaced(value, expected):
    assert split_namespaced(value) == expected
