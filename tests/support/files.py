"""Scratch directories and atomic writes: the controller's --state-dir and manifest folders must
be under /tmp, traversable by nginx workers (which run as nobody), and removed at session end;
manifest files must appear whole to the controller's watcher."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class ScratchDirs:
    """Fresh directories `/tmp/<tag>-<prefix>-XXXX`, mode 0755, remembered until `remove_all`."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._made: list[Path] = []

    def make(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{self.tag}-{prefix}-", dir="/tmp"))
        path.chmod(0o755)
        self._made.append(path)
        return path

    def remove_all(self) -> None:
        while self._made:
            shutil.rmtree(self._made.pop(), ignore_errors=True)


def write_atomic(target: Path, text: str) -> None:
    """Write through a hidden temporary file beside `target` and a rename (never half a file)."""
    temporary = target.with_name(f".{target.name}.tmp")  # hidden: never read as a manifest
    temporary.write_text(text)
    os.replace(temporary, target)
