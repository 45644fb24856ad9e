"""Locations left out by `translate.fold` change no answer: checked against the Ingress spec's rules.

`nginx_answer` picks a location from the model as nginx 1.22 does (exact, then the 301 to `uri/`,
then the longest prefix); `spec_answer` reads the Ingress rules as the spec does. Real nginx
answers the same cases in tests/e2e/test_e2e_paths.py (`folded.paths`).
"""

from __future__ import annotations

import random

import pytest

from ingress_ctrl.translate.model import Server
from tests.translate.objects import backend, ingress, ingress_class, path, readable, routes, rule, run, server, served_service

CLASS = ingress_class()
SERVICES = [*served_service("a"), *served_service("b", "10.0.0.2")]
SEGMENTS = ("a", "b", "ab")


Answer = tuple[str, "int | None"]  # where the request goes, and the location's read timeout
TIMEOUT = "nginx.ingress.kubernetes.io/proxy-read-timeout"


def nginx_answer(s: Server, uri: str) -> Answer:
    by_key = {(loc.match, loc.path): loc for loc in s.locations}
    found = by_key.get(("exact", uri))
    if found is None and (("exact", uri + "/") in by_key or ("prefix", uri + "/") in by_key):
        return "301", None  # nginx's redirect to add the slash (its locations here all proxy or return)
    if found is None:
        found = max((loc for loc in s.locations if loc.match == "prefix" and uri.startswith(loc.path)),
                    key=lambda loc: len(loc.path))
    b = found.backend
    return (readable(b.upstream) if b.upstream else f"status {b.status}"), found.options.proxy_read_timeout


Rule = tuple[str, str, str, "int | None"]  # pathType, path, Service, its Ingress's read timeout


def spec_answer(rules: list[Rule], uri: str, fallback: str) -> Answer:
    """`rules` oldest Ingress first; the first claim of a (pathType, path) wins. Exact beats Prefix;
    the longest matching Prefix wins; ImplementationSpecific is Prefix here."""
    claims: dict[tuple[str, str], Rule] = {}
    for rule_ in rules:
        kind, p = ("Exact", rule_[1]) if rule_[0] == "Exact" else ("Prefix", rule_[1].rstrip("/") or "/")
        claims.setdefault((kind, p), rule_)
    def target(rule_: Rule) -> Answer:
        return ("status 503" if rule_[2] == "gone" else f"default_{rule_[2]}_80"), rule_[3]
    if ("Exact", uri) in claims:
        return target(claims[("Exact", uri)])
    matching = [(p, r) for (kind, p), r in claims.items()
                if kind == "Prefix" and (p == "/" or uri == p or uri.startswith(p + "/"))]
    return target(max(matching, key=lambda m: len(m[0]))[1]) if matching else (fallback, None)


def _random_ingresses(rng: random.Random) -> list[tuple[int | None, list[Rule]]]:
    ingresses = []
    for _ in range(rng.randint(1, 3)):
        timeout = rng.choice((None, None, 300))
        rules: list[Rule] = []
        for _ in range(rng.randint(1, 5)):
            depth = rng.randint(0, 3)
            p = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(depth))
            if depth and rng.random() < 0.3:
                p += "/"
            kind = rng.choice(("Exact", "Prefix", "Prefix", "ImplementationSpecific"))
            rules.append((kind, p, rng.choice(("a", "a", "b", "gone")), timeout))
        ingresses.append((timeout, rules))
    return ingresses


def _uris(rules: list[Rule]) -> set[str]:
    uris = {"/", "/zz", "/a/zz"}
    for _, p, _, _ in rules:
        bare = p.rstrip("/")
        uris |= {p, bare or "/", bare + "/", bare + "/zz", bare + "zz", bare.rsplit("/", 1)[0] or "/"}
    return {uri for uri in uris if uri.startswith("/")}


@pytest.mark.parametrize("seed", range(300))
def test_every_answer_is_the_spec_answer(seed: int) -> None:
    """1-3 Ingresses on one host (or hostless, on the default server), oldest first, with or without
    a read timeout, to Services that exist or not (503), with or without a defaultBackend."""
    rng = random.Random(seed)
    host = rng.choice(("foo.com", "foo.com", None))
    ingresses = _random_ingresses(rng)
    default = rng.choice((None, "a", "b")) if host else None
    objects = []
    for n, (timeout, rules) in enumerate(ingresses):
        objects.append(ingress(
            f"i{n}", rule(host, *(path(p, svc, kind) for kind, p, svc, _ in rules)), created=f"2026-01-0{n + 1}T00:00:00Z",
            default_backend=backend(default) if default and n == 0 else None,
            annotations={TIMEOUT: str(timeout)} if timeout else None))
    s = server(run(CLASS, *SERVICES, *objects), host)
    fallback = f"default_{default}_80" if default else "status 404"
    rules = [r for _, rules_ in ingresses for r in rules_]
    for uri in sorted(_uris(rules)):
        assert nginx_answer(s, uri) == spec_answer(rules, uri, fallback), (ingresses, default, uri, routes(s))


def test_paths_to_the_catch_alls_service_fold_into_it() -> None:
    """The benchmark's Ingress: `/`, `/api` and `/static` to one Service is one location."""
    t = run(CLASS, *SERVICES, ingress("x", rule("foo.com", path("/", "a"), path("/api", "a"), path("/static", "a"))))
    assert routes(server(t, "foo.com")) == {"/": "default_a_80"}


def test_only_what_answers_alike_folds() -> None:
    t = run(CLASS, *SERVICES, ingress("x", rule(
        "foo.com", path("/", "a"), path("/foo", "a"), path("/foo/bar", "b"), path("/foo/bar/baz", "a"),
        path("/foo/bar/baz/qux", "a", "Exact"), path("/x/", "a", "Exact"))))
    assert routes(server(t, "foo.com")) == {
        "/": "default_a_80",
        "= /foo/bar": "default_b_80", "/foo/bar/": "default_b_80",
        "= /foo/bar/baz": "default_a_80",  # stays: without it nginx would redirect to /foo/bar/baz/
        "/foo/bar/baz/": "default_a_80",
    }


def test_options_keep_a_location_apart() -> None:
    slow = ingress("slow", rule("foo.com", path("/slow", "a")), created="2026-02-01T00:00:00Z",
                   annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "300"})
    t = run(CLASS, *SERVICES, ingress("x", rule("foo.com", path("/", "a")), created="2026-01-01T00:00:00Z"), slow)
    assert set(routes(server(t, "foo.com"))) == {"/", "= /slow", "/slow/"}
