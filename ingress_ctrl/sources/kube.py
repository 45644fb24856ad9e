"""Kubernetes mode: Kopf event handlers keep the Store current; a periodic LIST prunes what a
lost watch missed.

The controller stays out of its users' objects: only `on.event` handlers (nothing to remember
per object, so no annotations, no finalizers, no progress storage), standalone (no peering, so
no replica ever pauses), Kopf's own Event posting off. Nor does Kopf keep anything per object in
memory (`configure_kopf`, `_forgetful_memories`): at 10,000 Ingresses that was 31,000 records,
tasks and deep copies. Objects reach the Store slim (sources/slim.py). Kopf re-lists after a
broken watch but does not report objects deleted meanwhile; `resync` LISTs every resource on a
period, a page at a time, and reconciles, so a stale route lives at most one resync period.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import kopf

from ingress_ctrl.report.election import LeaseElection
from ingress_ctrl.report.events import EventReporter
from ingress_ctrl.report.kubeapi import PAGE, KubeApi
from ingress_ctrl.report.status import StatusReporter
from ingress_ctrl.settings import ObjectRef, Settings
from ingress_ctrl.sources.kube_flags import WATCHED, Resource
from ingress_ctrl.sources.slim import reuse, slim
from ingress_ctrl.state import Object, ObjectKey, Store, key_of

log = logging.getLogger(__name__)
# Kopf runs a task per object with events and keeps it this long after the last one (its default:
# 5 s). At start-up every object has an event within seconds: 31,000 idle tasks at 10,000 Ingresses.
KOPF_IDLE_TIMEOUT = 0.2


def watched_resources(watch_endpoints: bool) -> tuple[Resource, ...]:
    return tuple(r for r in WATCHED if watch_endpoints or r.kind != "Endpoints")


def _is_wanted(resource: Resource, body: Any) -> bool:
    """Only TLS Secrets are kept: the controller has no business holding any other."""
    return resource.kind != "Secret" or body.get("type") == "kubernetes.io/tls"


class KubeSource:
    def __init__(self, store: Store, api: KubeApi, namespaces: Sequence[str], watch_endpoints: bool = True,
                 resync_period: float = 300.0) -> None:
        self.store = store
        self.api = api
        self.namespaces = list(namespaces)
        self.resources = watched_resources(watch_endpoints)
        self.resync_period = resync_period
        self.ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def registry(self) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            return kopf.login_via_client(**kwargs)

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            configure_kopf(settings)

        for resource in self.resources:
            self._register(registry, resource)
        return registry

    def _register(self, registry: kopf.OperatorRegistry, resource: Resource) -> None:
        async def on_event(event: dict[str, Any], **_: Any) -> None:
            self._handover(resource, event)

        kopf.on.event(resource.group, resource.version, resource.plural.split("/")[0], id=f"store-{resource.kind}",
                      registry=registry)(on_event)

    def _handover(self, resource: Resource, event: dict[str, Any]) -> None:
        """In Kopf's thread: the event's object, slim, to the Store's loop."""
        body = event.get("object")
        if isinstance(body, dict) and self._loop is not None:
            obj = slim({"apiVersion": _api_version(resource), "kind": resource.kind, **body})
            self._loop.call_soon_threadsafe(self._apply, resource, event.get("type"), obj)

    def _apply(self, resource: Resource, event_type: str | None, obj: Object) -> None:
        try:
            key = key_of(obj)
        except ValueError:
            return
        if event_type == "DELETED" or not _is_wanted(resource, obj):
            self.store.delete(key)
            return
        held = self.store.get(key.kind, key.namespace, key.name)
        if held == obj:
            return  # nothing new (Kopf's re-listing, a resync): one comparison, not put's second
        if held is not None:  # a change: what did not change stays shared with `held`
            obj = reuse(held, obj)
        self.store.put(obj)

    def _operate(self, stop_flag: threading.Event) -> None:
        asyncio.run(kopf.operator(
            registry=self.registry(), clusterwide=not self.namespaces, namespaces=self.namespaces,
            standalone=True, stop_flag=stop_flag, memories=_forgetful_memories(),
        ))

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        stop_flag = threading.Event()
        operator = asyncio.create_task(asyncio.to_thread(self._operate, stop_flag), name="kopf")
        try:
            while not stop.is_set() and not operator.done():
                try:
                    await self.resync()
                    self.ready.set()
                except Exception as error:  # the API may be briefly away; watches go on
                    log.warning("resync failed, retrying: %s", error)
                    await _sleep_or_stop(stop, 2.0)
                    continue
                await _sleep_or_stop(stop, self.resync_period)
        finally:
            stop_flag.set()
            await operator

    async def resync(self) -> None:
        """LIST every watched resource, a page at a time, and reconcile the Store with it."""
        with self.store.listing() as since:
            for resource in self.resources:
                scopes: list[str | None] = [None] if resource.cluster_scoped or not self.namespaces else list(self.namespaces)
                listed: dict[tuple[str, str], Object] = {}
                for namespace in scopes:
                    async for page in self.api.pages(resource, namespace):
                        for obj in page:
                            if _is_wanted(resource, obj):
                                key = key_of(obj)
                                listed[(key.namespace, key.name)] = slim(obj)
                namespaces = None if resource.cluster_scoped or not self.namespaces else self.namespaces
                self.store.reconcile(resource.kind, listed, since, namespaces)


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    settings.watching.chunk_size = PAGE  # Kopf's own LIST: a page at a time, not every object at once
    settings.queueing.idle_timeout = KOPF_IDLE_TIMEOUT
    settings.persistence.diffbase_storage = _NoDiffBase()


class _NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: it is for change handlers (on.create/update), and we have none.
    Kopf's default built it for every event by deep-copying the object: a third of its CPU per
    event, and the events of the initial LIST wait in Kopf's queues (unslimmed) meanwhile."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def _forgetful_memories() -> Any:
    """Kopf's per-object memory records, made never to be kept (None: Kopf's own, kept).

    Kopf keeps a record per object it has seen (~1 KB: a memo, an error throttler, daemon and
    index state) until the object is deleted: 31,000 records at 10,000 Ingresses. They serve
    daemons, timers, indexes and change handlers; on.event handlers use none of them, and Kopf
    itself makes records that are not kept (`ephemeral`) for admission webhooks.
    """
    try:
        from kopf._core.reactor.inventory import ResourceMemories
    except ImportError:  # Kopf's internals moved: keep its default
        return None

    class ForgetfulMemories(ResourceMemories):
        async def recall(self, raw_body: Any, **kwargs: Any) -> Any:
            return await super().recall(raw_body, **{**kwargs, "ephemeral": True})

    return ForgetfulMemories()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def _api_version(resource: Resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else resource.version


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """`ingress-ctrl run`: the controller, fed by the cluster, reporting status and Events."""
    from ingress_ctrl.controller import Controller

    logging.getLogger("kopf").setLevel(max(logging.WARNING, logging.getLogger().level))  # not a line per event
    api = KubeApi()
    store = Store()
    namespaces = [n.strip() for n in args.watch_namespace.split(",") if n.strip()]
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    election = LeaseElection(api, os.environ.get("POD_NAMESPACE") or "default", args.election_id, identity,
                             duration=args.election_ttl)
    publish = ObjectRef.parse(args.publish_service, flag="--publish-service") if args.publish_service else None
    addresses = [a.strip() for a in args.publish_status_address.split(",") if a.strip()]
    status = StatusReporter(api, store, election, publish, addresses, enabled=args.update_status)
    events = EventReporter(api, store, election, controller=settings.translate.classes.controller_class, instance=identity)
    source = KubeSource(store, api, namespaces, watch_endpoints=args.watch_endpoints, resync_period=args.resync_period)
    election.on_elected(status.refresh)
    election.on_elected(events.refresh)
    # Events first: a client that waits for the status (the sign that a change is live) then finds
    # the Sync event already there.
    controller = Controller(settings, store, [source], reporters=[events, status], companions=[election.run, status.follow_status])
    return await controller.run()


__all__ = ["KubeSource", "ObjectKey", "run", "watched_resources"]
