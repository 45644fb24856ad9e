"""Injection-proof rendering, as properties over generated worlds (see world.py, harness.py).

The default run tries 40 worlds, each through translate, render, `nginx -t` and crossplane
(about 5 s). `scripts/fuzz_long.py` runs the same check over 20,000; docs/reliability.md has
its figures.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from ingress_ctrl.settings import ObjectRef, TranslateSettings
from tests.fuzz import certs
from tests.fuzz.harness import Harness, Outcome
from tests.fuzz.world import CONTROLLER, MARKER, World, worlds

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    return Harness(tmp_path_factory.mktemp("fuzz-state"))


def _report(outcome: Outcome) -> str:
    return "\n".join(f"{prop}: {detail}" for prop, detail in outcome.violations)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_generated_worlds_render_only_allowed_nginx(harness: Harness, world: World) -> None:
    outcome = harness.check(world)
    assert not outcome.violations, _report(outcome)


# -- a hand-written world: one good Ingress beside every payload in every field ---------------

PAYLOADS = (
    f'";return 200 {MARKER};#', f"}} server {{ listen 1; return 200 {MARKER}; }} #", f"$host{MARKER}",
    f"a\n{MARKER} on;", f"a\x00{MARKER}", f"/a;{MARKER}", f"{MARKER}\u202e", "fe80::1%;" + MARKER, "é" * 5000,
)


def _kitchen_sink() -> World:
    good_backend = {"service": {"name": "web", "port": {"number": 80}}}
    objects: list[dict] = [
        {"kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": CONTROLLER}},
        {"kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["10.0.0.1"]}]},
        {"kind": "Ingress", "metadata": {"name": "good", "namespace": "default"},
         "spec": {"ingressClassName": "nginx", "rules": [{"host": "good.example", "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": good_backend}]}}]}},
        certs.tls_secret("tls", "ec-p256"),
    ]
    for i, payload in enumerate(PAYLOADS):
        name = f"bad-{i}"
        path = {"path": "/ok", "pathType": "Prefix", "backend": good_backend}
        variants = {
            "host": {"rules": [{"host": payload, "http": {"paths": [path]}}]},
            "path": {"rules": [{"host": f"{name}.example", "http": {"paths": [dict(path, path=payload)]}}]},
            "type": {"rules": [{"host": f"{name}.example", "http": {"paths": [dict(path, pathType=payload)]}}]},
            "service": {"rules": [{"host": f"{name}.example", "http": {"paths": [
                dict(path, backend={"service": {"name": payload, "port": {"number": 80}}})]}}]},
            "port-name": {"rules": [{"host": f"{name}.example", "http": {"paths": [
                dict(path, backend={"service": {"name": "web", "port": {"name": payload}}})]}}]},
            "tls-host": {"rules": [{"host": f"{name}.example", "http": {"paths": [path]}}],
                         "tls": [{"hosts": [payload], "secretName": "tls"}]},
            "tls-secret": {"rules": [{"host": f"{name}.example", "http": {"paths": [path]}}],
                           "tls": [{"hosts": [f"{name}.example"], "secretName": payload}]},
        }
        for field, spec in variants.items():
            objects.append({"kind": "Ingress", "metadata": {"name": f"{name}-{field}", "namespace": "default"},
                            "spec": {"ingressClassName": "nginx", **spec}})
        objects.append({"kind": "Ingress", "metadata": {"name": f"{name}-annotation", "namespace": "default",
                                                        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": payload}},
                        "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{name}.example", "http": {"paths": [path]}}]}})
        objects.append({"kind": "Ingress", "metadata": {"name": payload, "namespace": payload},
                        "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{name}.example", "http": {"paths": [path]}}]}})
        objects.append({"kind": "Service", "metadata": {"name": f"ext-{i}", "namespace": "default"},
                        "spec": {"type": "ExternalName", "externalName": payload, "ports": [{"port": 80}]}})
        objects.append({"kind": "EndpointSlice", "metadata": {"name": f"web-bad-{i}", "namespace": "default",
                                                              "labels": {"kubernetes.io/service-name": "web"}},
                        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": [payload]}]})
    settings = TranslateSettings(default_ssl_certificate=ObjectRef("default", "tls"))
    return World(tuple(objects), settings, level=100)


def test_every_payload_in_every_field_beside_a_good_ingress(harness: Harness) -> None:
    outcome = harness.check(_kitchen_sink())
    assert not outcome.violations, _report(outcome)
    assert outcome.stats["ingresses_served"] == 1  # only "good"
    assert outcome.stats["ingresses_rejected"] == len(PAYLOADS) * 9  # 7 spec fields, an annotation, name and namespace
    assert "server_name \"good.example\";" in outcome.text


# -- the oracle itself: a config with an injected block must be caught -------------------------

@pytest.mark.parametrize("tamper", [
    lambda text: text.replace('location "/" {', f'location "/" {{ return 200 "{MARKER}"; }}\n        location "/x" {{', 1),
    lambda text: text.replace('server_name "good.example";', 'server_name "good.example" "evil.example";', 1),
    lambda text: text.replace('server_name "good.example";', 'server_name "good.example";\n        root /etc;', 1),
    lambda text: text.replace("    upstream ", "    server { listen 1; }\n    upstream ", 1),
], ids=["extra-location", "split-argument", "foreign-directive", "extra-server"])
def test_the_checker_catches_a_tampered_config(harness: Harness, tamper) -> None:
    world = _kitchen_sink()
    clean = harness.check(world)
    assert not clean.violations
    tampered = tamper(clean.text)
    assert tampered != clean.text
    Path(harness.candidate).write_text(tampered)
    outcome = Outcome()
    harness._check_parse(clean.config, outcome)
    assert outcome.violations, "the tampered config passed the crossplane checks"
