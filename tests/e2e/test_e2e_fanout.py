"""Simple fanout (one host, several paths and Services) and name-based virtual hosting."""

from __future__ import annotations

import pytest

import e2e_support as s


@pytest.fixture(scope="module")
def ctl(backends, folder):
    objects = [s.ingress_class()]
    for name in ("foo", "bar", "baz", "shared-a", "shared-b", "vfoo", "vbar", "vdefault"):
        objects += s.backed_service(name, backends.start(f"fan-{name}"))
    # two Ingresses share one host: their paths merge; the older one keeps a contested path,
    # even though the newer one sorts first by name
    older = s.ingress("z-older", [s.rule("shared.example", s.path("/a", "shared-a"), s.path("/same", "shared-a"))])
    older["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    newer = s.ingress("a-newer", [s.rule("shared.example", s.path("/b", "shared-b"), s.path("/same", "shared-b"))])
    newer["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    # the same Service name in two namespaces: each Ingress reaches its own namespace's Service
    for namespace in ("team-a", "team-b"):
        objects += s.backed_service("app", backends.start(f"fan-{namespace}"), namespace=namespace)
        objects.append(s.ingress("app", [s.rule(f"{namespace}.example", s.path("/", "app"))], namespace))
    objects.append(s.ingress("app-c", [s.rule("team-c.example", s.path("/", "app"))], "team-c"))  # no Service there
    objects += [
        s.ingress("fanout", [s.rule("fanout.example",
            s.path("/foo", "foo"),
            s.path("/bar", "bar", port="http"),
            s.path("/baz/qux", "baz", "Exact"),
        )]),
        older,
        newer,
        # name-based virtual hosting
        s.ingress("vhosts", [
            s.rule("foo.vhost.example", s.path("/", "vfoo")),
            s.rule("bar.vhost.example", s.path("/", "vbar")),
        ]),
        # an Ingress with rules and a defaultBackend: the default serves its hosts' unmatched paths
        s.ingress("with-default", [s.rule("app.vhost.example", s.path("/api", "vfoo"))],
                  default_backend=s.backend("vdefault")),
    ]
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("fanout.example", "/foo", "fan-foo"),
    ("fanout.example", "/foo/x", "fan-foo"),
    ("fanout.example", "/bar", "fan-bar"),
    ("fanout.example", "/bar/y?z=1", "fan-bar"),
    ("fanout.example", "/baz/qux", "fan-baz"),
    ("fanout.example", "/baz/qux/more", 404),
    ("fanout.example", "/baz", 404),
    ("fanout.example", "/", 404),
    ("shared.example", "/a", "fan-shared-a"),
    ("shared.example", "/b/c", "fan-shared-b"),
    ("shared.example", "/same", "fan-shared-a"),
    ("foo.vhost.example", "/", "fan-vfoo"),
    ("foo.vhost.example", "/any/path", "fan-vfoo"),
    ("bar.vhost.example", "/", "fan-vbar"),
    ("bar.vhost.example", "/any/path", "fan-vbar"),
    ("baz.vhost.example", "/", 404),
    ("vhost.example", "/", 404),
    ("app.vhost.example", "/api/v1", "fan-vfoo"),
    ("app.vhost.example", "/", "fan-vdefault"),
    ("app.vhost.example", "/other", "fan-vdefault"),
    ("unknown.example", "/", 404),  # an Ingress's defaultBackend does not take over other hosts
    ("team-a.example", "/", "fan-team-a"),
    ("team-b.example", "/", "fan-team-b"),
    ("team-c.example", "/", 503),
])
def test_routing(ctl, host, path, expected):
    reply = ctl.get(path, host)
    assert (reply.backend or reply.status) == expected, reply
    if reply.backend:
        assert reply.data["path"] == path


def test_contested_path_is_reported_against_the_newer_ingress(ctl):
    line = ctl.wait_stderr(r"Ingress default/a-newer: spec\.rules\[0\]\.http\.paths\[1\]")
    assert "default/z-older" in line


def test_both_ingresses_on_a_shared_host_are_served(ctl):
    assert ctl.metrics()['ingress_ctrl_ingresses{state="served"}'] == 8
