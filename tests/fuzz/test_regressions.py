"""What the property tests found, pinned as plain examples: each once made translate or render
raise, so no config at all could be rendered. (Certificates that made `nginx -t` fail are in
test_tls_hygiene.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingress_ctrl.render import render
from ingress_ctrl.settings import NginxSettings, ObjectRef, TranslateSettings
from tests.translate.objects import endpoint_slice, ingress, ingress_class, path, rule, run, service, served_service


def _good() -> list[dict]:
    return [ingress_class(), *served_service("web"), ingress("good", rule("good.example", path("/", "web")))]


@pytest.mark.parametrize("key", [1, None, ("t",)])
def test_non_string_annotation_key_is_ignored(key) -> None:
    # YAML allows any scalar as a mapping key; sorting mixed keys used to raise TypeError.
    bad = ingress("odd", rule("odd.example", path("/", "web")),
                  annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "8m", key: "x"})  # type: ignore[dict-item]
    t = run(*_good(), bad)
    assert [k.name for k in t.served] == ["good", "odd"]


@pytest.mark.parametrize("class_name", [["nginx"], {"a": 1}, 5])
def test_non_string_ingress_class_name_is_not_ours(class_name) -> None:
    # an unhashable ingressClassName used to raise TypeError in the set lookup
    odd = ingress("odd", rule("odd.example", path("/", "web")))
    odd["spec"]["ingressClassName"] = class_name
    t = run(*_good(), odd)
    assert [k.name for k in t.served] == ["good"]


@pytest.mark.parametrize("spec", [[], "x", {"ports": "x"}, {"ports": [{"port": True}]}])
def test_default_backend_service_with_a_malformed_spec_answers_503(spec) -> None:
    broken = service("fallback")
    broken["spec"] = spec
    settings = TranslateSettings(default_backend_service=ObjectRef("default", "fallback"))
    t = run(*_good(), broken, settings=settings)
    assert t.config.default_server.locations[-1].backend.status == 503


@pytest.mark.parametrize("address", ["fe80::1%eth0", "fe80::1%;return 200 x", "fe80::1%a b", "::1%\n"])
def test_scoped_ipv6_endpoint_is_refused_and_render_works(address: str) -> None:
    # Python's ipaddress accepts any "%scope"; the address then made render's quote() raise.
    objects = [ingress_class(), service("web"), endpoint_slice("web", ["10.0.0.1", address]),
               ingress("good", rule("good.example", path("/", "web")))]
    t = run(*objects)
    assert t.config.upstreams == ()  # the slice is refused as a whole, so the route answers 503
    [problem] = [p for p in t.problems if p.object.kind == "EndpointSlice"]
    assert problem.rejected and problem.field == "endpoints[1].addresses[0]"
    render(t.config, NginxSettings(state_dir=Path("/tmp/unused")))
