"""What the status and Event reporters remember per Ingress, in-process against the API emulator
(the real KubeApi, Store, resync LIST, Lease election and translate): a record goes once it is no
longer needed, and what they write stays the same."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from kubernetes import client, config

from ingress_ctrl.report.election import LeaseElection
from ingress_ctrl.report.events import EventReporter
from ingress_ctrl.report.kubeapi import KubeApi
from ingress_ctrl.report.status import StatusReporter
from ingress_ctrl.settings import TranslateSettings
from ingress_ctrl.sources.kube import KubeSource
from ingress_ctrl.state import Store
from ingress_ctrl.sync import SyncResult
from ingress_ctrl.translate import translate
from tests.kube.conftest import World

CONTROLLER = "k8s.io/ingress-ctrl"


def _ingress(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"rules": [{"host": f"{name}.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}}


class Reporting:
    """A controller's reporting half, without nginx: the Store filled by LISTs (what the watch
    would bring), a config translated from it and taken as live, the reporters told of it."""

    def __init__(self, world: World, token: str, namespace: str) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(world.emulator.kubeconfig(world.dir, token)), client_configuration=configuration)
        self.api = KubeApi(client.ApiClient(configuration))
        self.store = Store()
        self.source = KubeSource(self.store, self.api, [namespace], watch_endpoints=False)
        self.election = LeaseElection(self.api, namespace, f"lease-{token}", token)
        self.status = StatusReporter(self.api, self.store, self.election, None, ["10.0.0.7"])
        self.events = EventReporter(self.api, self.store, self.election, controller=CONTROLLER, instance=token)
        self.versions = 0

    async def elect(self) -> None:
        await self.election._try_once()
        assert self.election.is_leader

    async def sync(self) -> SyncResult:
        """LIST everything into the Store, translate it, and report it live."""
        await self.source.resync()
        self.versions += 1
        translation = translate(self.store.snapshot(), TranslateSettings(), datetime.datetime.now(datetime.timezone.utc))
        result = SyncResult(translation, f"v{self.versions}", reloaded=True, error=None)
        await self.events(result)
        await self.status(result)
        return result

    async def watch_catches_up(self) -> None:
        """Our own status writes come back (here by a LIST; in the controller by the watch)."""
        await self.source.resync()
        await self.status.refresh()


def _status_patches(world: World, token: str) -> list[str]:
    return [w["name"] for w in world.emulator.writes(token) if w["subresource"] == "status"]


def test_status_writes_are_forgotten_once_the_ingress_shows_them(world: World) -> None:
    token = ns = "status-reporter"
    for name in ("a", "b"):
        world.api.create("ingresses", _ingress(ns, name))

    async def scenario() -> None:
        rep = Reporting(world, token, ns)
        await rep.elect()
        await rep.sync()
        assert sorted(_status_patches(world, token)) == ["a", "b"]
        assert set(rep.status._written) == {k for k in rep.status._served}  # patched, not yet seen back

        await rep.status.refresh()  # not seen back yet: not patched twice
        assert sorted(_status_patches(world, token)) == ["a", "b"]

        await rep.watch_catches_up()
        assert rep.status._written == {}
        assert world.api.lb(ns, "a") == [{"ip": "10.0.0.7"}]

        # Someone else's status is still put back, once.
        world.api.patch("ingresses", ns, "a", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}, sub="status")
        await rep.watch_catches_up()
        assert sorted(_status_patches(world, token)) == ["a", "a", "b"]
        assert world.api.lb(ns, "a") == [{"ip": "10.0.0.7"}]
        await rep.watch_catches_up()
        assert rep.status._written == {}
        assert sorted(_status_patches(world, token)) == ["a", "a", "b"]

        # An Ingress deleted right after our patch leaves nothing behind either.
        world.api.delete("ingresses", ns, "b")
        await rep.sync()
        assert rep.status._written == {} and not rep.status._gone
    asyncio.run(scenario())


def test_event_records_go_with_their_ingress(world: World) -> None:
    token = ns = "event-reporter"
    world.api.create("ingresses", _ingress(ns, "c"))
    world.api.create("ingresses", _ingress(ns, "d"))

    async def scenario() -> None:
        rep = Reporting(world, token, ns)
        await rep.elect()
        await rep.sync()
        assert sorted(k.name for k in rep.events._synced) == ["c", "d"]
        assert len(world.api.events(ns, "c", reason="Sync")) == 1

        await rep.sync()  # nothing changed: nothing reported, nothing forgotten
        assert len(world.api.events(ns, "c", reason="Sync")) == 1
        assert sorted(k.name for k in rep.events._synced) == ["c", "d"]

        world.api.delete("ingresses", ns, "c")
        await rep.sync()
        assert sorted(k.name for k in rep.events._synced) == ["d"]

        # Created again under the same name (generation 1 again): it is live again, and says so.
        again = world.api.create("ingresses", _ingress(ns, "c"))
        assert again["metadata"]["generation"] == 1
        await rep.sync()
        assert len(world.api.events(ns, "c", reason="Sync")) == 2
        assert sorted(k.name for k in rep.events._synced) == ["c", "d"]
    asyncio.run(scenario())
