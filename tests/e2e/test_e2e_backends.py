"""Services and endpoints: load balancing, readiness, 503 cases, v1 Endpoints, ExternalName."""

from __future__ import annotations

import collections

import pytest

import e2e_support as s

LB_ADDRESSES = [f"127.0.0.{i}" for i in range(1, 11)]
NOT_READY_ADDRESS = "127.0.0.11"
HOST = "svc.example"


@pytest.fixture(scope="module")
def ports(backends):
    port = backends.start("lb", LB_ADDRESSES)
    backends.start("lb-not-ready", [NOT_READY_ADDRESS], port=port)  # same port, must never be reached
    return {
        "lb": port,
        "ok": backends.start("be-ok"),
        "legacy": backends.start("be-legacy"),
        "slice": backends.start("be-slice"),
        "stale": backends.start("be-stale"),
        "ext": backends.start("be-external"),
        "split-a": backends.start("be-split", ["127.0.0.1", "127.0.0.2"]),
        "named": backends.start("be-named"),
        "v6": backends.start("be-ipv6", ["::1"]),
        "v1-not-ready": backends.start("be-v1-not-ready", ["127.0.0.11"]),
    }


@pytest.fixture(scope="module")
def ctl(ports, folder):
    lb = ports["lb"]
    objects = [
        s.ingress_class(),
        # 10 ready endpoints and one that is not ready, on one port
        s.service("lb"),
        s.endpoint_slice("lb", lb, [*LB_ADDRESSES, (NOT_READY_ADDRESS, False)]),
        *s.backed_service("ok", ports["ok"]),
        # endpoints spread over two slices; an endpoint without conditions counts as ready
        s.service("split"),
        s.endpoint_slice("split", ports["split-a"], ["127.0.0.1"], name="split-1"),
        {**s.endpoint_slice("split", ports["split-a"], ["127.0.0.2"], name="split-2"),
         "endpoints": [{"addresses": ["127.0.0.2"]}]},
        # v1 Endpoints when no EndpointSlice exists
        s.service("legacy"), s.endpoints_v1("legacy", ports["legacy"], ["127.0.0.1"]),
        # an EndpointSlice wins over v1 Endpoints
        s.service("both"), s.endpoints_v1("both", ports["stale"], ["127.0.0.1"]),
        s.endpoint_slice("both", ports["slice"], ["127.0.0.1"]),
        # the Ingress names the port by name; the Service maps it to a number
        s.service("named", ports=[("metrics", 9090), ("web", 8080)]),
        s.endpoint_slice("named", 1, ["127.0.0.1"], port_name="metrics", name="named-metrics"),
        s.endpoint_slice("named", ports["named"], ["127.0.0.1"], port_name="web", name="named-web"),
        # IPv6 endpoints
        s.service("ipv6"),
        {**s.endpoint_slice("ipv6", ports["v6"], ["::1"]), "addressType": "IPv6"},
        # v1 Endpoints: notReadyAddresses get no traffic
        s.service("legacy-mixed"),
        {**s.endpoints_v1("legacy-mixed", ports["v1-not-ready"], ["127.0.0.1"]),
         "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "notReadyAddresses": [{"ip": "127.0.0.11"}],
                      "ports": [{"name": "http", "port": ports["v1-not-ready"]}]}]},
        # 503 cases
        s.service("no-endpoints"),
        s.service("empty-slice"), s.endpoint_slice("empty-slice", ports["ok"], []),
        s.service("not-ready"), s.endpoint_slice("not-ready", ports["ok"], [("127.0.0.1", False), ("127.0.0.2", False)]),
        s.service("port-mismatch"), s.endpoint_slice("port-mismatch", ports["ok"], ["127.0.0.1"], port_name="other"),
        # ExternalName with an IP literal: no resolver needed
        s.external_service("external", "127.0.0.1", port=ports["ext"]),
        s.ingress("routes", [s.rule(HOST,
            s.path("/lb", "lb"),
            s.path("/ok", "ok"),
            s.path("/ok-by-name", "ok", port="http"),
            s.path("/split", "split"),
            s.path("/legacy", "legacy"),
            s.path("/both", "both"),
            s.path("/named", "named", port="web"),
            s.path("/named-number", "named", port=8080),
            s.path("/missing", "no-such-service"),
            s.path("/no-endpoints", "no-endpoints"),
            s.path("/empty-slice", "empty-slice"),
            s.path("/not-ready", "not-ready"),
            s.path("/wrong-port", "ok", port=81),
            s.path("/wrong-port-name", "ok", port="grpc"),
            s.path("/port-mismatch", "port-mismatch"),
            s.path("/external", "external", port=ports["ext"]),
            s.path("/external-by-name", "external", port="http"),
            s.path("/ipv6", "ipv6"),
            s.path("/legacy-mixed", "legacy-mixed"),
        )]),
    ]
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder) as controller:
        yield controller


def test_requests_spread_over_all_ready_endpoints(ctl, ports):
    seen = collections.Counter()
    for i in range(200):
        reply = ctl.get(f"/lb/{i}", HOST)
        assert reply.status == 200, reply
        seen[reply.data["address"]] += 1
    expected = {f"{address}:{ports['lb']}" for address in LB_ADDRESSES}
    assert set(seen) == expected, seen
    assert min(seen.values()) >= 5, seen  # round robin: not a trickle to some


def test_not_ready_endpoints_get_no_traffic(ctl, ports):
    backends = collections.Counter(ctl.backend(f"/lb/{i}", HOST) for i in range(100))
    assert backends == {"lb": 100}
    config = (ctl.state_dir / "nginx.conf").read_text()
    assert all(f'"{address}:{ports["lb"]}"' in config for address in LB_ADDRESSES)
    assert f"{NOT_READY_ADDRESS}:" not in config


def test_v1_not_ready_addresses_get_no_traffic(ctl):
    # the only ready address has nothing listening on that port: 502, never the not-ready one
    statuses = {ctl.backend(f"/legacy-mixed/{i}", HOST) for i in range(10)}
    assert statuses == {502}


def test_endpoints_from_several_slices_all_get_traffic(ctl, ports):
    seen = {ctl.get(f"/split/{i}", HOST).data["address"] for i in range(20)}
    assert seen == {f"127.0.0.1:{ports['split-a']}", f"127.0.0.2:{ports['split-a']}"}


@pytest.mark.parametrize(("path", "expected"), [
    ("/ok", "be-ok"),
    ("/ok-by-name", "be-ok"),
    ("/legacy", "be-legacy"),
    ("/both", "be-slice"),
    ("/named", "be-named"),
    ("/named-number", "be-named"),
    ("/external/x?y=1", "be-external"),
    ("/external-by-name", "be-external"),
    ("/ipv6", "be-ipv6"),
])
def test_backend_kinds(ctl, path, expected):
    reply = ctl.get(path, HOST)
    assert reply.backend == expected, reply
    assert reply.data["path"] == path


def test_external_name_backend_sees_the_request_host(ctl):
    reply = ctl.get("/external", HOST)
    assert reply.seen_headers["host"] == HOST


@pytest.mark.parametrize(("path", "reason"), [
    ("/missing", "Service default/no-such-service not found"),
    ("/no-endpoints", "no ready endpoints"),
    ("/empty-slice", "no ready endpoints"),
    ("/not-ready", "no ready endpoints"),
    ("/wrong-port", "has no port 81"),
    ("/wrong-port-name", "has no port grpc"),
    ("/port-mismatch", "no ready endpoints"),
])
def test_unavailable_backends_answer_503(ctl, path, reason):
    for suffix in ("", "/deeper"):
        reply = ctl.get(path + suffix, HOST)
        assert reply.status == 503, reply
        assert reply.backend is None
    line = ctl.wait_stderr(r"Ingress default/routes: spec\.rules\[0\]\.http\.paths\[\d+\]\.backend: .*" + reason)
    assert "503" in line


def test_other_routes_keep_serving_beside_503s(ctl):
    assert ctl.get("/missing", HOST).status == 503
    assert ctl.backend("/ok", HOST) == "be-ok"
    assert ctl.backend("/lb", HOST) == "lb"


def test_ingresses_with_503_routes_count_as_served(ctl):
    metrics = ctl.metrics()
    assert metrics['ingress_ctrl_ingresses{state="served"}'] == 1
    assert metrics['ingress_ctrl_ingresses{state="rejected"}'] == 0
