"""What a project's environment is made of, read from its files (no uv runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from env_projects import write

from testing_worker.project_env import (
    MetadataError,
    find_root,
    find_venv,
    pick_test_dependencies,
    read_plan,
    requirement_files,
)

PYPROJECT = """
[project]
name = "app"
version = "1"
dependencies = ["attrs"]

[project.optional-dependencies]
{extras}

[dependency-groups]
{groups}

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


def pyproject(root: Path, extras: str = "", groups: str = "", build: bool = True) -> None:
    text = PYPROJECT.format(extras=extras, groups=groups)
    if not build:
        text = text.split("[build-system]")[0]
    write(root, {"pyproject.toml": text})


def test_a_test_extra_and_group_are_chosen_not_the_others(tmp_path: Path) -> None:
    pyproject(tmp_path, 'test = ["six"]\ndocs = ["sphinx"]', 'Tests = ["tabulate"]\nlint = ["ruff"]')
    plan = read_plan(tmp_path, wants_pytest=True)
    assert plan.pip_args == ("-e", ".[test]", "--group", "Tests", "pytest")
    assert plan.sources == ("pyproject.toml [test]", "group Tests")
    assert plan.describe() == "pyproject.toml [test] + group Tests + pytest"
    assert plan.files == (tmp_path / "pyproject.toml",)


def test_dev_named_ones_only_when_nothing_is_named_for_tests(tmp_path: Path) -> None:
    pyproject(tmp_path, 'dev = ["six"]\ndocs = ["sphinx"]', 'develop = ["tabulate"]')
    assert read_plan(tmp_path, wants_pytest=False).pip_args == ("-e", ".[dev]", "--group", "develop")
    # a test-named one anywhere (here a requirements file) wins over every dev-named one
    write(tmp_path, {"requirements-test.txt": "pytest-mock\n"})
    plan = read_plan(tmp_path, wants_pytest=False)
    assert plan.pip_args == ("-e", ".", "-r", "requirements-test.txt")


def test_a_project_that_cannot_be_built_gives_its_requirements(tmp_path: Path) -> None:
    pyproject(tmp_path, 'testing = ["six"]', build=False)
    plan = read_plan(tmp_path, wants_pytest=True)
    assert plan.pip_args == ("-r", "pyproject.toml", "--extra", "testing", "pytest")


def test_setup_cfg_extras_are_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "setup.cfg": "[metadata]\nname = old\n\n[options.extras_require]\ntests =\n    six\n",
            "setup.py": "from setuptools import setup\nsetup()\n",
        },
    )
    plan = read_plan(tmp_path, wants_pytest=True)
    assert plan.pip_args == ("-e", ".[tests]", "pytest")
    assert set(plan.files) == {tmp_path / "setup.cfg", tmp_path / "setup.py"}


def test_requirements_files_and_their_includes(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "tabulate==0.9.0\n",
            "requirements-dev.txt": "-r requirements/base.txt\n--constraint=constraints.txt\n.  # the project\n",
            "requirements-docs.txt": "sphinx\n",
            "requirements/base.txt": "six\n",
            "constraints.txt": "six<2\n",
        },
    )
    found = requirement_files(tmp_path)
    assert found == {
        "base": ["requirements.txt", "requirements/base.txt"],
        "test": [],
        "dev": ["requirements-dev.txt"],
    }
    plan = read_plan(tmp_path, wants_pytest=True)
    assert plan.pip_args == (
        "-r",
        "requirements.txt",
        "-r",
        "requirements/base.txt",
        "-r",
        "requirements-dev.txt",
        "pytest",
    )
    assert tmp_path / "constraints.txt" in plan.files  # an include changes the key too
    assert "requirements-docs.txt" not in str(plan.files)
    assert plan.local_paths == (str(tmp_path),)  # `.`: reinstalled on every reuse


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("requirements.txt", "base"),
        ("requirements-test.txt", "test"),
        ("requirements_tests.txt", "test"),
        ("test-requirements.txt", "test"),
        ("dev-requirements.txt", "dev"),
        ("requirements-dev.txt", "dev"),
        ("requirements-docs.txt", None),
        ("requirements-tests39.txt", None),
        ("requirements.in", None),
    ],
)
def test_requirement_file_names(tmp_path: Path, name: str, kind: str | None) -> None:
    (tmp_path / name).write_text("six\n")
    found = requirement_files(tmp_path)
    assert [k for k, names in found.items() if name in names] == ([kind] if kind else [])


def test_a_uv_lock_is_synced_from(tmp_path: Path) -> None:
    pyproject(tmp_path, 'test = ["six"]', 'dev = ["ruff"]')
    (tmp_path / "uv.lock").write_text("version = 1\n")
    plan = read_plan(tmp_path, wants_pytest=True)
    assert plan.sync_args == ("--locked", "--extra", "test")
    assert plan.pip_args == ("pytest",)
    assert tmp_path / "uv.lock" in plan.files


def test_no_metadata_means_pytest_only(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    plan = read_plan(tmp_path, wants_pytest=True)
    assert (plan.pip_args, plan.sources, plan.files) == (("pytest",), (), ())
    assert plan.describe() == "no dependency metadata: pytest only"
    assert read_plan(tmp_path, wants_pytest=False).describe() == "no dependency metadata: a bare environment"


def test_payload_install_replaces_the_metadata(tmp_path: Path) -> None:
    pyproject(tmp_path, 'test = ["six"]')
    write(tmp_path, {"ci.txt": "-r more.txt\n", "more.txt": "six\n"})
    plan = read_plan(tmp_path, wants_pytest=True, install=("-e", ".[ci]", "-r", "ci.txt"))
    assert plan.pip_args == ("-e", ".[ci]", "-r", "ci.txt", "pytest")
    assert plan.describe() == "payload.install (-e .[ci] -r ci.txt)"
    assert {tmp_path / "ci.txt", tmp_path / "more.txt", tmp_path / "pyproject.toml"} <= set(plan.files)


def test_bad_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 1\n")
    with pytest.raises(MetadataError, match=r"pyproject.toml is not valid TOML: "):
        read_plan(tmp_path, wants_pytest=True)


def test_the_root_is_the_nearest_folder_with_metadata_or_a_venv(tmp_path: Path) -> None:
    top = tmp_path / "app"
    deep = top / "tests" / "unit"
    deep.mkdir(parents=True)
    assert find_root(deep, top) == deep  # nothing anywhere: where the command runs
    (top / "requirements.txt").write_text("six\n")
    assert find_root(deep, top) == top
    (tmp_path / "pyproject.toml").write_text("")  # above the project's top: never looked at
    assert find_root(top, top) == top
    (deep / ".venv").mkdir()
    (deep / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert find_root(deep, top) == deep
    assert find_venv(deep) == deep / ".venv"


def test_only_venv_folders_with_pyvenv_cfg_count(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()  # no pyvenv.cfg: not a virtual environment
    (tmp_path / ".env").mkdir()
    (tmp_path / ".env" / "pyvenv.cfg").write_text("")  # a name we do not guess at
    assert find_venv(tmp_path) is None
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    assert find_venv(tmp_path) == tmp_path / "venv"


def test_picking_is_by_normalized_name() -> None:
    assert pick_test_dependencies(["Test_Suite", "TESTS"], ["testing"], {"test": [], "dev": []}) == (
        ["TESTS"],
        ["testing"],
        [],
    )
