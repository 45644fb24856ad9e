"""The controller's heap trim (`controller.heap_trimmer`): on glibc, the pages freed between blocks
that stay alive go back to the OS, which glibc's free() alone does not do. Kubernetes mode leaves
most of them (Kopf's events and the LIST pages between the Store's objects)."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from ingress_ctrl.controller import heap_trimmer

MIB = 1024 * 1024


def rss() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024  # type: ignore[union-attr]


def test_trim_returns_the_pages_freed_between_live_blocks() -> None:
    trim = heap_trimmer()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None
        return
    assert trim is not None
    kept: list[bytearray] = []
    freed: list[bytearray] = []
    for i in range(24_000):  # 48 MB of 2,000-byte blocks (malloc's, not pymalloc's), every 8th kept
        (kept if i % 8 == 0 else freed).append(bytearray(2000))
    freed.clear()
    before = rss()
    trim()
    assert before - rss() > 16 * MIB
    assert len(kept) == 3000
