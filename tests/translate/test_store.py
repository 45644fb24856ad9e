"""The Store wakes the sync loop only for what translate reads: an Ingress's status write comes
back from the API as a watch event (with a new resourceVersion), and must not start a sync."""

from __future__ import annotations

import asyncio

from ingress_ctrl.state import Store


def ingress(resource_version: str, ip: str | None = None, host: str = "a.example") -> dict:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "a", "namespace": "default", "resourceVersion": resource_version, "generation": 1},
           "spec": {"rules": [{"host": host}]}}
    if ip:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    return obj


def test_a_status_write_updates_the_object_without_a_sync() -> None:
    store = Store()
    assert store.put(ingress("1"))
    version = store.version
    assert not store.put(ingress("2", ip="10.0.0.1"))
    assert store.version == version  # no sync
    assert store.snapshot().get("Ingress", "default", "a")["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}]


def test_a_spec_change_still_starts_a_sync() -> None:
    store = Store()
    store.put(ingress("1", ip="10.0.0.1"))
    version = store.version
    assert store.put(ingress("2", ip="10.0.0.1", host="b.example"))
    assert store.version > version
    assert asyncio.run(asyncio.wait_for(store.wait_changed(version), 1)) == store.version


def test_a_status_write_during_a_list_is_not_undone_by_the_older_listed_copy() -> None:
    store = Store()
    store.put(ingress("1"))
    with store.listing() as since:
        assert not store.put(ingress("2", ip="10.0.0.1"))  # the watch, while the LIST is read
        store.reconcile("Ingress", {("default", "a"): ingress("1")}, since)  # the LIST, older
    assert store.get("Ingress", "default", "a")["metadata"]["resourceVersion"] == "2"
    assert store.status_moved.is_set()
