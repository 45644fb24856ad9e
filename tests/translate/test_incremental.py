"""What makes translate fast must not change what it says: a sync after a change gives the same
Translation and text as a translate from scratch (the memos), and the garbage collector is left
as translate found it (collector.py), whatever happens inside."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest

from ingress_ctrl.render import render
from ingress_ctrl.settings import ClassSettings, NginxSettings, TranslateSettings
from ingress_ctrl.state import Store, key_of
from ingress_ctrl.translate import collector, core, translate
from tests.translate.objects import NOW, backend, endpoint_slice, ingress, ingress_class, path, rule, served_service, service

SETTINGS = TranslateSettings(classes=ClassSettings())
NGINX = NginxSettings(state_dir=Path("/tmp/ingress-ctrl-test-incremental"), http_port=8080, https_port=8443)


def _forget() -> None:
    for memo in core.MEMOS:
        memo.new_round()
        memo.new_round()


def _world() -> Store:
    store = Store()
    objects = [ingress_class(), *served_service("a"), *served_service("b", "10.0.0.2", "10.0.0.3"), service("empty"),
               endpoint_slice("b", ["10.0.0.4"], name="b-second"),
               ingress("one", rule("one.com", path("/", "a"), path("/api", "b"), path("/x/", "empty", "Exact"))),
               ingress("two", rule("two.com", path("/", "b")), rule("one.com", path("/api", "a")), created="2030-01-01T00:00:00Z"),
               ingress("three", default_backend=backend("a"),
                       annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "30"})]
    store.replace((key_of(o), o) for o in objects)
    return store


@pytest.mark.parametrize("change", [
    ingress("two", rule("two.com", path("/", "a"), path("/new", "b")), created="2030-01-01T00:00:00Z"),
    endpoint_slice("b", ["10.0.0.9"], name="b-second"),
    service("a", ports=[{"name": "http", "port": 81}]),
    ingress("one", rule("one.com", path("/", "a")), annotations={"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}),
])
def test_a_sync_after_a_change_equals_a_translate_from_scratch(change: dict) -> None:
    store = _world()
    _forget()
    translate(store.snapshot(), SETTINGS, NOW)  # remembers everything
    store.put(change)
    warm = translate(store.snapshot(), SETTINGS, NOW)
    warm_text = render(warm.config, NGINX).text
    _forget()
    cold = translate(store.snapshot(), SETTINGS, NOW)
    assert warm == cold
    assert warm_text == render(cold.config, NGINX).text


def test_translate_leaves_the_collector_as_it_found_it() -> None:
    store = _world()
    assert gc.isenabled()
    translate(store.snapshot(), SETTINGS, NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        translate(store.snapshot(), SETTINGS, NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_restarts_after_an_error_and_after_the_last_of_overlapping_pauses() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("inside")
    assert gc.isenabled()

    first_in, second_done = threading.Event(), threading.Event()

    def second() -> None:
        first_in.wait()
        with collector.paused():
            pass
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with collector.paused():
        first_in.set()
        second_done.wait()
        assert not gc.isenabled()  # the other pause ended first: still paused for this one
    thread.join()
    assert gc.isenabled()


def test_what_a_big_translate_built_is_frozen_out_of_later_collections() -> None:
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with collector.paused():
            kept = [[i] for i in range(collector.FREEZE_AFTER // 10)]  # few: left to the collector
        assert gc.get_freeze_count() == frozen
        with collector.paused():
            kept += [[i] for i in range(collector.FREEZE_AFTER + 1)]  # many: frozen
        assert gc.get_freeze_count() >= frozen + collector.FREEZE_AFTER
        assert gc.isenabled()
        del kept  # still freed by reference counting
    finally:
        gc.unfreeze()


def test_cyclic_garbage_made_during_a_big_pause_is_collected_not_frozen() -> None:
    """Other threads run during a translate (Kopf's start-up flood beside the first one): the cycles
    they dropped meanwhile are collected before the freeze, not kept for ever; the rest is frozen."""
    class Node:
        partner: object = None

    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with collector.paused():
            kept = [[i] for i in range(collector.FREEZE_AFTER + 1)]
            dropped = Node()
            dropped.partner = dropped
            gone = weakref.ref(dropped)
            del dropped
        assert gone() is None
        assert gc.get_freeze_count() >= frozen + collector.FREEZE_AFTER
        del kept
    finally:
        gc.unfreeze()
