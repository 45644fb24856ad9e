"""Two controller instances on one API: both serve traffic, only the Lease holder writes status
and Events, and the other takes over when the holder stops (releasing the Lease) or dies (the
Lease expires after --election-ttl)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube import support
from tests.kube.support import eventually, stays

ADDRESS = [{"ip": "198.51.100.7"}]
NS = "team"
LEASE = ("leases", support.POD_NAMESPACE, "ingress-ctrl-leader")


class Pair:
    def __init__(self, world: Any, backends: support.Backends) -> None:
        self.world, self.api, self.emulator = world, world.api, world.emulator
        port = backends.start("elect", "127.0.0.6")
        self.api.create("ingressclasses", support.ingress_class("ours"))
        self.api.create("services", support.service(NS, "web"))
        self.api.create("endpointslices", support.endpoint_slice(NS, "web", ["127.0.0.6"], port))
        self.api.create("ingresses", support.ingress(NS, "zero", "zero.example", "web"))
        extra = ("--publish-status-address", ADDRESS[0]["ip"])
        self.a = world.controller("ctl-a", extra=extra).start()
        eventually(lambda: self.holder() == "ctl-a", what="ctl-a holding the Lease")
        self.b = world.controller("ctl-b", extra=extra).start()

    def holder(self) -> str | None:
        lease = self.api.get(*LEASE)
        return (lease or {}).get("spec", {}).get("holderIdentity")

    def reports(self, ctl: support.Controller) -> list[dict[str, Any]]:
        """Status and Event writes by one instance."""
        return [w for w in self.emulator.writes(ctl.token)
                if w["subresource"] == "status" or w["resource"] == "events.k8s.io/v1/events"]

    def status_writers(self, name: str) -> set[str]:
        return {w["token"] for w in self.emulator.writes()
                if w["subresource"] == "status" and (w["namespace"], w["name"]) == (NS, name)}

    def sync_instances(self, name: str) -> list[str]:
        return [e["reportingInstance"] for e in self.api.events(NS, name, reason="Sync")]


@pytest.fixture(scope="module")
def pair(world: Any, backends: support.Backends) -> Iterator[Pair]:
    yield Pair(world, backends)


def test_both_serve_only_the_leader_writes(pair: Pair) -> None:
    api, a, b = pair.api, pair.a, pair.b
    eventually(lambda: api.lb(NS, "zero") == ADDRESS)
    api.create("ingresses", support.ingress(NS, "one", "one.example", "web"))
    eventually(lambda: api.lb(NS, "one") == ADDRESS)
    for ctl in (a, b):
        eventually(lambda: ctl.serves("one.example", "elect"), what=f"{ctl.name} serving")
        assert ctl.serves("zero.example", "elect")
    eventually(lambda: pair.sync_instances("one") == ["ctl-a"])
    assert pair.sync_instances("zero") == ["ctl-a"]
    assert pair.status_writers("one") == pair.status_writers("zero") == {a.token}
    # Longer than the Lease lasts: the leader renews it, the follower never writes anything.
    stays(lambda: pair.holder() == "ctl-a" and pair.emulator.writes(b.token) == [], 3.0,
          what="ctl-a keeping the Lease, ctl-b writing nothing")
    assert pair.sync_instances("one") == ["ctl-a"]


def test_follower_takes_over_when_the_leader_stops(pair: Pair) -> None:
    api, a, b = pair.api, pair.a, pair.b
    assert a.stop() == 0
    lease = api.get(*LEASE)
    assert lease["spec"]["holderIdentity"] in (None, "ctl-b"), "the stopping leader did not release the Lease"
    eventually(lambda: pair.holder() == "ctl-b", timeout=10, what="ctl-b taking the Lease")
    assert api.lb(NS, "one") == ADDRESS, "status was cleared by the leaving leader"
    api.create("ingresses", support.ingress(NS, "two", "two.example", "web"))
    eventually(lambda: api.lb(NS, "two") == ADDRESS, what="status from the new leader")
    assert b.serves("two.example", "elect"), "status was written before the leader's nginx served it"
    assert pair.status_writers("two") == {b.token}
    eventually(lambda: pair.sync_instances("two") == ["ctl-b"])
    # What was already reported is not reported again by the new leader.
    assert pair.sync_instances("one") == ["ctl-a"]
    assert [w["name"] for w in pair.reports(b) if w["subresource"] == "status"] == ["two"]


def test_follower_takes_over_when_the_leader_dies(pair: Pair) -> None:
    api, a, b = pair.api, pair.a, pair.b
    before = len(pair.reports(a))
    a.start()  # back, as a follower
    stays(lambda: pair.holder() == "ctl-b", 2.5, what="ctl-b keeping the Lease")
    assert a.serves("two.example", "elect")
    assert len(pair.reports(a)) == before
    b.kill()  # no release: the Lease must expire
    eventually(lambda: pair.holder() == "ctl-a", timeout=15, what="ctl-a taking the expired Lease")
    api.create("ingresses", support.ingress(NS, "three", "three.example", "web"))
    eventually(lambda: api.lb(NS, "three") == ADDRESS, what="status from the new leader")
    assert a.serves("three.example", "elect"), "status was written before the leader's nginx served it"
    assert pair.status_writers("three") == {a.token}
    eventually(lambda: pair.sync_instances("three") == ["ctl-a"])
    assert pair.sync_instances("two") == ["ctl-b"]
    for name in ("zero", "one", "two"):
        assert api.lb(NS, name) == ADDRESS
