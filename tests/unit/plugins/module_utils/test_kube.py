"""The seam to kubernetes.core (plugins/module_utils/kube.py).

These tests fail when a kubernetes.core (or kubernetes client) upgrade moves or reshapes anything
the seam reaches into: private client builders, the dynamic client and its discoverer, the AnsibleModule
inside AnsibleK8SModule, the exceptions. tests/integration/test_validate_inventory.py uses the same
seam against real API servers.
"""

import inspect
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from kubernetes.client.rest import ApiException
import kubernetes.dynamic.client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as k8s_client
from ansible_collections.segmented.registry.plugins.module_utils import kube


def parameters(function):
    return list(inspect.signature(function).parameters)


def test_private_client_builders_have_the_signatures_the_seam_calls():
    assert parameters(k8s_client._create_auth_spec)[:1] == ["module"]
    assert parameters(k8s_client._create_configuration) == ["auth"]
    assert parameters(k8s_client._create_headers)[:1] == ["module"]
    assert parameters(k8s_client._set_header) == ["client", "header", "value"]
    assert parameters(k8s_client.get_api_client)[:1] == ["module"]


def test_the_dynamic_client_is_made_without_discovery_and_discovers_on_first_lookup(monkeypatch):
    # DynamicClient(client, cache_file, discoverer): Cluster sends every request through its
    # request(method, path, body=..., **params), whose meta_request takes a serializer.
    assert parameters(DynamicClient.__init__) == ["self", "client", "cache_file", "discoverer"]
    assert "def request(self, method, path, body=None, **params):" in inspect.getsource(DynamicClient)
    assert "serializer = kwargs.pop('serializer', ResourceInstance)" in inspect.getsource(kubernetes.dynamic.client.meta_request)
    made = []

    class Discoverer:
        def __init__(self, client, cache_file):
            made.append(client)

        def get(self, **kwargs):
            return kwargs

    monkeypatch.setattr(kube, "LazyDiscoverer", Discoverer)
    configuration, headers = kube.build_configuration({"host": "https://api.example.com:6443", "api_key": "unused"})
    dynamic = kube.dynamic_client(kube.new_api_client(configuration, headers))
    assert made == [] and kube.host_of(dynamic) == "https://api.example.com:6443"
    assert dynamic.resources.get(kind="ImageStream") == {"kind": "ImageStream"}
    assert dynamic.resources.get(kind="Route") == {"kind": "Route"}
    assert made == [dynamic]


def test_the_dynamic_client_passes_the_answer_to_the_serializer_the_seam_gives():
    # meta_request pops ``serializer`` and calls it with (client, the answer as json.loads made it)
    source = inspect.getsource(kubernetes.dynamic.client.meta_request)
    assert "kwargs.pop('serializer', ResourceInstance)" in source
    assert "serializer(self, json.loads(resp.data.decode('utf8')))" in source

    class Response:
        data = b'{"kind": "ImageStreamList", "items": [{"metadata": {"name": "app"}}]}'

    @kubernetes.dynamic.client.meta_request
    def get(_self):
        return Response()

    assert get(None, serializer=kube.plain) == {"kind": "ImageStreamList", "items": [{"metadata": {"name": "app"}}]}


def test_mask_reaches_the_ansible_module_inside_ansiblek8smodule(capsys):
    with patch_module_args({}):
        module = kube.AnsibleK8SModule(argument_spec={})
        kube.mask(module, "sha256~seam-secret-value")
        assert "sha256~seam-secret-value" in module._module.no_log_values
        with pytest.raises(SystemExit):
            module.exit_json(changed=False, echoed="token sha256~seam-secret-value")
    out = json.loads(capsys.readouterr().out)
    assert "sha256~seam-secret-value" not in json.dumps(out)


def test_auth_options_are_kubernetes_cores_own():
    assert set(kube.AUTH_OPTIONS) == set(AUTH_ARG_SPEC)
    for name, spec in AUTH_ARG_SPEC.items():
        assert kube.AUTH_OPTIONS[name] == tuple(spec.get("aliases") or ()), name
    assert {"kubeconfig", "api_key", "password", "proxy_headers"} <= set(kube.AUTH_SECRET_OPTIONS)
    assert set(kube.AUTH_BOOL_OPTIONS) == {"validate_certs", "persist_config"}
    assert kube.auth_argument_spec() == AUTH_ARG_SPEC and kube.auth_argument_spec() is not AUTH_ARG_SPEC


def test_errors_are_classified_by_type():
    conflict = ApiException(status=409, reason="Conflict")
    conflict.body = json.dumps({"kind": "Status", "message": "the object has been modified"})
    assert kube.status_of(conflict) == 409
    assert kube.server_message(conflict) == "the object has been modified"
    refused = MaxRetryError(None, "/version", NewConnectionError(None, "Connection refused"))
    assert kube.is_unreachable(refused) and kube.is_unreachable(ConnectionRefusedError())
    assert not kube.is_unreachable(conflict)
    assert kube.is_missing_kind(ResourceNotFoundError("no ImageStream"))
    assert "cannot reach the API server at https://x" in kube.api_problem(refused, "list", "https://x")
    assert "401 Unauthorized" in kube.api_problem(ApiException(status=401), "list", "https://x")


def test_auth_options_without_a_usable_configuration_are_one_message(tmp_path):
    class Module:
        params = {"kubeconfig": str(tmp_path / "absent"), "context": "lab"}

    with pytest.raises(kube.ClusterError, match="could not set up the API client from the auth options: Invalid kube-config file"):
        kube.api_client(kube.module_auth(Module()))
