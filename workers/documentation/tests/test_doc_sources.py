"""read_package on real trees with real links: what is read, what is skipped, every cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from documentation_worker.limits import DocsLimits
from documentation_worker.sources import TooMuch, UnsafePath, read_package


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tree(tmp_path / "ws", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n", "pkg/sub/b.py": "B = 2\n"})


def names(ws: Path, root: str, **limits: int) -> list[tuple[str, str]]:
    found = read_package(ws.resolve(), (ws / root).resolve(), DocsLimits(**limits))  # type: ignore[arg-type]
    return [(s.dotted, s.path) for s in found.sources]


def test_reads_a_package_in_order(ws: Path) -> None:
    assert names(ws, "pkg") == [
        ("pkg", "pkg/__init__.py"),
        ("pkg.a", "pkg/a.py"),
        ("pkg.sub.b", "pkg/sub/b.py"),
    ]
    assert names(ws, "pkg/a.py") == [("a", "a.py")]
    assert names(ws, "pkg/sub") == [("b", "sub/b.py")]


def test_links_to_folders_are_never_entered_and_loops_end(ws: Path, tmp_path: Path) -> None:
    (ws / "pkg" / "self").symlink_to(".")
    (ws / "pkg" / "up").symlink_to("..")
    (ws / "pkg" / "sub" / "inside").symlink_to("../sub")  # even one that stays inside
    (ws / "pkg" / "out").symlink_to(tree(tmp_path / "out", {"x.py": "SECRET = 1\n"}))
    found = read_package(ws.resolve(), (ws / "pkg").resolve(), DocsLimits())
    assert [s.dotted for s in found.sources] == ["pkg", "pkg.a", "pkg.sub.b"]
    assert found.skipped == [
        "pkg/out (a link to a folder: never followed)",
        "pkg/self (a link to a folder: never followed)",
        "pkg/up (a link to a folder: never followed)",
        "pkg/sub/inside (a link to a folder: never followed)",
    ]


def test_file_links_are_read_only_when_they_stay_inside(ws: Path, tmp_path: Path) -> None:
    tree(tmp_path, {"elsewhere/secret.py": "KEY = 'sk'\n"})
    (ws / "pkg" / "secret.py").symlink_to(tmp_path / "elsewhere" / "secret.py")
    (ws / "pkg" / "again.py").symlink_to("a.py")
    (ws / "pkg" / "dangling.py").symlink_to("nowhere.py")
    found = read_package(ws.resolve(), (ws / "pkg").resolve(), DocsLimits())
    assert {s.dotted: s.data for s in found.sources}["pkg.again"] == b"A = 1\n"
    assert "pkg.secret" not in {s.dotted for s in found.sources}
    assert "pkg/secret.py (a link to a file outside the workspace: never followed)" in found.skipped
    assert "pkg/dangling.py (cannot open: No such file or directory)" in found.skipped


def test_a_fifo_is_not_read(ws: Path) -> None:
    os.mkfifo(ws / "pkg" / "pipe.py")
    found = read_package(ws.resolve(), (ws / "pkg").resolve(), DocsLimits())
    assert "pkg/pipe.py" not in [s.path for s in found.sources]  # and the walk did not hang on it


def test_a_root_swapped_for_a_link_after_the_check_is_refused(ws: Path, tmp_path: Path) -> None:
    checked = (ws / "pkg").resolve()
    (ws / "pkg").rename(ws / "moved")
    (ws / "pkg").symlink_to(tree(tmp_path / "out", {"x.py": "SECRET = 1\n"}))
    with pytest.raises(UnsafePath, match="pkg cannot be used as a folder: it is a symbolic link"):
        read_package(ws.resolve(), checked, DocsLimits())


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_files": 2}, "more than 2 Python files under pkg (DOCS_MAX_FILES)"),
        ({"max_file_bytes": 5}, "pkg/a.py is 6 bytes, over the 5-byte cap per file (DOCS_MAX_FILE_BYTES)"),
        (
            {"max_total_bytes": 10},
            "add up to more than 10 bytes (DOCS_MAX_TOTAL_BYTES, reached at pkg/sub/b.py)",
        ),
        ({"max_entries": 3}, "more than 3 directory entries under pkg (DOCS_MAX_ENTRIES)"),
        ({"max_depth": 1}, "pkg/sub is nested more than 1 folders deep (DOCS_MAX_DEPTH)"),
    ],
)
def test_caps(ws: Path, limits: dict[str, int], message: str) -> None:
    with pytest.raises(TooMuch) as info:
        names(ws, "pkg", **limits)
    assert message in str(info.value)


def test_deep_trees_end_in_the_depth_cap_not_in_running_out_of_handles(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    path = ws / "pkg"
    for _ in range(300):
        path = path / "d"
    path.mkdir(parents=True)
    (path / "m.py").write_text("")
    with pytest.raises(TooMuch, match="nested more than 64 folders deep"):
        names(ws, "pkg")
