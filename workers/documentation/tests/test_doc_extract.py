"""What griffe's static analysis, turned into the worker's model, finds in real source (never importing it).

`shapes` is the classic fixture; `patterns` reproduces what issue 25 saw go wrong on real
packages: more-itertools' names defined under `if`/`try` and re-exported by wildcards,
a class re-exported from a module whose `__all__` leaves it out, attrs' objects defined in
a private module, toolz's tests inside the package, `.pyi` stubs, docstring styles.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from doc_model import FIXTURES, by_name, extracted

from documentation_worker.apidoc import ModuleDoc, SourceError
from documentation_worker.extract import Collector
from documentation_worker.sources import discover_modules

SHAPES = FIXTURES / "shapes"
PATTERNS = FIXTURES / "patterns"


def signature_of(source: str) -> str:
    collector = Collector()
    collector.add("m", "m.py", source.encode())
    [module] = collector.finish(include_private=True)
    [fn] = module.functions
    return fn.signature


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(): pass", "()"),
        ("def f(a, b=1): pass", "(a, b=1)"),
        ("def f(a: int, b: str = 'x') -> None: pass", "(a: int, b: str = 'x') -> None"),
        ("def f(a, /, b): pass", "(a, /, b)"),
        ("def f(a=1, /, b=2, *, c, d=3): pass", "(a=1, /, b=2, *, c, d=3)"),
        (
            "def f(*args: int, **kwargs: 'Any') -> 'X': pass",
            "(*args: int, **kwargs: Any) -> X",
        ),  # strings read
        ("def f(a, *rest, key: bool = False, **kw): pass", "(a, *rest, key: bool = False, **kw)"),
        (
            "def f(x: list[dict[str, int | None]] = []) -> tuple[int, ...]: pass",
            "(x: list[dict[str, int | None]] = []) -> tuple[int, ...]",
        ),
        (
            "async def f(self, *, timeout: float | None = None) -> bytes: pass",
            "(self, *, timeout: float | None = None) -> bytes",
        ),
    ],
)
def test_signatures(source: str, expected: str) -> None:
    assert signature_of(source) == expected


@pytest.mark.parametrize(
    "params",
    ["a, b=1, /, c=2, *args, d, e=3, **kw", "a, /", "*, only", "x=None, *ys", "p, q=(1, 2), **rest"],
)
def test_signatures_match_inspect_for_unannotated_code(params: str) -> None:
    # Annotations aside, Python's own rendering of a signature is the reference.
    source = f"def f({params}): pass"
    namespace: dict[str, object] = {}
    exec(compile(source, "<test>", "exec"), namespace)  # test code of our own, not the target's
    assert signature_of(source) == str(inspect.signature(namespace["f"]))  # type: ignore[arg-type]


def test_discover_modules_names_and_order() -> None:
    assert [name for name, _ in discover_modules(SHAPES)] == [
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
def shapes() -> list[ModuleDoc]:
    return extracted(SHAPES)


@pytest.fixture(scope="module")
def patterns() -> list[ModuleDoc]:
    return extracted(PATTERNS)


def test_module_docstring_and_path(shapes: list[ModuleDoc]) -> None:
    geometry = by_name(shapes, "shapes.geometry")
    assert geometry.docstring == "Plane geometry: circles and areas."
    assert geometry.path == "shapes/geometry.py"
    assert not geometry.is_package
    assert by_name(shapes, "shapes").is_package


def test_public_functions_with_signature_decorators_and_sections(shapes: list[ModuleDoc]) -> None:
    geometry = by_name(shapes, "shapes.geometry")
    assert [f.name for f in geometry.functions] == ["registered", "area_of", "undocumented"]
    area_of = geometry.functions[1]
    assert area_of.path == "shapes.geometry.area_of"
    assert area_of.signature == (
        "(shapes: Iterable[Shape], /, scale: float = 1.0, *extra: Shape, precise: bool = False, "
        "**options: Any) -> float"
    )
    assert area_of.decorators == ("registered('area')",)
    assert next((s.kind, s.text) for s in area_of.sections) == ("text", "Sum the areas of the shapes.")
    raises = next(s for s in area_of.sections if s.kind == "raises")
    assert [(i.annotation, i.description) for i in raises.items] == [
        ("ValueError", "if ``scale`` is negative.")
    ]
    returns = next(s for s in area_of.sections if s.kind == "returns")
    assert returns.items[0].annotation == "float"  # from the signature: the docstring gave none
    lines = (SHAPES / "geometry.py").read_text().splitlines()
    assert area_of.lineno == 1 + next(
        i for i, line in enumerate(lines) if line.startswith('@registered("area")')
    )


def test_classes_bases_decorators_members_and_kinds(shapes: list[ModuleDoc]) -> None:
    geometry = by_name(shapes, "shapes.geometry")
    assert [c.name for c in geometry.classes] == ["Shape", "Circle"]
    circle = geometry.classes[1]
    assert circle.bases == ("Shape",)
    assert circle.decorators == ("functools.total_ordering",)
    params = next(s for s in circle.sections if s.kind == "parameters")
    assert [(i.name, i.annotation) for i in params.items] == [("radius", "float"), ("label", "str")]
    kinds = {m.name: m.kind for m in circle.methods}
    assert kinds == {
        "__init__": "",
        "diameter": "property",
        "unit": "staticmethod",
        "from_diameter": "classmethod",
        "fetch": "async",
        "area": "",
    }  # _secret is private; __lt__ has no docstring: listed as a special member only
    assert [m.name for m in circle.special_methods] == ["__lt__"]
    assert next(m for m in circle.methods if m.name == "from_diameter").signature == (
        "(cls, diameter: float, /) -> Circle"
    )
    # class attributes and the instance attributes __init__ sets
    assert [(a.name, a.value) for a in circle.attributes] == [
        ("sides", "0"),
        ("radius", "radius"),
        ("label", "label"),
    ]
    assert [(a.name, a.annotation) for a in geometry.classes[0].attributes] == [("kind", "str")]
    assert [(v.name, v.annotation, v.value) for v in geometry.variables] == [
        ("PI_ISH", "float", "3.14"),
        ("DEFAULT_NAMES", None, "('circle', 'square')"),
    ]


def test_dunder_all_decides_what_is_public_and_reexports_link_to_their_definition(
    shapes: list[ModuleDoc],
) -> None:
    package = by_name(shapes, "shapes")
    assert package.all_names == ("VERSION", "Circle", "Unit", "area_of")
    assert [v.name for v in package.variables] == ["VERSION"]  # _HIDDEN is not in __all__
    assert [(r.name, r.kind, r.page, r.anchor) for r in package.reexports] == [
        ("Circle", "class", "shapes.geometry.md", "shapes.geometry.Circle"),
        ("Unit", "class", "shapes.units.md", "shapes.units.Unit"),
        ("area_of", "function", "shapes.geometry.md", "shapes.geometry.area_of"),
    ]  # in __all__'s order
    assert package.submodules == ("shapes.geometry", "shapes.side_effects", "shapes.solids", "shapes.units")


def test_parsing_never_imports_the_code(shapes: list[ModuleDoc]) -> None:
    # side_effects.py raises SystemExit when imported; analysing it is fine.
    assert [f.name for f in by_name(shapes, "shapes.side_effects").functions] == ["still_documented"]
    assert "shapes.side_effects" not in sys.modules


# --------------------------------------------------------------------------- issue 25's patterns


def test_names_defined_under_if_and_try_are_found_with_the_docstring_copied_to_them(
    patterns: list[ModuleDoc],
) -> None:
    recipes = by_name(patterns, "patterns.recipes")
    functions = {f.name: f for f in recipes.functions}
    assert sorted(functions) == ["batched", "flatten", "pairwise", "take"]
    assert functions["batched"].docstring is not None
    assert functions["batched"].docstring.startswith("Batch data into tuples of length *n*.")
    assert functions["pairwise"].docstring == "Return successive overlapping pairs taken from *iterable*."
    # `flatten = _flatten`: documented as the function it names, under its public name
    assert functions["flatten"].signature == "(nested)"
    assert functions["flatten"].origin == "patterns.recipes._flatten"


def test_wildcard_reexports_fill_the_package_page(patterns: list[ModuleDoc]) -> None:
    package = by_name(patterns, "patterns")
    linked = {r.name: (r.page, r.anchor) for r in package.reexports}
    assert linked["batched"] == ("patterns.recipes.md", "patterns.recipes.batched")
    assert linked["chunked"] == ("patterns.more.md", "patterns.more.chunked")
    assert linked["google_style"] == ("patterns.styles.md", "patterns.styles.google_style")  # `x as x`
    assert [v.name for v in package.variables] == ["__version__"]
    assert package.public_count == 9  # 7 re-exports, the class below, __version__


def test_a_class_its_own_module_does_not_export_is_documented_where_it_is_exported(
    patterns: list[ModuleDoc],
) -> None:
    # UnequalError is defined in recipes (not in its __all__), exported by more and by the package:
    # documented in full once, on the package page, and linked from more's.
    assert "UnequalError" not in [c.name for c in by_name(patterns, "patterns.recipes").classes]
    package = by_name(patterns, "patterns")
    [error] = package.classes
    assert (error.path, error.origin) == ("patterns.UnequalError", "patterns.recipes.UnequalError")
    [reexport] = by_name(patterns, "patterns.more").reexports
    assert (reexport.page, reexport.anchor) == ("patterns.md", "patterns.UnequalError")


def test_objects_of_a_private_module_are_documented_where_a_public_one_exports_them(
    patterns: list[ModuleDoc],
) -> None:
    assert not by_name(patterns, "patterns._impl").documented
    api = by_name(patterns, "patterns.api")
    [engine] = api.classes
    assert (engine.path, engine.origin) == ("patterns.api.Engine", "patterns._impl.Engine")
    assert [m.path for m in engine.methods] == ["patterns.api.Engine.run"]
    assert [f.signature for f in api.functions] == ["(name: str) -> Engine"]


def test_stubs_give_their_annotations(patterns: list[ModuleDoc]) -> None:
    more = by_name(patterns, "patterns.more")
    assert [f.signature for f in more.functions] == ["(iterable: Iterable[_T], n: int) -> list[list[_T]]"]
    window = more.classes[0]
    assert [(m.name, m.signature) for m in window.methods] == [
        ("__init__", "(self, size: int) -> None"),
        ("push", "(self, item: object) -> None"),
    ]
    assert [(m.name, m.signature) for m in window.special_methods] == [("__len__", "(self) -> int")]


@pytest.mark.parametrize("style", ["google_style", "numpy_style", "sphinx_style"])
def test_docstring_styles_are_parsed_into_sections(patterns: list[ModuleDoc], style: str) -> None:
    fn = next(f for f in by_name(patterns, "patterns.styles").functions if f.name == style)
    sections = {s.kind: s for s in fn.sections}
    assert [(i.name, i.annotation, i.description) for i in sections["parameters"].items] == [
        ("a", "int", "the count." if style != "numpy_style" else "The count."),
        ("b", "str", "the label." if style != "numpy_style" else "The label."),
    ]
    assert sections["returns"].items[0].annotation == "bool"


def test_overloads_and_dataclasses(patterns: list[ModuleDoc]) -> None:
    styles = by_name(patterns, "patterns.styles")
    parse = next(f for f in styles.functions if f.name == "parse")
    assert parse.overloads == ("(x: int) -> int", "(x: str) -> str")
    [point] = styles.classes
    assert [(m.name, m.signature) for m in point.methods] == [
        ("__init__", "(self, x: int, y: int = 0) -> None")
    ]


def test_tests_and_private_modules_are_left_out_unless_asked(tmp_path: Path) -> None:
    default = extracted(PATTERNS)
    assert [m.name for m in default if m.documented] == [
        "patterns",
        "patterns.api",
        "patterns.more",
        "patterns.recipes",
        "patterns.styles",
    ]
    everything = extracted(PATTERNS, include_private=True, include_tests=True)
    assert [m.name for m in everything if m.documented] == [
        "patterns",
        "patterns._impl",
        "patterns.api",
        "patterns.conftest",
        "patterns.more",
        "patterns.recipes",
        "patterns.styles",
        "patterns.tests",
        "patterns.tests.test_more",
    ]
    recipes = by_name(everything, "patterns.recipes")
    assert "_batched" in [f.name for f in recipes.functions]  # private names too


# --------------------------------------------------------------------------- bad input


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(SourceError) as info:
        Collector().add("broken", "pkg/broken.py", b'"""Fine so far."""\n\n\ndef broken(:\n    pass\n')
    assert (info.value.path, info.value.line) == ("pkg/broken.py", 4)
    assert str(info.value).startswith("pkg/broken.py, line 4: syntax error")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"x = 1\n\x00\n", "null bytes"),
        (b"# coding: ascii\nx = '\xe9'\n", "cannot decode"),
        (b"# coding: no-such-codec\nx = 1\n", "cannot decode"),
    ],
)
def test_null_bytes_and_bad_encodings_are_source_errors(content: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        Collector().add("m", "m.py", content)


def test_a_declared_encoding_is_honoured() -> None:
    collector = Collector()
    collector.add("m", "m.py", "# coding: latin-1\ndef f():\n    '''Caf\xe9.'''\n".encode("latin-1"))
    [module] = collector.finish(include_private=False)
    assert module.functions[0].docstring == "Caf\xe9."
