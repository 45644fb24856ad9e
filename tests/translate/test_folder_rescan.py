"""Folder mode follows file changes without walking the folders, and ends where a full walk would."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from pathlib import Path

from ingress_ctrl.sources.files import FolderSource
from ingress_ctrl.state import Store


def _ingress(name: str, host: str) -> str:
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"rules": [{"host": host}]}})


def test_file_changes_end_where_a_full_walk_ends(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    errors: list[str] = []
    source = FolderSource([root], Store(), on_error=errors.append)
    walker = FolderSource([root], Store(), on_error=lambda message: None)  # walks everything each time
    source._rescan(None)
    rng = random.Random(7)
    names = ["a.json", "b.json", "sub/c.json", "sub/deeper/d.json", ".hidden.json", "sub/.e.json", "notes.txt"]
    for step in range(200):
        name = rng.choice(names)
        path = root / name
        action = rng.choice(("write", "write", "delete", "bad"))
        if action == "delete":
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a few names on purpose: two files may define the same Ingress, and the later file wins
            text = _ingress(f"i{rng.randrange(4)}", f"h{step}.example") if action == "write" else "{ not json"
            path.write_text(text)
        assert source._reread({str(path)}), name
        assert source._union() == walker._rescan(None), (step, action, name)
    assert any("cannot parse" in e for e in errors)


def test_a_folder_that_comes_or_goes_is_walked_again(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.json").write_text(_ingress("x", "x.example"))
    source = FolderSource([root], Store())
    assert len(source._rescan(None) or []) == 1
    shutil.rmtree(root / "sub")
    assert not source._reread({str(root / "sub")})
    assert source._rescan({str(root / "sub")}) == []
    (root / "new").mkdir()
    (root / "new" / "y.json").write_text(_ingress("y", "y.example"))
    assert not source._reread({str(root / "new")})
    assert [key.name for key, _ in source._rescan({str(root / "new")}) or []] == ["y"]


def test_a_file_named_on_the_command_line_that_goes_away_is_an_error_not_an_empty_world(tmp_path: Path) -> None:
    file = tmp_path / "all.json"
    file.write_text(_ingress("x", "x.example"))
    errors: list[str] = []
    source = FolderSource([file], Store(), on_error=errors.append)
    assert len(source._rescan(None) or []) == 1
    file.unlink()
    assert source._rescan({str(file)}) is None  # the Store keeps what it has
    assert errors and "no such file" in errors[0]


def test_a_linked_folder_and_a_hidden_root_inside_another_are_what_a_full_walk_makes_of_them(tmp_path: Path) -> None:
    """A folder linked into a root is not walked (rglob does not follow it), so a change in it is
    left to a full walk; a file under a root named on the command line counts even when that root
    is hidden inside another root."""
    root, other = tmp_path / "m", tmp_path / "other"
    (root / ".private").mkdir(parents=True)
    other.mkdir()
    (root / "link").symlink_to(other)
    source = FolderSource([root, root / ".private"], Store())
    walker = FolderSource([root, root / ".private"], Store())
    source._rescan(None)
    for path in (other / "x.json", root / ".private" / "p.json"):
        path.write_text(_ingress(path.stem, f"{path.stem}.example"))
        changed = str(root / "link" / "x.json") if path.parent == other else str(path)
        assert source._rescan({changed}) == walker._rescan(None), path


def test_a_relative_folder_is_followed(tmp_path: Path, monkeypatch) -> None:
    """`--manifests examples`: watchfiles names changes by absolute path; they must still count."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.json").write_text(_ingress("a", "a.example"))
    monkeypatch.chdir(tmp_path)

    async def scenario() -> list[str]:
        store, stop = Store(), asyncio.Event()
        source = FolderSource([Path("m")], store)
        task = asyncio.create_task(source.run(stop))
        await asyncio.wait_for(source.ready.wait(), 10)
        version = store.version
        await asyncio.sleep(0.2)  # watchfiles is watching
        (tmp_path / "m" / "b.json").write_text(_ingress("b", "b.example"))
        await asyncio.wait_for(store.wait_changed(version), 10)
        stop.set()
        await asyncio.wait_for(task, 10)
        return sorted(name for _, name in store.snapshot().of("Ingress"))

    assert asyncio.run(scenario()) == ["a", "b"]
