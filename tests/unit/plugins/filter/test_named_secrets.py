"""The Secrets the environments name (plugins/filter/named_secrets.py): which ones, what is wrong with
them, and the CA the router checks a registry against (pure logic, on the lab inventory and the
scratch environments of tests/integration/test_registry_cluster.py)."""
import base64

from ansible_collections.segmented.registry.plugins.filter.named_secrets import (
    FilterModule,
    named_secret_problems,
    named_secrets,
    serving_ca,
)
from tests.unit.plugins.filter.lab import lab_environments

# the scratch environments of test_registry_cluster.py, and one on S3 and one absent
SCRATCH = [
    {"name": "reenc", "route_host": "reenc.apps.registry.lab.local", "storage": {"size": "64Mi"},
     "tls": {"termination": "reencrypt", "serving_cert_secret": "serving"}},
    {"name": "pass", "route_host": "pass.apps.registry.lab.local", "storage": {"size": "64Mi"},
     "tls": {"termination": "passthrough", "serving_cert_secret": "serving"}},
    {"name": "s3", "route_host": "s3.apps.registry.lab.local",
     "storage": {"s3": {"bucket": "acme", "credentials_secret": "s3-keys", "endpoint": "https://s3.example.com"}}},
    {"name": "gone", "route_host": "gone.apps.registry.lab.local", "state": "absent",
     "tls": {"termination": "reencrypt", "serving_cert_secret": "serving"}}]


def secret(namespace, name, data):
    return {"metadata": {"namespace": namespace, "name": name},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


def test_the_lab_names_no_secret():
    assert named_secrets(lab_environments()) == []


def test_present_environments_name_their_serving_certificate_and_s3_secrets():
    assert named_secrets(lab_environments(SCRATCH)) == [
        {"environment": "reenc", "field": "tls.serving_cert_secret", "namespace": "reenc",
         "secret": "serving", "keys": ["tls.crt", "tls.key"]},
        {"environment": "pass", "field": "tls.serving_cert_secret", "namespace": "pass",
         "secret": "serving", "keys": ["tls.crt", "tls.key"]},
        {"environment": "s3", "field": "storage.s3.credentials_secret", "namespace": "s3",
         "secret": "s3-keys", "keys": ["access_key", "secret_key"]}]


def reads(*resources):
    items = named_secrets(lab_environments(SCRATCH))
    return [{"item": item, "resources": found} for item, found in zip(items, resources)]


def test_a_missing_secret_or_key_is_named_with_its_field_and_never_its_data():
    problems = named_secret_problems(reads(
        [], [secret("pass", "serving", {"tls.crt": "CERT"})],
        [secret("s3", "s3-keys", {"access_key": "AKIA", "secret_key": "hush"})]))
    assert problems == [
        "segmented_registry_environments (reenc).tls.serving_cert_secret: Secret reenc/serving "
        "does not exist",
        "segmented_registry_environments (pass).tls.serving_cert_secret: Secret pass/serving "
        "has no key tls.key"]
    assert not named_secret_problems(reads(
        [secret("reenc", "serving", {"tls.crt": "C", "tls.key": "K"})]))


def test_the_router_checks_against_the_serving_secrets_ca_else_the_service_ca():
    found = reads([secret("reenc", "serving", {"tls.crt": "C", "tls.key": "K", "ca.crt": "CA\n"})],
                  [secret("pass", "serving", {"tls.crt": "C", "tls.key": "K"})],
                  [secret("s3", "s3-keys", {"access_key": "A", "secret_key": "S", "ca.crt": "no"})])
    assert serving_ca(found, "reenc") == "CA\n"
    assert serving_ca(found, "pass") == ""
    assert serving_ca(found, "s3") == ""  # its S3 Secret is no serving certificate
    assert serving_ca(found, "test") == ""


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"named_secrets", "named_secret_problems", "serving_ca"}
