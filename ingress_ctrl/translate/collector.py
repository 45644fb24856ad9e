"""The cyclic garbage collector paused while translate builds the model, and what a big translate
built frozen out of later collections.

A cold translate (start-up) builds ~40 long-lived objects per Ingress (the model and the memos)
on top of the Store's objects. CPython (3.11) runs a full collection whenever the objects that
survived into the oldest generation since the last one exceed a quarter of it, so building
400,000 objects at 10,000 Ingresses triggered 3-4 full collections, each walking the whole heap
(0.4-0.7 s each here, half of the cold translate) and finding next to nothing: translate makes
cycles only for the errors it remembers. Paused, the same objects would still cost a full
collection soon after (0.5 s at 10,000 Ingresses), and one more every time the collector's
schedule comes round, on the controller's event loop thread. After a translate that built many
objects (start-up, or a change to most of the world) they are frozen instead (`gc.freeze`): moved
out of the collector's view, still freed by reference counting when a later sync replaces them.
The freeze takes every object alive then, not only translate's, so the young generations are
collected first: cyclic garbage made during the pause (by translate's remembered errors, or by other
threads, e.g. Kopf's start-up flood: 3-18 MiB in Kubernetes mode at 10,000 Ingresses) is freed, not
kept for ever. That walks only what was made since the last collection, translate's new objects
included (0.15 s at 10,000 Ingresses); older garbage waiting for a full collection is still frozen.
It happens at start-up and after changes to most of the world, not per sync.
A sync that changed a few objects builds few and leaves the collector to its own schedule. The
pause is process-wide: other threads' cyclic garbage waits for its end, and their allocations
count towards the freeze threshold.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

FREEZE_AFTER = 100_000  # new objects left by a paused translate (~2,000 Ingresses' worth)

_lock = threading.Lock()
_depth = 0  # translates running (in threads): the last one to finish restarts the collector
_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside; everything frozen at the end if many objects were made meanwhile."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            restart = _depth == 0 and _was_enabled
            if restart:
                gc.enable()
        if restart and gc.get_count()[0] > FREEZE_AFTER:
            gc.collect(1)  # what was made meanwhile and is garbage already: freed, not frozen
            gc.freeze()
