"""Folder mode: manifests on disk → Store, kept in step with watchfiles.

A file that stops parsing is reported and its last good objects stay in the Store, so a
half-saved edit never takes routes down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import watchfiles
import yaml

from ingress_ctrl.sources.slim import slim
from ingress_ctrl.state import KINDS, Object, ObjectKey, Store, key_of

log = logging.getLogger(__name__)
SUFFIXES = (".yaml", ".yml", ".json")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestError(Exception):
    """A path that cannot be read or a file that cannot be parsed; the message names it."""


def discover(paths: Sequence[Path]) -> list[Path]:
    """Manifest files under `paths` (files as given, folders recursively), sorted; hidden files skipped."""
    found: set[Path] = set()
    for path in paths:
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            found.update(
                p for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file() and _visible(p, path)
            )
        else:
            raise ManifestError(f"{path}: no such file or directory")
    return sorted(found)


def load_file(path: Path) -> list[tuple[ObjectKey, Object]]:
    """The objects of kinds we know in one file (multi-document YAML, JSON, `kind: List`), slim
    (only what is read of them: sources/slim.py)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot read: {error}") from None
    try:
        documents: Iterable[Any] = [json.loads(text)] if path.suffix == ".json" else list(yaml.load_all(text, Loader=_Loader))
    except (ValueError, yaml.YAMLError) as error:
        raise ManifestError(f"{path}: cannot parse: {' '.join(str(error).split())}") from None
    objects = []
    for index, document in enumerate(_flatten(documents)):
        if document is None or (isinstance(document, Mapping) and document.get("kind") not in KINDS):
            continue
        try:
            if not isinstance(document, Mapping):
                raise ValueError("not an object")
            key = key_of(document)
        except ValueError as error:
            raise ManifestError(f"{path}: document {index + 1}: {error}") from None
        objects.append((key, slim(_with_namespace(document, key))))
    return objects


def load_all(paths: Sequence[Path]) -> list[tuple[ObjectKey, Object]]:
    """Every object under `paths`; raises ManifestError on the first bad path or file."""
    return [item for file in discover(paths) for item in load_file(file)]


def _flatten(documents: Iterable[Any]) -> Iterable[Any]:
    for document in documents:
        if isinstance(document, Mapping) and document.get("kind") == "List" and isinstance(document.get("items"), list):
            yield from document["items"]
        else:
            yield document


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _with_namespace(obj: Mapping[str, Any], key: ObjectKey) -> Object:
    """The object as the API would hold it: namespaced objects carry their namespace."""
    if not key.namespace or obj["metadata"].get("namespace") == key.namespace:
        return obj
    return {**obj, "metadata": {**obj["metadata"], "namespace": key.namespace}}


class FolderSource:
    """Loads the folders into the Store once, then follows every change to their files."""

    def __init__(self, paths: Sequence[Path], store: Store, on_error: Callable[[str], None] | None = None) -> None:
        self.paths = [Path(p).absolute() for p in paths]  # as watchfiles names what changed (not resolved)
        self.store = store
        self.on_error = on_error or (lambda message: log.error("%s", message))
        self.ready = asyncio.Event()
        self._by_file: dict[str, list[tuple[ObjectKey, Object]]] = {}  # by str(path): a Path costs ~300 bytes more

    async def run(self, stop: asyncio.Event | None = None) -> None:
        self.store.replace(await asyncio.to_thread(self._rescan, None))
        self.ready.set()
        async for changes in watchfiles.awatch(*self.paths, stop_event=stop, debounce=50, step=20, recursive=True):
            objects = await asyncio.to_thread(self._rescan, {str(Path(path)) for _, path in changes})
            if objects is not None:
                self.store.replace(objects)

    def _rescan(self, changed: set[str] | None) -> list[tuple[ObjectKey, Object]] | None:
        """Re-read new and changed files (`changed`: str(path) of each), forget removed ones; the
        union of all files' objects, in the order `discover` gives the files (a later file's
        object wins a key two files define)."""
        if changed is not None and self._reread(changed):
            return self._union()
        try:
            files = discover(self.paths)
        except ManifestError as error:
            self.on_error(str(error))
            return None
        fresh: dict[str, list[tuple[ObjectKey, Object]]] = {}
        for file in files:
            name = str(file)
            if changed is not None and name in self._by_file and name not in changed:
                fresh[name] = self._by_file[name]
                continue
            fresh[name] = self._load(file)
        self._by_file = fresh
        return self._union()

    def _reread(self, changed: set[str]) -> bool:
        """Follow changes to files alone without walking the folders (at 10,000 Ingresses a walk
        took ~0.25 s per change); False, having changed nothing, when a folder came or went."""
        files: list[str] = []
        for name in changed:
            path = Path(name)
            if path.is_dir() or path in self.paths:
                return False  # a folder, or a path given on the command line: walk them all again
            roots = [r for r in self.paths if r in path.parents]
            if not any(_visible(path, root) for root in roots):
                continue  # as `discover`: hidden files and folders do not count
            if any(parent.is_symlink() for root in roots for parent in path.parents if root in parent.parents):
                return False  # `discover` (rglob) does not follow a linked folder; watchfiles does
            if name in self._by_file or (path.suffix in SUFFIXES and path.is_file()):
                files.append(name)
            elif any(known.startswith(name + "/") for known in self._by_file):
                return False  # a folder of manifests went away
        added = False
        for name in files:
            path = Path(name)
            if path.is_file():
                added |= name not in self._by_file
                self._by_file[name] = self._load(path)
            else:
                self._by_file.pop(name, None)
        if added:
            self._by_file = dict(sorted(self._by_file.items(), key=lambda item: Path(item[0])))
        return True

    def _load(self, file: Path) -> list[tuple[ObjectKey, Object]]:
        try:
            return load_file(file)
        except ManifestError as error:
            self.on_error(f"{error}; keeping its last good objects")
            return self._by_file.get(str(file), [])

    def _union(self) -> list[tuple[ObjectKey, Object]]:
        return [item for objects in self._by_file.values() for item in objects]
