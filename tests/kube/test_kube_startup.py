"""Start-up against an API that already holds 1,000 Ingresses (preloaded: no watch events, as
in a cluster the controller joins): one nginx load, not one per object, and every Ingress
served, with status and one Sync event each. Cluster-wide (no --watch-namespace)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube import support
from tests.kube.support import eventually, stays

COUNT = 1000
NAMESPACES = [f"bulk-{i}" for i in range(10)]
ADDRESS = "192.0.2.44"


def host(i: int) -> str:
    return f"h{i}.bulk.example"


@pytest.fixture(scope="module")
def started(world: Any, backends: support.Backends) -> Iterator[support.Controller]:
    port = backends.start("bulk", "127.0.0.5")
    emulator = world.emulator
    emulator.preload("ingressclasses", support.ingress_class("ours"))
    for namespace in NAMESPACES:
        emulator.preload("services", support.service(namespace, "web"))
        emulator.preload("endpointslices", support.endpoint_slice(namespace, "web", ["127.0.0.5"], port))
    emulator.preload("ingresses", *(support.ingress(NAMESPACES[i % len(NAMESPACES)], f"ing-{i}", host(i), "web")
                                    for i in range(COUNT)))
    ctl = world.controller("ctl-bulk", extra=("--publish-status-address", ADDRESS))
    ctl.start(timeout=90)
    yield ctl


def test_one_nginx_load_for_a_thousand_existing_ingresses(world: Any, started: support.Controller) -> None:
    ctl, api = started, world.api
    metrics = ctl.metrics()
    assert metrics['ingress_ctrl_ingresses{state="served"}'] == COUNT
    assert metrics['ingress_ctrl_ingresses{state="rejected"}'] == 0
    assert ctl.reloads() == 1
    assert ctl.reloads("failure") == 0
    for i in [0, COUNT - 1, *random.sample(range(COUNT), 8)]:
        assert ctl.serves(host(i), "bulk"), host(i)

    # The leader writes 1,000 statuses; each comes back as a watch event, none reloads nginx.
    def all_have_status() -> bool:
        items = api.list("ingresses")
        assert len(items) == COUNT
        return all(((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") == [{"ip": ADDRESS}] for i in items)

    eventually(all_have_status, timeout=90, interval=1.0, what="status on every Ingress")
    stays(lambda: ctl.reloads() == 1, 3.0, interval=0.5, what="a single nginx load")
    assert ctl.reloads("failure") == 0
    status_writes = [w for w in world.emulator.writes(ctl.token) if w["subresource"] == "status"]
    assert len(status_writes) == COUNT
    def all_events() -> list[dict[str, Any]]:
        return [e for ns in NAMESPACES for e in api.list("events", ns)]

    eventually(lambda: len(all_events()) >= COUNT, timeout=60, interval=1.0, what="a Sync event for each Ingress")
    stays(lambda: len(all_events()) == COUNT, 1.0, interval=0.5, what="one event per Ingress")
    events = all_events()
    assert {e["reason"] for e in events} == {"Sync"}
    assert len({(e["regarding"]["namespace"], e["regarding"]["name"]) for e in events}) == COUNT
