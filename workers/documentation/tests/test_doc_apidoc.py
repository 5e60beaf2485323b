"""The ast model: what it extracts from real source, without importing it."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest

from documentation_worker.apidoc import (
    ModuleDoc,
    SourceError,
    format_signature,
    parse_module,
)
from documentation_worker.sources import discover_modules

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHAPES = FIXTURES / "shapes"


def signature_of(source: str) -> str:
    node = ast.parse(source).body[0]
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    return format_signature(node.args, node.returns)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(): pass", "()"),
        ("def f(a, b=1): pass", "(a, b=1)"),
        ("def f(a: int, b: str = 'x') -> None: pass", "(a: int, b: str = 'x') -> None"),
        ("def f(a, /, b): pass", "(a, /, b)"),
        ("def f(a=1, /, b=2, *, c, d=3): pass", "(a=1, /, b=2, *, c, d=3)"),
        ("def f(*args: int, **kwargs: 'Any') -> 'X': pass", "(*args: int, **kwargs: 'Any') -> 'X'"),
        ("def f(a, *rest, key: bool = False, **kw): pass", "(a, *rest, key: bool = False, **kw)"),
        (
            "def f(x: list[dict[str, int | None]] = []) -> tuple[int, ...]: pass",
            "(x: list[dict[str, int | None]] = []) -> tuple[int, ...]",
        ),
        (
            "async def f(self, *, timeout: float | None = None) -> bytes: pass",
            "(self, *, timeout: float | None = None) -> bytes",
        ),
        ("def f(cb=lambda x: x + 1, n=-1, s=('a', 'b')): pass", "(cb=lambda x: x + 1, n=-1, s=('a', 'b'))"),
    ],
)
def test_format_signature(source: str, expected: str) -> None:
    assert signature_of(source) == expected


@pytest.mark.parametrize(
    "params",
    ["a, b=1, /, c=2, *args, d, e=3, **kw", "a, /", "*, only", "x=None, *ys", "p, q=(1, 2), **rest"],
)
def test_format_signature_matches_inspect_for_unannotated_code(params: str) -> None:
    # Annotations aside, Python's own rendering of a signature is the reference.
    source = f"def f({params}): pass"
    namespace: dict[str, object] = {}
    exec(compile(source, "<test>", "exec"), namespace)  # test code of our own, not the target's
    assert signature_of(source) == str(inspect.signature(namespace["f"]))  # type: ignore[arg-type]


def test_discover_modules_names_and_order() -> None:
    names = [name for name, _ in discover_modules(SHAPES)]
    assert names == [
        "shapes",
        "shapes.geometry",
        "shapes.side_effects",
        "shapes.solids",
        "shapes.solids.cube",
        "shapes.units",
    ]


def test_discover_single_file_and_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text("def run(): pass\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "junk.py").write_text("")
    assert [n for n, _ in discover_modules(tmp_path / "tool.py")] == ["tool"]
    assert [n for n, _ in discover_modules(tmp_path)] == ["tool"]


@pytest.fixture(scope="module")
def geometry() -> ModuleDoc:
    return parse_module("shapes.geometry", SHAPES / "geometry.py", display_path="shapes/geometry.py")


def test_module_docstring_and_path(geometry: ModuleDoc) -> None:
    assert geometry.docstring == "Plane geometry: circles and areas."
    assert geometry.summary == "Plane geometry: circles and areas."
    assert geometry.path == "shapes/geometry.py"
    assert not geometry.is_package


def test_public_functions_only(geometry: ModuleDoc) -> None:
    assert [f.name for f in geometry.functions] == ["registered", "area_of", "undocumented"]


def test_function_signature_decorators_docstring(geometry: ModuleDoc) -> None:
    area_of = next(f for f in geometry.functions if f.name == "area_of")
    assert area_of.signature == (
        "(shapes: Iterable[Shape], /, scale: float = 1.0, *extra: Shape, precise: bool = False, "
        "**options: Any) -> float"
    )
    assert area_of.decorators == ("registered('area')",)
    assert area_of.docstring is not None
    assert area_of.docstring.startswith("Sum the areas of the shapes.")
    lines = (SHAPES / "geometry.py").read_text().splitlines()
    assert area_of.lineno == 1 + next(i for i, line in enumerate(lines) if line.startswith("def area_of("))
    undocumented = next(f for f in geometry.functions if f.name == "undocumented")
    assert undocumented.signature == "(a, b=2, *, c)"
    assert undocumented.docstring is None


def test_classes_bases_decorators_and_methods(geometry: ModuleDoc) -> None:
    assert [c.name for c in geometry.classes] == ["Shape", "Circle"]
    circle = geometry.classes[1]
    assert circle.bases == ("Shape",)
    assert circle.decorators == ("functools.total_ordering",)
    assert circle.docstring is not None
    assert circle.docstring.startswith("A circle given by its radius.")
    # public methods plus __init__; other dunders and _private ones are left out
    assert [m.name for m in circle.methods] == [
        "__init__",
        "diameter",
        "unit",
        "from_diameter",
        "fetch",
        "area",
    ]
    kinds = {m.name: m.kind for m in circle.methods}
    assert kinds == {
        "__init__": "",
        "diameter": "property",
        "unit": "staticmethod",
        "from_diameter": "classmethod",
        "fetch": "async",
        "area": "",
    }
    from_diameter = next(m for m in circle.methods if m.name == "from_diameter")
    assert from_diameter.signature == "(cls, diameter: float, /) -> Circle"
    assert [(a.name, a.annotation, a.value) for a in circle.attributes] == [("sides", None, "0")]
    assert [(a.name, a.annotation) for a in geometry.classes[0].attributes] == [("kind", "ClassVar[str]")]


def test_module_attributes(geometry: ModuleDoc) -> None:
    assert [(v.name, v.annotation, v.value) for v in geometry.variables] == [
        ("PI_ISH", "float", "3.14"),
        ("DEFAULT_NAMES", None, "('circle', 'square')"),
    ]


def test_dunder_all_decides_what_is_public_and_reexports() -> None:
    package = parse_module("shapes", SHAPES / "__init__.py")
    assert package.is_package
    assert package.all_names == ("VERSION", "Circle", "Unit", "area_of")
    assert [v.name for v in package.variables] == ["VERSION"]  # _HIDDEN is not in __all__
    # relative imports resolved against the package, in __all__'s order
    assert package.reexports == (
        ("Circle", "shapes.geometry"),
        ("Unit", "shapes.units"),
        ("area_of", "shapes.geometry"),
    )


def test_parsing_never_imports_the_code() -> None:
    # side_effects.py raises SystemExit when imported; parsing it is fine.
    module = parse_module("shapes.side_effects", SHAPES / "side_effects.py")
    assert [f.name for f in module.functions] == ["still_documented"]
    assert "shapes.side_effects" not in sys.modules


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text('"""Fine so far."""\n\n\ndef ok() -> None:\n    pass\n\n\ndef broken(:\n    pass\n')
    with pytest.raises(SourceError) as info:
        parse_module("broken", bad, display_path="pkg/broken.py")
    assert info.value.path == "pkg/broken.py"
    assert info.value.line == 8
    assert str(info.value).startswith("pkg/broken.py, line 8: syntax error")


def test_null_bytes_and_bad_encoding_are_source_errors(tmp_path: Path) -> None:
    for name, content in (("nul.py", b"x = 1\n\x00\n"), ("latin.py", b"# coding: ascii\nx = '\xe9'\n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(SourceError):
            parse_module(name[:-3], path)


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        parse_module("gone", tmp_path / "gone.py")
