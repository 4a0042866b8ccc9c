"""The inventory reference is what scripts/docs_reference.py writes from the inventory doc fragment and
the roles' argument specs: a changed option, default or description without the regenerated page fails."""
import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_generator():
    spec = importlib.util.spec_from_file_location("docs_reference", os.path.join(REPO, "scripts", "docs_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_inventory_reference_is_generated_from_the_specifications():
    generator = load_generator()
    with open(generator.TARGET, encoding="utf-8") as handle:
        assert handle.read() == generator.render(), "run: python scripts/docs_reference.py"


def test_every_role_variable_and_environment_field_is_in_it():
    generator = load_generator()
    text = generator.render()
    for role in ("registry_cluster", "credentials", "consumer_cluster"):
        assert f"Role segmented.registry.{role}" in text
    for needle in ("``registry_cluster_gc_enabled``", "``credentials_duration``", "``storage.s3.bucket``",
                   "``segmented_registry_k8s_auth``"):
        assert needle in text
