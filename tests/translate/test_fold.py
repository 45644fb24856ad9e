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


def nginx_answer(s: Server, uri: str) -> str:
    by_key = {(loc.match, loc.path): loc for loc in s.locations}
    found = by_key.get(("exact", uri))
    if found is None and (("exact", uri + "/") in by_key or ("prefix", uri + "/") in by_key):
        return "301"  # nginx's redirect to add the slash (its locations here all proxy or return)
    if found is None:
        found = max((loc for loc in s.locations if loc.match == "prefix" and uri.startswith(loc.path)),
                    key=lambda loc: len(loc.path))
    b = found.backend
    return readable(b.upstream) if b.upstream else f"status {b.status}"


def spec_answer(rules: list[tuple[str, str, str]], uri: str, fallback: str) -> str:
    """rules: (pathType, path, service). Exact beats Prefix; the longest matching Prefix wins."""
    for kind, p, service in rules:
        if kind == "Exact" and p == uri:
            return f"default_{service}_80"
    best: tuple[int, str] | None = None
    for kind, p, service in rules:
        prefix = p.rstrip("/") or "/"
        if kind == "Prefix" and (prefix == "/" or uri == prefix or uri.startswith(prefix + "/")):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), f"default_{service}_80")
    return best[1] if best else fallback


def _random_rules(rng: random.Random) -> list[tuple[str, str, str]]:
    rules: dict[tuple[str, str], tuple[str, str, str]] = {}
    for _ in range(rng.randint(1, 7)):
        depth = rng.randint(0, 3)
        p = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(depth))
        if depth and rng.random() < 0.3:
            p += "/"
        kind = rng.choice(("Exact", "Prefix", "Prefix"))
        key = (kind, p if kind == "Exact" else (p.rstrip("/") or "/"))
        rules.setdefault(key, (kind, p, rng.choice("ab")))
    return list(rules.values())


def _uris(rules: list[tuple[str, str, str]]) -> set[str]:
    uris = {"/", "/zz", "/a/zz"}
    for _, p, _ in rules:
        bare = p.rstrip("/")
        uris |= {p, bare or "/", bare + "/", bare + "/zz", bare + "zz", bare.rsplit("/", 1)[0] or "/"}
    return {uri for uri in uris if uri.startswith("/")}


@pytest.mark.parametrize("seed", range(300))
def test_every_answer_is_the_spec_answer(seed: int) -> None:
    rng = random.Random(seed)
    rules = _random_rules(rng)
    default = rng.choice((None, "a", "b"))
    t = run(CLASS, *SERVICES, ingress("x", rule("foo.com", *(path(p, svc, kind) for kind, p, svc in rules)),
                                      default_backend=backend(default) if default else None))
    s = server(t, "foo.com")
    fallback = f"default_{default}_80" if default else "status 404"
    for uri in sorted(_uris(rules)):
        assert nginx_answer(s, uri) == spec_answer(rules, uri, fallback), (rules, default, uri, routes(s))


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
