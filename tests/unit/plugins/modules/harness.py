"""Run a module's ``main()`` in-process with its arguments patched in: ``run_module(module, args)``
(the ``run_module`` fixture of conftest.py) returns what it passed to ``exit_json``, ``run_module(module, args, expect=Fail)`` what it passed to
``fail_json``."""
import json

import pytest

from ansible.module_utils import basic


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def module_runner(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def runner(module, args, expect=Exit):
        try:
            from ansible.module_utils.testing import patch_module_args
        except ImportError:  # ansible-core < 2.19
            monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
            patch = None
        else:
            patch = patch_module_args(args)
        with pytest.raises(expect) as info:
            if patch is None:
                module.main()
            else:
                with patch:
                    module.main()
        return info.value.args[0]

    return runner


def documented(module):
    """The keys a module's ``RETURN`` documentation promises, as ``{key: its 'returned' text}``."""
    import yaml

    return {key: value.get("returned", "") for key, value in yaml.safe_load(module.RETURN).items()}


def caller(module, base=None):
    """``run(run_module, expect=Exit, **args)`` for ``module``, with ``base`` under ``args`` as its
    arguments: what it passed to ``exit_json`` (or, with ``expect=Fail``, to ``fail_json``)."""
    def run(run_module, expect=Exit, **args):
        return run_module(module, dict(base or {}, **args), expect)
    return run


def without(arguments, *names):
    """``arguments`` without ``names``."""
    return {key: value for key, value in arguments.items() if key not in names}


def refused(result, words, calls):
    """A refusal as bad input gets it: the message names every word, no faked seam was reached,
    nothing changed."""
    for word in words:
        assert word in result["msg"], result["msg"]
    assert calls == []
    assert not result.get("changed")


def fake_consumer_layer(monkeypatch, seen, module=None, edit=None, applied=None, **attributes):
    """Fake what a consumer module (cluster_image_config, image_streams, pull_secret) works through,
    recording every call in ``seen``: ``ClusterObjects.connect`` (with the module's check mode and
    dry run), and, when ``edit`` is given, ``module.<edit>``: a class that records its arguments and
    whose ``apply`` returns a copy of ``applied`` (``attributes`` are its class attributes)."""
    from ansible_collections.segmented.registry.plugins.module_utils.consumer.objects import ClusterObjects

    def connect(cls, module):
        seen.append(("connect", module.check_mode, module.server_side_dry_run))
        return "the cluster"

    monkeypatch.setattr(ClusterObjects, "connect", classmethod(connect))
    if edit is None:
        return

    def build(self, *args):
        seen.append(("build", args))

    def apply(self, api, present=True):
        seen.append(("apply", api, present))
        return dict(applied)

    monkeypatch.setattr(module, edit, type("Fake" + edit, (), dict(attributes, __init__=build, apply=apply)))
