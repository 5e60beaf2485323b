"""Directory handles and no-follow writes on real folders and links."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

import pytest

from documentation_worker.safefs import UnsafePath, is_file_in, opened_dir, write_file
from documentation_worker.sources import Found
from documentation_worker.writing import listed, pages_checkpoint, skipped_note


def test_writes_through_a_handle_and_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    ws, victim = tmp_path / "ws", tmp_path / "victim.txt"
    victim.write_text("VICTIM")
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "page.md").symlink_to(victim)
    with opened_dir(ws, PurePath("out")) as fd:
        write_file(fd, "page.md", "# Page\n")
        assert is_file_in(fd, "page.md")
        assert not is_file_in(fd, "missing.md")
    assert victim.read_text() == "VICTIM"
    assert (ws / "out" / "page.md").read_text() == "# Page\n"
    assert sorted(os.listdir(ws / "out")) == ["page.md"]  # no temp file left


def test_a_folder_moved_after_opening_keeps_receiving_the_writes(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    with opened_dir(ws, PurePath("docs/api"), create=True) as fd:
        (ws / "docs" / "api").rename(ws / "docs" / "aside")
        (ws / "docs" / "api").symlink_to(outside)
        write_file(fd, "late.md", "late\n")
    assert (ws / "docs" / "aside" / "late.md").read_text() == "late\n"
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("link", "docs cannot be used as a folder: it is a symbolic link"),
        ("file", "docs cannot be used as a folder: it is not a folder"),
    ],
)
def test_links_and_files_on_the_way_are_refused(tmp_path: Path, setup: str, problem: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    if setup == "link":
        (ws / "docs").symlink_to(tmp_path)
    else:
        (ws / "docs").write_text("")
    with pytest.raises(UnsafePath, match=problem), opened_dir(ws, PurePath("docs/api"), create=True):
        pass
    assert not (tmp_path / "api").exists()


def test_lists_are_cut_to_their_budget_with_a_count() -> None:
    names = [f"{'m' * 90}{i:04d}.md" for i in range(2000)]
    data = listed("pages", names)
    assert len(data["pages"]) + data["pages_not_listed"] == 2000
    assert sum(len(n) + 3 for n in data["pages"]) <= 64 * 1024
    assert listed("pages", ["a.md"]) == {"pages": ["a.md"]}
    checkpoint = pages_checkpoint("api", "docs/api/", set(names))
    assert checkpoint["not_listed"] == 2000 - len(checkpoint["written"])
    assert pages_checkpoint("api", "out", {"b.md", "a.md"}) == {
        "kind": "api",
        "output": "out",
        "written": ["a.md", "b.md"],
    }


def test_the_note_on_what_was_not_read_stays_short() -> None:
    found = Found(
        skipped=[f"{'d' * 250}/" * 60 + f"l{i} (a link to a folder: never followed)" for i in range(9)]
    )
    note = skipped_note(found)
    assert len(note) < 2000
    assert note.endswith("; and 4 more)")
    assert note.count("… [cut ") == 5
