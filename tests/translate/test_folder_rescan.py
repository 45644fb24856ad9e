"""Folder mode follows file changes without walking the folders, and ends where a full walk would."""

from __future__ import annotations

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
