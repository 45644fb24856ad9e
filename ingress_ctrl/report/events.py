"""Kubernetes Events on Ingresses: Normal `Sync`, Warning `Rejected`, Warning `ReloadFailed`.

One event per change, not per reload: `Sync` when a new generation of an Ingress goes live,
`Rejected` when the reason changes, `ReloadFailed` once per refused config version. `Sync` and
`Rejected` come from the leader only (every replica would say the same); the first leader since
start reports what was live before it won, one that takes over from another leader does not
repeat it. `ReloadFailed` comes from any replica, since each runs its own nginx.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from ingress_ctrl.report.election import LeaseElection
from ingress_ctrl.report.kubeapi import ApiError, KubeApi, resource_path
from ingress_ctrl.sources.kube_flags import WRITTEN
from ingress_ctrl.state import ObjectKey, Store
from ingress_ctrl.sync import SyncResult

log = logging.getLogger(__name__)
EVENT = next(r for r in WRITTEN if r.kind == "Event")


class EventReporter:
    def __init__(self, api: KubeApi, store: Store, election: LeaseElection, controller: str, instance: str) -> None:
        self.api = api
        self.store = store
        self.election = election
        self.controller = controller
        self.instance = instance
        self._synced: dict[ObjectKey, Any] = {}    # generation last reported live
        self._rejected: dict[ObjectKey, str] = {}  # reason last reported
        self._failed_versions: set[str] = set()
        self._last: SyncResult | None = None

    async def refresh(self) -> None:
        """On becoming the leader. Taking over from another leader, which reported what is live
        already: remember it as reported, without events. First leader since start: report it."""
        if self._last is None:
            return
        if self.election.saw_other_leader:
            snapshot = self.store.snapshot()
            for key in self._last.translation.served:
                self._synced[key] = _generation(snapshot.get("Ingress", key.namespace, key.name))
            self._rejected.update(_rejections(self._last))
            return
        await self(self._last)

    async def __call__(self, result: SyncResult) -> None:
        if result.live:
            self._last = result
        snapshot = self.store.snapshot()
        changed = [k for k in result.translation.served if self._synced.get(k) != _generation(snapshot.get("Ingress", k.namespace, k.name))]
        if result.error is not None:
            if result.version not in self._failed_versions:
                self._failed_versions.add(result.version)
                for key in changed:
                    await self._emit(key, "Warning", "ReloadFailed", f"nginx refused the configuration: {result.error}"[:1024])
            return
        leader = self.election.is_leader
        for key in changed if leader else ():  # a follower reports nothing and so marks nothing
            self._synced[key] = _generation(snapshot.get("Ingress", key.namespace, key.name))
            await self._emit(key, "Normal", "Sync", f"Configuration {result.version} is live")
        reasons = _rejections(result)
        for key, reason in sorted(reasons.items()):
            if leader and self._rejected.get(key) != reason:
                self._rejected[key] = reason
                self._synced.pop(key, None)
                await self._emit(key, "Warning", "Rejected", reason[:1024])
        for key in set(self._rejected) - set(reasons):
            del self._rejected[key]
        if len(self._synced) > len(result.translation.served):  # some were served once, not now
            self._forget_deleted()

    def _forget_deleted(self) -> None:
        """Forget the generation reported for Ingresses that no longer exist. Kept, every Ingress
        ever served left an entry for the controller's lifetime, and one created again under the
        same name (its generation starts at 1 again) after a sync had seen it gone got no `Sync`."""
        for key in [k for k in self._synced if self.store.get("Ingress", k.namespace, k.name) is None]:
            del self._synced[key]

    async def _emit(self, key: ObjectKey, type_: str, reason: str, note: str) -> None:
        ingress = self.store.get("Ingress", key.namespace, key.name) or {}
        meta = ingress.get("metadata") or {}
        now = datetime.datetime.now(datetime.timezone.utc)
        event = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{key.name}.{now.strftime('%Y%m%d%H%M%S%f')}", "namespace": key.namespace},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": self.controller, "reportingInstance": self.instance[:128],
            "action": reason, "reason": reason, "type": type_, "note": note,
            "regarding": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "namespace": key.namespace,
                          "name": key.name, "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
        }
        try:
            await self.api.request("POST", resource_path(EVENT, key.namespace), event)
        except ApiError as error:
            log.warning("could not post event %s on %s: %s", reason, key, error)


def _rejections(result: SyncResult) -> dict[ObjectKey, str]:
    """Why each rejected Ingress was left out (its first reason)."""
    reasons: dict[ObjectKey, str] = {}
    for problem in result.translation.problems:
        if problem.rejected and problem.object.kind == "Ingress":
            reasons.setdefault(problem.object, f"{problem.field}: {problem.reason}")
    return reasons


def _generation(ingress: Any) -> Any:
    meta = (ingress or {}).get("metadata") or {}
    return meta.get("generation") or meta.get("resourceVersion") or repr(ingress.get("spec") if ingress else None)
