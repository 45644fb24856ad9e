"""The in-memory objects, by kind, that every source writes and the sync loop reads.

Sources (Kopf, folder) only ever `put`, `delete` or `replace` objects; the sync loop takes
immutable snapshots. Nothing else is shared between them, so the data path is the same
whichever source runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

KINDS: tuple[str, ...] = ("Ingress", "IngressClass", "Service", "Endpoints", "EndpointSlice", "Secret")
CLUSTER_SCOPED: frozenset[str] = frozenset({"IngressClass"})

Object = Mapping[str, Any]


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def key_of(obj: Object, default_namespace: str = "default") -> ObjectKey:
    """The identity of a manifest; a missing namespace means `default_namespace` (as kubectl does)."""
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(kind, str) or not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise ValueError("object needs a kind and metadata.name")
    namespace = "" if kind in CLUSTER_SCOPED else meta.get("namespace") or default_namespace
    if not isinstance(namespace, str):
        raise ValueError("metadata.namespace must be a string")
    return ObjectKey(kind, namespace, meta["name"])


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """An immutable view of all objects at one moment: `by_kind[kind][(namespace, name)]`."""

    by_kind: Mapping[str, Mapping[tuple[str, str], Object]]
    version: int = 0

    def of(self, kind: str) -> Mapping[tuple[str, str], Object]:
        return self.by_kind.get(kind, MappingProxyType({}))

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        return self.of(kind).get((namespace, name))


class Store:
    """Objects by key, with a change counter and an event that wakes the sync loop."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[tuple[str, str], Object]] = {kind: {} for kind in KINDS}
        self._version = 0
        self.changed_at = float("-inf")  # time.monotonic() of the last change
        self.gap = float("inf")          # seconds between the last change and the one before
        self._changed = asyncio.Event()
        self._touched: dict[ObjectKey, int] = {}  # during LISTs: the version at which each key last changed
        self._listings = 0
        self.status_moved = asyncio.Event()  # an Ingress's status changed, and nothing translate reads

    @property
    def version(self) -> int:
        return self._version

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        """One object as it is now (a snapshot copies every kind's index: too much per object)."""
        bucket = self._objects.get(kind)
        return None if bucket is None else bucket.get((namespace, name))

    def put(self, obj: Object, default_namespace: str = "default") -> bool:
        """Add or replace one object; returns whether anything translate reads changed (and so
        whether a sync is due). Unknown kinds are ignored."""
        key = key_of(obj, default_namespace)
        bucket = self._objects.get(key.kind)
        old = None if bucket is None else bucket.get((key.namespace, key.name))
        if bucket is None or old == obj:
            return False
        bucket[(key.namespace, key.name)] = obj
        if key.kind == "Ingress" and old is not None and _without_status(old) == _without_status(obj):
            # A status write (ours, come back as a watch event, or someone else's): the status
            # reporter reads it, translate does not, so no sync. A LIST in flight must still not
            # undo it: it counts as newer than any LIST begun so far.
            if self._listings:
                self._touched[key] = self._version + 1
            self.status_moved.set()
            return False
        self._touch(key)
        return True

    def delete(self, key: ObjectKey) -> bool:
        bucket = self._objects.get(key.kind)
        if bucket is None or bucket.pop((key.namespace, key.name), None) is None:
            return False
        self._touch(key)
        return True

    def replace(self, objects: Iterable[tuple[ObjectKey, Object]], kinds: Iterable[str] = KINDS) -> bool:
        """Make the given kinds hold exactly `objects` (a full re-list); returns whether anything changed."""
        fresh: dict[str, dict[tuple[str, str], Object]] = {kind: {} for kind in kinds}
        for key, obj in objects:
            if key.kind in fresh:
                fresh[key.kind][(key.namespace, key.name)] = obj
        changed = any(self._objects.get(kind) != bucket for kind, bucket in fresh.items())
        if changed:
            self._objects.update(fresh)
            self._touch()
        return changed

    @contextlib.contextmanager
    def listing(self) -> Iterator[int]:
        """Around a full LIST: yields the version it starts from, for `reconcile`.

        Which keys change when is remembered only while a LIST is in flight (at 10,000 objects,
        keeping it between LISTs was a key and a version each, for nothing).
        """
        self._listings += 1
        try:
            yield self._version
        finally:
            self._listings -= 1
            if not self._listings:
                self._touched.clear()

    def reconcile(self, kind: str, listed: Mapping[tuple[str, str], Object], since: int,
                  namespaces: Iterable[str] | None = None) -> bool:
        """Apply a full LIST of `kind` taken inside `listing()`, which gave `since`, without undoing
        newer watch events.

        Keys changed after `since` are left alone (the watch knows better); every other key takes
        the listed state, so objects deleted while a watch was down disappear. `namespaces`
        limits the pruning to the namespaces that were listed.
        """
        bucket = self._objects[kind]
        scope = None if namespaces is None else set(namespaces)
        changed = False
        for ns_name in set(bucket) | set(listed):
            if self._touched.get(ObjectKey(kind, *ns_name), -1) > since or (scope is not None and ns_name[0] not in scope):
                continue
            obj = listed.get(ns_name)
            if obj is None:
                changed |= bucket.pop(ns_name, None) is not None
            elif bucket.get(ns_name) != obj:
                bucket[ns_name] = obj
                changed = True
        if changed:
            self._touch()
        return changed

    def snapshot(self) -> Snapshot:
        return Snapshot(
            MappingProxyType({kind: MappingProxyType(dict(bucket)) for kind, bucket in self._objects.items()}),
            self._version,
        )

    async def wait_changed(self, since: int) -> int:
        """Wait until the version moves past `since`; return the new version."""
        while self._version == since:
            self._changed.clear()
            await self._changed.wait()
        return self._version

    def _touch(self, key: ObjectKey | None = None) -> None:
        self._version += 1
        now = time.monotonic()
        self.gap, self.changed_at = now - self.changed_at, now
        if key is not None and self._listings:
            self._touched[key] = self._version
        self._changed.set()


def _without_status(ingress: Object) -> Object:
    """An Ingress without what writing its status changes (the status and the resourceVersion)."""
    metadata = {k: v for k, v in (ingress.get("metadata") or {}).items() if k != "resourceVersion"}
    return {**{k: v for k, v in ingress.items() if k != "status"}, "metadata": metadata}
