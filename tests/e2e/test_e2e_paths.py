"""Path matching: Exact, Prefix, ImplementationSpecific, longest match, precedence, no 301s.

Every case has its own host, so the cases cannot shadow one another. A status code in the
expectations means nginx answered itself (no rule matched, no default backend: 404).
"""

from __future__ import annotations

import pytest

import e2e_support as s

CASES: dict[str, list[dict]] = {
    "exact.paths": [s.path("/foo", "exact", "Exact")],
    "prefix.paths": [s.path("/foo", "prefix")],
    "slash.paths": [s.path("/foo/", "prefix")],
    "deep.paths": [s.path("/a/b/c", "prefix")],
    "longest.paths": [s.path("/foo/bar", "long"), s.path("/foo", "short")],
    "both.paths": [s.path("/foo", "prefix"), s.path("/foo", "exact", "Exact")],
    "impl.paths": [s.path("/foo", "impl", "ImplementationSpecific")],
    "implroot.paths": [s.path(None, "impl", "ImplementationSpecific")],
    "exactslash.paths": [s.path("/foo/", "exact", "Exact")],
    "root.paths": [s.path("/", "root")],
    "exactroot.paths": [s.path("/", "exact", "Exact")],
    "literal.paths": [s.path("/a.b", "prefix"), s.path("/a(b)*+", "exact", "Exact"), s.path("/~user/x=1,y@z", "long")],
    "mixed.paths": [s.path("/", "root"), s.path("/foo/", "exact", "Exact"), s.path("/foo/bar", "long"),
                    s.path("/foo/bar/baz", "exact", "Exact")],
    # paths to the catch-all's Service fold into it (translate.fold): the answers stay the spec's
    "folded.paths": [s.path("/", "root"), s.path("/foo", "root"), s.path("/foo/bar", "long"), s.path("/foo/bar/baz", "root"),
                     s.path("/foo/bar/baz/qux", "root", "Exact"), s.path("/x/", "root", "Exact")],
}

EXPECTED: list[tuple[str, str, str | int]] = [
    # Exact /foo: only /foo, case-sensitive, query ignored
    ("exact.paths", "/foo", "exact"),
    ("exact.paths", "/foo?x=1", "exact"),
    ("exact.paths", "/foo/", 404),
    ("exact.paths", "/foo/bar", 404),
    ("exact.paths", "/foobar", 404),
    ("exact.paths", "/FOO", 404),
    ("exact.paths", "/Foo", 404),
    ("exact.paths", "/", 404),
    # Prefix /foo: element-wise
    ("prefix.paths", "/foo", "prefix"),
    ("prefix.paths", "/foo/", "prefix"),
    ("prefix.paths", "/foo/bar", "prefix"),
    ("prefix.paths", "/foo/bar/baz.html?x=1", "prefix"),
    ("prefix.paths", "/foo?x=1", "prefix"),
    ("prefix.paths", "/foobar", 404),
    ("prefix.paths", "/foo.html", 404),
    ("prefix.paths", "/fo", 404),
    ("prefix.paths", "/FOO", 404),
    ("prefix.paths", "/FOO/bar", 404),
    ("prefix.paths", "/", 404),
    # Prefix /foo/: the trailing slash is ignored
    ("slash.paths", "/foo", "prefix"),
    ("slash.paths", "/foo/", "prefix"),
    ("slash.paths", "/foo/bar", "prefix"),
    ("slash.paths", "/foobar", 404),
    # several segments
    ("deep.paths", "/a/b/c", "prefix"),
    ("deep.paths", "/a/b/c/", "prefix"),
    ("deep.paths", "/a/b/c/d", "prefix"),
    ("deep.paths", "/a/b/cd", 404),
    ("deep.paths", "/a/b", 404),
    ("deep.paths", "/a/b/", 404),
    # the longest matching prefix wins, whatever the order in the Ingress
    ("longest.paths", "/foo/bar", "long"),
    ("longest.paths", "/foo/bar/", "long"),
    ("longest.paths", "/foo/bar/x", "long"),
    ("longest.paths", "/foo/barx", "short"),
    ("longest.paths", "/foo/baz", "short"),
    ("longest.paths", "/foo", "short"),
    ("longest.paths", "/foo/", "short"),
    # Exact beats Prefix on the same path
    ("both.paths", "/foo", "exact"),
    ("both.paths", "/foo?q=1", "exact"),
    ("both.paths", "/foo/", "prefix"),
    ("both.paths", "/foo/x", "prefix"),
    # ImplementationSpecific behaves as Prefix
    ("impl.paths", "/foo", "impl"),
    ("impl.paths", "/foo/", "impl"),
    ("impl.paths", "/foo/bar", "impl"),
    ("impl.paths", "/foobar", 404),
    ("implroot.paths", "/", "impl"),
    ("implroot.paths", "/any/thing", "impl"),
    # Exact /foo/ never turns /foo into a redirect
    ("exactslash.paths", "/foo/", "exact"),
    ("exactslash.paths", "/foo", 404),
    ("exactslash.paths", "/foo/bar", 404),
    # / Prefix catches everything
    ("root.paths", "/", "root"),
    ("root.paths", "/foo", "root"),
    ("root.paths", "/foo/", "root"),
    ("root.paths", "/a/b/c?d=e", "root"),
    # Exact / is only /
    ("exactroot.paths", "/", "exact"),
    ("exactroot.paths", "/?q=1", "exact"),
    ("exactroot.paths", "/a", 404),
    # characters that mean something in regexes are literal
    ("literal.paths", "/a.b", "prefix"),
    ("literal.paths", "/a.b/c", "prefix"),
    ("literal.paths", "/aXb", 404),
    ("literal.paths", "/a(b)*+", "exact"),
    ("literal.paths", "/a(b)", 404),
    ("literal.paths", "/abbb", 404),
    ("literal.paths", "/~user/x=1,y@z/more", "long"),
    # all together
    ("mixed.paths", "/", "root"),
    ("mixed.paths", "/foo", "root"),
    ("mixed.paths", "/foo/", "exact"),
    ("mixed.paths", "/foo/x", "root"),
    ("mixed.paths", "/foo/bar", "long"),
    ("mixed.paths", "/foo/bar/", "long"),
    ("mixed.paths", "/foo/bar/baz", "exact"),
    ("mixed.paths", "/foo/bar/baz/", "long"),
    ("mixed.paths", "/foo/bar/bazz", "long"),
    ("mixed.paths", "/foo/ba", "root"),
    ("folded.paths", "/foo", "root"),
    ("folded.paths", "/foo/", "root"),
    ("folded.paths", "/foo/x", "root"),
    ("folded.paths", "/foo/bar", "long"),
    ("folded.paths", "/foo/bar/", "long"),
    ("folded.paths", "/foo/bar/x", "long"),
    ("folded.paths", "/foo/bar/baz", "root"),  # not a 301 to /foo/bar/baz/
    ("folded.paths", "/foo/bar/baz/", "root"),
    ("folded.paths", "/foo/bar/baz/qux", "root"),
    ("folded.paths", "/foo/bar/baz/qux/", "root"),
    ("folded.paths", "/foo/bar/bazz", "long"),
    ("folded.paths", "/x", "root"),
    ("folded.paths", "/x/", "root"),
]


@pytest.fixture(scope="module")
def ctl(backends, folder):
    objects = [s.ingress_class()]
    for name in ("exact", "prefix", "long", "short", "impl", "root"):
        objects += s.backed_service(name, backends.start(f"paths-{name}"))
    for index, (host, paths) in enumerate(CASES.items()):
        objects.append(s.ingress(f"case-{index}", [s.rule(host, *paths)]))
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize(("host", "path", "expected"), EXPECTED, ids=[f"{h.split('.')[0]}:{p}" for h, p, _ in EXPECTED])
def test_path_matching(ctl, host, path, expected):
    reply = ctl.get(path, host)
    if isinstance(expected, int):
        assert reply.status == expected, reply  # in particular: never a 301/308 to add a slash
        assert reply.backend is None
        assert "Location" not in reply.headers
    else:
        assert reply.status == 200, reply
        assert reply.backend == f"paths-{expected}"


@pytest.mark.parametrize("path", [
    "/foo",
    "/foo/",
    "/foo/bar/baz.html",
    "/foo/bar.baz-1_~!&()*+,=:@x",
    "/foo/bar?q=1&r=a,b&s=",
    "/foo/bar/?q=%2Fx",
    "/foo/UPPER/Case",
])
def test_request_path_reaches_the_backend_unchanged(ctl, path):
    reply = ctl.get(path, "prefix.paths")
    assert reply.backend == "paths-prefix", reply
    assert reply.data["path"] == path


@pytest.mark.parametrize("path", ["/foo/a%20b/c%2Fd", "/foo/%7Euser?x=%20&y=%2F", "/foo/a+b"])
def test_percent_encoding_reaches_the_backend_unchanged(ctl, path):
    reply = ctl.get(path, "prefix.paths")
    assert reply.backend == "paths-prefix"
    assert reply.data["path"] == path
