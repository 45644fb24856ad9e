"""What keeps the controller's memory bounded beside slim objects: the Store remembers which keys
changed only while a LIST is in flight (and still lets a LIST lose to newer watch events), and
glibc keeps serving large blocks by mmap, so they go back to the OS when freed."""

from __future__ import annotations

import platform

from ingress_ctrl.controller import fix_mmap_threshold
from ingress_ctrl.state import ObjectKey, Store, key_of
from tests.translate.objects import service


def _keyed(*objects: dict) -> dict[tuple[str, str], dict]:
    return {(key_of(o).namespace, key_of(o).name): o for o in objects}


def test_reconcile_takes_the_list_but_not_over_newer_watch_events() -> None:
    store = Store()
    store.replace([(key_of(o), o) for o in (service("kept"), service("gone"), service("changed"))])
    with store.listing() as since:
        newer = service("changed", ports=[{"name": "http", "port": 81}])
        store.put(newer)  # a watch event while the LIST is in flight
        created = service("created")
        store.put(created)
        listed = _keyed(service("kept", ports=[{"name": "http", "port": 82}]), service("changed"))
        assert store.reconcile("Service", listed, since)
    services = store.snapshot().of("Service")
    assert services[("default", "kept")]["spec"]["ports"][0]["port"] == 82   # the LIST's state
    assert ("default", "gone") not in services                                # deleted while unwatched
    assert services[("default", "changed")] is newer                          # the watch knew better
    assert services[("default", "created")] is created                        # created after the LIST began


def test_changes_are_remembered_only_while_a_list_is_in_flight() -> None:
    store = Store()
    for n in range(100):
        store.put(service(f"s{n}"))
    assert not store._touched
    with store.listing() as since:
        with store.listing():
            store.put(service("late"))
        assert store._touched == {ObjectKey("Service", "default", "late"): store.version}  # the outer LIST still needs it
        store.reconcile("Service", {}, since)
    assert not store._touched
    assert list(store.snapshot().of("Service")) == [("default", "late")]


def test_reconcile_without_change_does_not_wake_the_sync_loop() -> None:
    store = Store()
    store.put(service("a"))
    with store.listing() as since:
        version = store.version
        assert not store.reconcile("Service", _keyed(service("a")), since)
    assert store.version == version


def test_glibc_keeps_a_fixed_mmap_threshold() -> None:
    assert fix_mmap_threshold() is (platform.libc_ver()[0] == "glibc")
