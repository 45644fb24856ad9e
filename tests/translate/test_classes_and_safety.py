"""Class selection and the grammar that keeps user strings out of nginx syntax."""

from __future__ import annotations

import pytest

from ingress_ctrl.render import quote, render
from ingress_ctrl.settings import NginxSettings
from tests.translate.objects import ingress, ingress_class, path, rule, run, served_service


def _served(*objects, **flags) -> list[str]:
    return [k.name for k in run(*objects, **flags).served]


def test_class_by_ingress_class_name() -> None:
    objs = [ingress_class(), ingress_class("other", controller="example.com/other"),
            ingress("mine", rule("a.com", path("/", "a"))), ingress("theirs", rule("b.com", path("/", "a")), class_name="other"),
            ingress("unknown", rule("c.com", path("/", "a")), class_name="nope")]
    assert _served(*objs) == ["mine"]


def test_class_by_legacy_annotation() -> None:
    ours = ingress("legacy", rule("a.com", path("/", "a")), class_name=None, annotations={"kubernetes.io/ingress.class": "nginx"})
    theirs = ingress("other", rule("b.com", path("/", "a")), class_name=None, annotations={"kubernetes.io/ingress.class": "traefik"})
    assert _served(ours, theirs) == ["legacy"]
    assert _served(ours, theirs, ingress_class="traefik") == ["other"]


def test_classless_needs_default_class_or_flag() -> None:
    bare = ingress("bare", rule("a.com", path("/", "a")), class_name=None)
    assert _served(bare) == []
    assert _served(bare, watch_ingress_without_class=True) == ["bare"]
    assert _served(bare, ingress_class("nginx", default=True)) == ["bare"]
    assert _served(bare, ingress_class("nginx", controller="x.io/y", default=True)) == []


@pytest.mark.parametrize("bad_path", ["/a;b", "/a{", "/a}", '/a"b', "/a'b", "/a b", "/a\nb", "/a\tb", "/a$b", "/a\\b", "/a\x00b", "x", "/a//b", "/a/../b", "/é"])
def test_hostile_paths_reject_the_whole_ingress(bad_path: str) -> None:
    t = run(ingress_class(), *served_service("a"),
            ingress("bad", rule("a.com", path("/ok", "a"), path(bad_path, "a"))),
            ingress("good", rule("b.com", path("/", "a"))))
    assert [k.name for k in t.served] == ["good"]
    assert [k.name for k in t.rejected] == ["bad"]
    [problem] = [p for p in t.problems if p.rejected]
    assert problem.field == "spec.rules[0].http.paths[1].path" and str(problem).startswith("Ingress default/bad: ")
    assert "a.com" not in render(t.config, NginxSettings()).text


@pytest.mark.parametrize("field,mutate", [
    ("spec.rules[0].host", lambda i: i["spec"]["rules"][0].update(host="a.com;evil")),
    ("spec.rules[0].host", lambda i: i["spec"]["rules"][0].update(host="1.2.3.4")),
    ("spec.rules[0].http.paths[0].backend.service.name", lambda i: i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(name="a$b")),
    ("spec.rules[0].http.paths[0].pathType", lambda i: i["spec"]["rules"][0]["http"]["paths"][0].update(pathType="Regex")),
    ("spec.rules[0].http.paths[0].backend.service.port.number", lambda i: i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={"number": "80; x"})),
    ("spec.rules", lambda i: i["spec"].update(rules="nope")),
    ("metadata.annotations['nginx.ingress.kubernetes.io/configuration-snippet']", lambda i: i["metadata"]["annotations"].update({"nginx.ingress.kubernetes.io/configuration-snippet": "deny all;"})),
    ("metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']", lambda i: i["metadata"]["annotations"].update({"nginx.ingress.kubernetes.io/proxy-body-size": "1m; evil"})),
    ("spec.tls[0].secretName", lambda i: i["spec"].update(tls=[{"hosts": ["a.com"], "secretName": "a\"b"}])),
])
def test_hostile_fields_are_named(field: str, mutate) -> None:
    bad = ingress("bad", rule("a.com", path("/", "a")))
    mutate(bad)
    t = run(ingress_class(), *served_service("a"), bad)
    assert [p.field for p in t.problems if p.rejected] == [field]
    assert t.served == ()


def test_supported_annotations_reach_the_locations() -> None:
    annotations = {"nginx.ingress.kubernetes.io/proxy-body-size": "8m", "nginx.ingress.kubernetes.io/proxy-read-timeout": "120",
                   "nginx.ingress.kubernetes.io/force-ssl-redirect": "true", "nginx.ingress.kubernetes.io/rewrite-target": "/"}
    t = run(ingress_class(), *served_service("a"), ingress("x", rule("a.com", path("/", "a")), annotations=annotations))
    options = t.config.servers[0].locations[0].options
    assert (options.proxy_body_size, options.proxy_read_timeout, options.ssl_redirect) == ("8m", 120, True)
    assert any("rewrite-target" in p.field and not p.rejected for p in t.problems)
    text = render(t.config, NginxSettings()).text
    assert 'client_max_body_size "8m";' in text and "proxy_read_timeout 120s;" in text and "return 308 https://$host$request_uri;" in text


@pytest.mark.parametrize("value", ['a"b', "a;b", "a b", "a{b", "a}b", "a\nb", "a#b", "a'b"])
def test_quote_refuses_syntax(value: str) -> None:
    with pytest.raises(ValueError):
        quote(value)


def test_render_is_byte_identical() -> None:
    objs = [ingress_class(), *served_service("a"), ingress("x", rule("a.com", path("/", "a")), rule("*.b.com", path("/p", "a", "Exact")))]
    first = render(run(*objs).config, NginxSettings())
    second = render(run(*reversed(objs)).config, NginxSettings())
    assert first.text == second.text and first.version == second.version
    assert 'server_name "~^[^.]+\\.b\\.com$";' in first.text
