"""Leader election on a coordination.k8s.io/v1 Lease, so that one replica writes status.

Every replica serves traffic; only the holder of the Lease writes Ingress status and Events.
Expiry is judged by the local clock from when this replica last saw the Lease change (as
client-go does), never by comparing clocks across machines. A leader that stops releases the
Lease so another takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ingress_ctrl.report.kubeapi import ApiError, KubeApi, resource_path
from ingress_ctrl.sources.kube_flags import LEASE

log = logging.getLogger(__name__)


def _micro_time() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElection:
    def __init__(self, api: KubeApi, namespace: str, name: str, identity: str, duration: float = 15.0) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_every = max(duration / 3, 0.2)
        self.is_leader = False
        self.saw_other_leader = False  # whether another replica held the Lease while we watched
        self._observed: tuple[Any, float] | None = None  # (holder, renewTime) and when we saw it change
        self._callbacks: list[Callable[[], Awaitable[None]]] = []

    def on_elected(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._callbacks.append(callback)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self._try_once()
                except (ApiError, OSError) as error:
                    log.warning("leader election: %s", error)
                    self._set_leader(False)
                try:
                    await asyncio.wait_for(stop.wait(), self.renew_every)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.release()

    async def _try_once(self) -> None:
        path = resource_path(LEASE, self.namespace, self.name)
        lease = await self.api.get(path)
        now = asyncio.get_running_loop().time()
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, round(self.duration)),
                         "renewTime": _micro_time()}}
        if lease is None:
            body["spec"]["acquireTime"] = body["spec"]["renewTime"]
            await self.api.request("POST", resource_path(LEASE, self.namespace), body)
            return self._set_leader(True)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity:
            self.saw_other_leader = True
        record = (holder, spec.get("renewTime"))
        if self._observed is None or self._observed[0] != record:
            self._observed = (record, now)
        expired = not holder or now - self._observed[1] > self.duration
        if holder != self.identity and not expired:
            return self._set_leader(False)
        body["metadata"]["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
        body["spec"]["acquireTime"] = spec.get("acquireTime") if holder == self.identity else body["spec"]["renewTime"]
        try:
            await self.api.request("PUT", path, body)  # optimistic: 409 if someone else wrote first
        except ApiError as error:
            if error.status == 409:
                return self._set_leader(False)
            raise
        self._set_leader(True)

    def _set_leader(self, leader: bool) -> None:
        if leader != self.is_leader:
            log.info("%s the leader (Lease %s/%s)", "became" if leader else "is no longer", self.namespace, self.name)
        was, self.is_leader = self.is_leader, leader
        if leader and not was:
            for callback in self._callbacks:
                asyncio.create_task(callback())

    async def release(self) -> None:
        if not self.is_leader:
            return
        self.is_leader = False
        path = resource_path(LEASE, self.namespace, self.name)
        try:
            lease = await self.api.get(path)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.api.request("PUT", path, lease)
        except (ApiError, OSError) as error:
            log.warning("could not release the Lease: %s", error)
