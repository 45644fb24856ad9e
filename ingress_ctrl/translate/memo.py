"""Remembering pure per-object results across syncs, by object identity.

Objects in the Store are never changed in place (a change replaces the object), so a result
computed from one object stays right for as long as that very object is in the Store. This is
what keeps a sync at 10,000 Ingresses cheap when one of them changed: translate stays a pure
function of its inputs, it just does not redo work it has done for the same inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """`memo(obj, *args)` returns `function(obj, *args)`, computed once per identical `obj`.

    `args` must be derived from `obj` (the memo does not key on them). Exceptions are remembered
    too and raised again. Entries of objects not asked for in the last `generations` rounds are
    dropped, so memory follows the Store.
    """

    def __init__(self, function: Callable[..., T]) -> None:
        self._function = function
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[Any, bool, Any]] = {}
        self._fresh: dict[int, tuple[Any, bool, Any]] = {}

    def __call__(self, obj: Any, *args: Any) -> T:
        entry = self._fresh.get(id(obj)) or self._entries.get(id(obj))
        if entry is None or entry[0] is not obj:
            try:
                entry = (obj, True, self._function(obj, *args))
            except Exception as error:  # noqa: BLE001 - remembered and re-raised below
                entry = (obj, False, error)
        self._fresh[id(obj)] = entry
        if not entry[1]:
            raise entry[2]
        return entry[2]

    def new_round(self) -> None:
        """Start a sync: what the previous sync did not ask for is forgotten."""
        with self._lock:
            self._entries, self._fresh = self._fresh, {}
