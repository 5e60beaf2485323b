"""Markdown rendering: the pages say what the source says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_model import FIXTURES, by_name, extracted

from documentation_worker.apidoc import DocItem, DocSection, ModuleDoc
from documentation_worker.coverage import dead_links, documented_names
from documentation_worker.markdown import code, docstring_to_markdown, sections_to_markdown
from documentation_worker.render import module_filename, render_index, render_module
from documentation_worker.report import ArtifactInfo, render_report
from documentation_worker.tutorial import collect_examples, render_tutorial

SHAPES = FIXTURES / "shapes"


@pytest.fixture(scope="module")
def modules() -> list[ModuleDoc]:
    return extracted(SHAPES)


def section(page: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = page.index(heading + "\n")
    rest = page[start + len(heading) + 1 :]
    stop = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest[: stop.start()] if stop else rest


# --------------------------------------------------------------------------- docstrings


def test_doctest_becomes_a_pycon_block() -> None:
    md = docstring_to_markdown("Add.\n\n>>> add(2, 3)\n5\n\nMore text.")
    assert md == "Add.\n\n```pycon\n>>> add(2, 3)\n5\n```\n\nMore text."


def test_google_sections() -> None:
    doc = (
        "Divide.\n\nArgs:\n    a: the dividend.\n    b (int): the divisor;\n        never zero.\n\n"
        "Returns:\n    The quotient\n    as a float.\n\nRaises:\n    ZeroDivisionError: if b is 0.\n"
    )
    md = docstring_to_markdown(doc)
    assert "**Args:**\n\n- `a`: the dividend.\n- `b` (`int`): the divisor; never zero." in md
    assert "**Returns:**\n\nThe quotient as a float." in md
    assert "**Raises:**\n\n- `ZeroDivisionError`: if b is 0." in md


def test_literal_block_and_sphinx_roles() -> None:
    md = docstring_to_markdown(
        "Use :func:`evaluate` or :class:`~calc.Evaluator`::\n\n    evaluate('1 + 2')\n"
    )
    assert md == "Use `evaluate` or `calc.Evaluator`:\n\n```text\nevaluate('1 + 2')\n```"


def test_empty_docstring() -> None:
    assert docstring_to_markdown(None) == ""
    assert docstring_to_markdown("") == ""


# --------------------------------------------------------------------------- module pages


def test_parsed_sections_become_titled_lists() -> None:
    sections = (
        DocSection("text", text="Divide.\n\n>>> divide(4, 2)\n2.0"),
        DocSection(
            "parameters",
            items=(DocItem("a", "int", "the dividend."), DocItem("b", None, "the divisor;\n never zero.")),
        ),
        DocSection("returns", items=(DocItem("", "float", "The quotient."),)),
        DocSection("raises", items=(DocItem("", "ZeroDivisionError", "if :obj:`b` is 0."),)),
        DocSection("admonition", "Note", text="Slow."),
    )
    assert sections_to_markdown(sections) == (
        "Divide.\n\n```pycon\n>>> divide(4, 2)\n2.0\n```\n\n"
        "**Parameters:**\n\n- `a` (`int`): the dividend.\n- `b`: the divisor; never zero.\n\n"
        "**Returns:**\n\n- `float`: The quotient.\n\n"
        "**Raises:**\n\n- `ZeroDivisionError`: if `b` is 0.\n\n"
        "**Note:**\n\nSlow."
    )


def test_inline_code_survives_backticks() -> None:
    assert code("x") == "`x`"
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"


def test_module_page_has_every_public_object_with_its_anchor(modules: list[ModuleDoc]) -> None:
    page = render_module(by_name(modules, "shapes.geometry"))
    assert page.startswith(
        '# `shapes.geometry`\n\n<a id="shapes.geometry"></a>\n\nSource: `shapes/geometry.py`\n\n'
        "Plane geometry: circles and areas.\n"
    )
    # contents link to each object's anchor
    assert "- class [`Circle`](#shapes.geometry.Circle): A circle given by its radius." in page
    assert "- function [`area_of`](#shapes.geometry.area_of): Sum the areas of the shapes." in page
    assert '<a id="shapes.geometry.Circle"></a>\n\n### `Circle`' in page
    assert "_secret" not in page
    assert "_helper" not in page
    assert '- <a id="shapes.geometry.PI_ISH"></a>`PI_ISH`: `float` = `3.14`' in page
    assert documented_names({"p.md": page}) >= {
        "shapes.geometry.Circle.diameter",
        "shapes.geometry.Circle.__lt__",
        "shapes.geometry.Circle.radius",
        "shapes.geometry.Shape.kind",
    }
    assert dead_links({"shapes.geometry.md": page}) == []


def test_module_page_signatures_and_decorators(modules: list[ModuleDoc]) -> None:
    page = render_module(by_name(modules, "shapes.geometry"))
    area_of = section(page, "### `area_of`")
    assert (
        "```python\n@registered('area')\ndef area_of(shapes: Iterable[Shape], /, scale: float = 1.0, *extra: Shape, "
        "precise: bool = False, **options: Any) -> float\n```"
    ) in area_of
    assert "Sum the areas of the shapes." in area_of
    assert "**Raises:**\n\n- `ValueError`: if ``scale`` is negative." in area_of

    circle = section(page, "### `Circle`")
    assert "```python\n@functools.total_ordering\nclass Circle(Shape):\n```" in circle
    assert "```pycon\n>>> Circle(1.5).diameter\n3.0\n```" in circle
    assert "**Parameters:**\n\n- `radius` (`float`): the radius, in metres." in circle
    assert "Members: [`sides`](#shapes.geometry.Circle.sides), " in circle
    assert (
        'Special members: <a id="shapes.geometry.Circle.__lt__"></a>`__lt__(self, other: Circle) -> bool`'
        in circle
    )
    diameter = section(page, "#### `Circle.diameter`")
    assert "```python\n@property\ndef diameter(self) -> float\n```" in diameter
    assert "*property*" in diameter
    assert "Twice the radius." in diameter
    assert "*static method*" in section(page, "#### `Circle.unit`")
    assert "*class method*" in section(page, "#### `Circle.from_diameter`")
    fetch = section(page, "#### `Circle.fetch`")
    assert "async def fetch(self, *, timeout: float | None = None) -> bytes" in fetch
    assert "*coroutine function*" in fetch
    assert "*No docstring.*" in section(page, "### `undocumented`")


def test_package_page_lists_reexports_with_links_and_submodules(modules: list[ModuleDoc]) -> None:
    page = render_module(by_name(modules, "shapes"), [m.name for m in modules])
    assert (
        '- <a id="shapes.Circle"></a>[`Circle`](shapes.geometry.md#shapes.geometry.Circle), '
        "class `shapes.geometry.Circle`: A circle given by its radius."
    ) in page
    assert "- [`shapes.solids`](shapes.solids.md)" in section(page, "## Submodules")
    pages = {module_filename(m): render_module(m, [x.name for x in modules]) for m in modules}
    assert dead_links(pages) == []


def test_module_without_anything_public() -> None:
    page = render_module(ModuleDoc(name="empty", path="empty.py", docstring=None))
    assert "*This module has no docstring.*" in page
    assert "*No public classes, functions or attributes.*" in page


def test_rendering_is_deterministic(modules: list[ModuleDoc]) -> None:
    assert [render_module(m) for m in modules] == [render_module(m) for m in modules]


# --------------------------------------------------------------------------- index


def test_index_links_every_module(modules: list[ModuleDoc]) -> None:
    index = render_index("shapes", modules)
    assert index.startswith("# `shapes` API reference\n\nShapes: a fixture package")
    for module in modules:
        assert f"[`{module.name}`]({module_filename(module)})" in index
    assert (
        "| [`shapes.geometry`](shapes.geometry.md) | Plane geometry: circles and areas. | 2 | 3 | 2 |"
        in index
    )
    assert "## Test status" not in index


def test_index_with_test_reports(modules: list[ModuleDoc]) -> None:
    report = ArtifactInfo("unit", "test_report", "x", "reports/unit.xml", {"passed": 9, "failed": 1})
    index = render_index("shapes", modules, [report])
    assert "## Test status\n\n- `unit`: 9 passed, 1 failed, 0 skipped, 0 errors (`reports/unit.xml`)" in index


# --------------------------------------------------------------------------- tutorial


def test_examples_come_from_docstrings_in_source_order(modules: list[ModuleDoc]) -> None:
    examples = collect_examples(modules)
    assert [e.source for e in examples] == ["shapes", "shapes.geometry.Circle", "shapes.solids.cube.volume"]
    assert examples[2].lines == (">>> volume(2)", "8")


def test_tutorial_content(modules: list[ModuleDoc]) -> None:
    page = render_tutorial("shapes", modules, api_docs="api/index.md")
    assert page.startswith("# Getting started with `shapes`\n\nShapes: a fixture package")
    modules_part = section(page, "## Modules")
    assert "- `shapes.geometry`: Plane geometry: circles and areas." in modules_part
    assert "- `shapes.solids.cube`: Cubes." in modules_part
    functions = section(page, "## Functions")
    assert "- `volume(side: float) -> float`: The volume of a cube with edge ``side``." in functions
    assert "- class `Circle`: A circle given by its radius." in functions
    assert "- `undocumented(a, b=2, *, c)`" in functions
    assert "These are importable straight from `shapes`: `Circle`, `Unit`, `area_of`." in page
    usage = section(page, "## Usage")
    # the package docstring's example is shown at the top already; the others get the import they need
    assert usage.count("```pycon") == 2
    assert "```pycon\n>>> from shapes.solids.cube import volume\n>>> volume(2)\n8\n```" in usage
    assert ">>> from shapes.geometry import Circle\n>>> Circle(1.5).diameter\n3.0" in usage
    assert "[API reference](api/index.md)" in page


def test_tutorial_without_examples(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text('"""Pkg."""\n')
    (tmp_path / "pkg" / "core.py").write_text('def alpha(x: int) -> int:\n    """Alpha."""\n    return x\n')
    modules = extracted(tmp_path / "pkg")
    page = render_tutorial("pkg", modules)
    assert "The docstrings carry no `>>>` examples" in page
    assert "```python\nfrom pkg.core import alpha\n```" in page
    assert "API reference" not in page


# --------------------------------------------------------------------------- report


def test_report_page() -> None:
    artifacts = [
        ArtifactInfo(
            "unit", "test_report", "d", "reports/unit.xml", {"passed": 12, "failed": 0, "skipped": 1}
        ),
        ArtifactInfo(
            "legacy",
            "test_report",
            "d",
            "reports/legacy.xml",
            {"passed": 2, "failed": 1, "failures": [{"id": "t.py::test_x", "message": "assert 2 == 3"}]},
        ),
        ArtifactInfo("build", "docker_image", "image demo:1", "demo:1"),
        ArtifactInfo("docs", "api_docs", "API reference", "docs/api/", link="api/"),
    ]
    page = render_report("Results", artifacts)
    assert page.startswith("# Results\n\n## Tests\n")
    assert "| `unit` | 12 | 0 | 1 | 0 | `reports/unit.xml` |" in page
    assert "Failing in `legacy`:\n\n- `t.py::test_x`: assert 2 == 3" in page
    assert "- `docker_image` from `build` at `demo:1`: image demo:1" in page
    assert "- `api_docs` from `docs` at [`docs/api/`](api/): API reference" in page
