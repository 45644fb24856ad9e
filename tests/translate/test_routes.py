"""Ingress semantics, checked on the model: no nginx needed."""

from __future__ import annotations

from ingress_ctrl.translate.backends import upstream_name
from tests.translate.objects import (
    backend, endpoint_slice, ingress, ingress_class, path, readable, routes, rule, run, server, served_service, service,
)

CLASS = ingress_class()
SVC = [*served_service("a"), *served_service("b", "10.0.0.2"), *served_service("c", "10.0.0.3")]


def test_single_service_default_backend_is_the_catch_all() -> None:
    t = run(CLASS, *SVC, ingress("only", default_backend=backend("a")))
    assert routes(t.config.default_server) == {"/": "default_a_80"}
    assert t.config.servers == ()
    assert [str(k) for k in t.served] == ["Ingress default/only"]


def test_fanout_prefix_paths_become_exact_plus_slash_locations() -> None:
    t = run(CLASS, *SVC, ingress("fan", rule("foo.com", path("/a", "a"), path("/b/", "b"))))
    assert routes(server(t, "foo.com")) == {
        "/": "status 404", "= /a": "default_a_80", "/a/": "default_a_80", "= /b": "default_b_80", "/b/": "default_b_80",
    }


def test_exact_beats_prefix_on_the_same_path() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("foo.com", path("/p", "a", "Prefix"), path("/p", "b", "Exact"))))
    r = routes(server(t, "foo.com"))
    assert r["= /p"] == "default_b_80"
    assert r["/p/"] == "default_a_80"


def test_exact_with_trailing_slash_pins_the_bare_path_to_its_rules() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("foo.com", path("/", "a"), path("/foo/", "b", "Exact"))))
    r = routes(server(t, "foo.com"))
    assert r["= /foo/"] == "default_b_80"
    assert r["= /foo"] == "default_a_80"  # not a 301 to /foo/


def test_implementation_specific_is_prefix() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("foo.com", path("/i", "a", "ImplementationSpecific"))))
    assert routes(server(t, "foo.com"))["/i/"] == "default_a_80"


def test_hosts_are_lowercased_and_wildcards_kept() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("Foo.COM", path("/", "a")), rule("*.bar.com", path("/", "b"))))
    assert [s.name.host for s in t.config.servers if s.name] == ["*.bar.com", "foo.com"]
    assert [s.name.is_wildcard for s in t.config.servers if s.name] == [True, False]


def test_rules_without_host_go_to_the_default_server() -> None:
    t = run(CLASS, *SVC, ingress("x", rule(None, path("/a", "a"))))
    assert routes(t.config.default_server)["/a/"] == "default_a_80"


def test_defaultbackend_with_rules_serves_only_its_hosts() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("foo.com", path("/a", "a")), default_backend=backend("b")))
    assert routes(server(t, "foo.com"))["/"] == "default_b_80"
    assert routes(t.config.default_server)["/"] == "status 404"


def test_merge_and_oldest_wins_on_conflict() -> None:
    old = ingress("old", rule("foo.com", path("/x", "a")), created="2026-01-01T00:00:00Z")
    new = ingress("new", rule("foo.com", path("/x", "b"), path("/y", "c")), created="2026-02-01T00:00:00Z")
    t = run(CLASS, *SVC, new, old)
    r = routes(server(t, "foo.com"))
    assert r["/x/"] == "default_a_80" and r["/y/"] == "default_c_80"
    [problem] = [p for p in t.problems if p.object.name == "new"]
    assert problem.field == "spec.rules[0].http.paths[0]" and "older Ingress default/old" in problem.reason
    assert not problem.rejected


def test_two_catch_alls_oldest_wins() -> None:
    a = ingress("a", default_backend=backend("a"), created="2026-01-01T00:00:00Z")
    b = ingress("b", default_backend=backend("b"), created="2025-01-01T00:00:00Z")
    t = run(CLASS, *SVC, a, b)
    assert routes(t.config.default_server)["/"] == "default_b_80"
    assert any(p.object.name == "a" and p.field == "spec.defaultBackend" for p in t.problems)


def test_upstreams_are_shared_per_service_port() -> None:
    objs = [ingress(f"i{n}", rule(f"h{n}.com", path("/", "a"))) for n in range(5)]
    t = run(CLASS, *SVC, *objs)
    assert [readable(u.name) for u in t.config.upstreams] == ["default_a_80"]


def test_port_by_name_and_number_share_an_upstream() -> None:
    t = run(CLASS, *SVC, ingress("x", rule("foo.com", path("/n", "a", port=80), path("/m", "a", port="http"))))
    assert {routes(server(t, "foo.com"))[k] for k in ("/n/", "/m/")} == {"default_a_80"}


def test_missing_service_and_no_endpoints_answer_503_and_are_reported() -> None:
    t = run(CLASS, service("empty"), *SVC,
            ingress("x", rule("foo.com", path("/gone", "nope"), path("/empty", "empty"), path("/ok", "a"))))
    r = routes(server(t, "foo.com"))
    assert r["/gone/"] == "status 503" and r["/empty/"] == "status 503" and r["/ok/"] == "default_a_80"
    reasons = " ".join(p.reason for p in t.problems)
    assert "not found" in reasons and "no ready endpoints" in reasons


def test_not_ready_endpoints_are_left_out_and_ready_none_counts_as_ready() -> None:
    objs = [service("a"), endpoint_slice("a", ["10.0.0.1"], name="s1", ready=False),
            endpoint_slice("a", ["10.0.0.2"], name="s2", ready=None)]
    t = run(CLASS, *objs, ingress("x", rule("foo.com", path("/", "a"))))
    assert [e.address for e in t.config.upstreams[0].endpoints] == ["10.0.0.2"]


def test_v1_endpoints_used_only_without_slices() -> None:
    endpoints = {"kind": "Endpoints", "metadata": {"name": "a", "namespace": "default"},
                 "subsets": [{"addresses": [{"ip": "10.1.1.1"}], "ports": [{"name": "http", "port": 9000}]}]}
    t = run(CLASS, service("a"), endpoints, ingress("x", rule("foo.com", path("/", "a"))))
    assert [(e.address, e.port) for e in t.config.upstreams[0].endpoints] == [("10.1.1.1", 9000)]
    t = run(CLASS, service("a"), endpoints, endpoint_slice("a", ["10.2.2.2"]), ingress("x", rule("foo.com", path("/", "a"))))
    assert [e.address for e in t.config.upstreams[0].endpoints] == ["10.2.2.2"]


def test_a_port_name_that_is_not_a_string_is_a_problem_of_its_slice_or_endpoints() -> None:
    """Found by the slim fuzz test: a list as a port name made translate raise (unhashable)."""
    bad_slice = endpoint_slice("a", ["10.0.0.9"], name="bad")
    bad_slice["ports"] = [{"name": [{"a": 1}], "port": 8080}]
    bad_endpoints = {"kind": "Endpoints", "metadata": {"name": "b", "namespace": "default"},
                     "subsets": [{"addresses": [{"ip": "10.1.1.1"}], "ports": [{"name": ["x"], "port": 9000}]}]}
    t = run(CLASS, service("a"), service("b"), bad_slice, endpoint_slice("a", ["10.0.0.2"], name="good"), bad_endpoints,
            ingress("x", rule("foo.com", path("/a", "a"), path("/b", "b"))))
    assert [e.address for e in t.config.upstreams[0].endpoints] == ["10.0.0.2"]  # the good slice still counts
    fields = {(p.object.name, p.field) for p in t.problems}
    assert ("bad", "ports[0].name") in fields and ("b", "subsets[0].ports[0].name") in fields


def test_external_name_service() -> None:
    t = run(CLASS, service("ext", type="ExternalName", externalName="api.example.org", ports=[]),
            ingress("x", rule("foo.com", path("/", "ext", port=443))))
    assert routes(server(t, "foo.com"))["/"] == "api.example.org:443"


def test_deterministic_regardless_of_input_order() -> None:
    objs = [CLASS, *SVC, ingress("x", rule("foo.com", path("/a", "a"))), ingress("y", rule("bar.com", path("/b", "b")))]
    assert run(*objs) == run(*reversed(objs))


def test_upstream_names_differ_in_their_first_characters() -> None:
    """nginx compares upstream names byte by byte on every lookup: a shared prefix costs load time."""
    names = [upstream_name("default", f"app-{n:05d}", 80) for n in range(256)]
    assert sum(a[:3] != b[:3] for a, b in zip(names, names[1:])) > 0.9 * len(names)
    assert all(name.endswith(f"_default_app-{n:05d}_80") for n, name in enumerate(names))
    assert len(set(names)) == len(names)
