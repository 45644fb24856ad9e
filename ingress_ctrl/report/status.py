"""Ingress status: `status.loadBalancer.ingress` on what we serve, cleared on what we stop serving.

Written only by the elected leader, only once the config is live, and only when it differs
from what the Ingress already says (no write when nothing changed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

from ingress_ctrl.report.election import LeaseElection
from ingress_ctrl.report.kubeapi import ApiError, KubeApi, resource_path
from ingress_ctrl.settings import ObjectRef
from ingress_ctrl.sources.kube_flags import WATCHED
from ingress_ctrl.state import ObjectKey, Store
from ingress_ctrl.sync import SyncResult

log = logging.getLogger(__name__)
INGRESS = next(r for r in WATCHED if r.kind == "Ingress")
SERVICE = next(r for r in WATCHED if r.kind == "Service")


def address_entries(addresses: Sequence[str]) -> list[dict[str, str]]:
    entries = []
    for address in addresses:
        try:
            entries.append({"ip": str(ipaddress.ip_address(address))})
        except ValueError:
            entries.append({"hostname": address})
    return entries


class StatusReporter:
    def __init__(self, api: KubeApi, store: Store, election: LeaseElection, publish_service: ObjectRef | None,
                 publish_addresses: Sequence[str], enabled: bool = True) -> None:
        self.api = api
        self.store = store
        self.election = election
        self.publish_service = publish_service
        self.publish_addresses = list(publish_addresses)
        self.enabled = enabled
        self._served: set[ObjectKey] = set()   # what the last live config served, as this replica saw it
        self._gone: set[ObjectKey] = set()     # served once, not now: status to clear
        self._last: SyncResult | None = None
        self._written: dict[ObjectKey, tuple[Any, Any]] = {}  # what we patched, against which resourceVersion
        self._refreshing = asyncio.Lock()  # one pass at a time: two would both patch what neither has seen back

    async def __call__(self, result: SyncResult) -> None:
        if result.live:
            served = set(result.translation.served)
            self._gone = (self._gone | self._served | set(result.translation.rejected)) - served
            self._served = served
            self._last = result
        await self.refresh()

    async def follow_status(self, stop: asyncio.Event, settle: float = 1.0) -> None:
        """Put back a status someone else changed: the Store tells status-only changes apart
        (they start no sync), and after `settle` seconds the served Ingresses are compared again.
        Our own writes, come back as watch events, compare equal and write nothing."""
        while not stop.is_set():
            moved = asyncio.create_task(self.store.status_moved.wait())
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({moved, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
                stopped.cancel()
            if stop.is_set():
                return
            await asyncio.sleep(settle)
            self.store.status_moved.clear()
            await self.refresh()

    async def refresh(self) -> None:
        if not self.enabled or not self.election.is_leader or self._last is None:
            return
        async with self._refreshing:
            entries = await self._entries()
            for key in sorted(self._served):
                await self._write(key, entries)
            for key in sorted(self._gone):
                if await self._write(key, []):
                    self._gone.discard(key)
            if not self._written:
                self._written = {}  # an emptied dict keeps its table (0.3 MiB at 10,000)

    async def _entries(self) -> list[dict[str, str]]:
        if self.publish_addresses:
            return address_entries(self.publish_addresses)
        if self.publish_service is None:
            return []
        service = self.store.get("Service", self.publish_service.namespace, self.publish_service.name)
        if service is None:
            service = await self.api.get(resource_path(SERVICE, self.publish_service.namespace, self.publish_service.name))
        ingress = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return [{k: v for k, v in entry.items() if k in ("ip", "hostname")} for entry in ingress if isinstance(entry, dict)]

    async def _write(self, key: ObjectKey, entries: list[dict[str, str]]) -> bool:
        """Patch the status if it differs; True when the Ingress now says `entries` (or is gone)."""
        current = self.store.get("Ingress", key.namespace, key.name)
        if current is None:
            self._written.pop(key, None)
            return True
        have: Any = ((current.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        version = (current.get("metadata") or {}).get("resourceVersion")
        if have == entries:
            # Already so. A patch of ours the watch has brought back needs no remembering: kept,
            # it was an entry per served Ingress for the controller's lifetime (1.4 MiB at 10,000).
            self._written.pop(key, None)
            return True
        if self._written.get(key) == (entries, version):
            return True  # already patched, and the watch has not caught up yet
        try:
            await self.api.merge_patch(resource_path(INGRESS, key.namespace, key.name, "status"),
                                       {"status": {"loadBalancer": {"ingress": entries or None}}})
        except ApiError as error:
            log.warning("could not update the status of %s: %s", key, error)
            return False
        self._written[key] = (entries, version)
        return True
