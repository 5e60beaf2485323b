"""`python -m bench.api_coverage [SPEC ...]`: the API reference's coverage against griffe on real packages.

Each SPEC (a PyPI requirement, default: attrs, click, rich and issue 25's more-itertools
10.5.0, toolz 1.0.0, python-dateutil 2.9.0.post0) is downloaded as its source
distribution (``pip download --no-deps --no-binary :all:``, the wheel if there is none),
unpacked into a scratch folder, and each of its import packages documented by the real
documentation worker (its parser child included) against the real stub, in memory. The
pages are then read back as Markdown and held to griffe loading the same folder from disk
(:func:`documentation_worker.coverage.griffe_public_names`): every public name griffe
lists must have its anchor on a page, and no internal link may lead nowhere.

Prints, per package: modules, public names griffe lists, how many of them the pages
document, what is missing by kind (``special``: a class's special members without a
docstring of their own, left out as pdoc does), dead links, test modules left out, and
the worker's seconds for the task (a busy-machine figure; nothing is asserted on time).
``--keep DIR`` keeps the scratch folder (sources and pages) to read.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from documentation_worker.coverage import dead_links, documented_names, griffe_public_names
from documentation_worker.worker import DocumentationWorker
from pm_worker.logs import configure_logging
from pm_worker.testing import StubKit

DEFAULT_SPECS = (
    "attrs",
    "click",
    "rich",
    "more-itertools==10.5.0",
    "toolz==1.0.0",
    "python-dateutil==2.9.0.post0",
)
#: Import packages a distribution ships, where the name is not the distribution's own.
IMPORT_NAMES = {"attrs": ["attr", "attrs"], "python-dateutil": ["dateutil"], "toolz": ["toolz", "tlz"]}


def pip() -> list[str]:
    """A pip to download with: this interpreter's, else the first on PATH."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise SystemExit("no pip found to download packages with (this interpreter has none, nor has PATH)")


def download(spec: str, into: Path) -> Path:
    """The unpacked distribution of ``spec``: its sdist, or its wheel when it publishes no sdist."""
    into.mkdir(parents=True, exist_ok=True)
    for how in (["--no-binary", ":all:"], ["--only-binary", ":all:"]):
        done = subprocess.run(
            [*pip(), "download", "--no-deps", *how, "--quiet", "-d", str(into), spec],
            capture_output=True,
            text=True,
            check=False,
        )
        archives = sorted(p for p in into.iterdir() if p.suffix in {".gz", ".whl", ".zip"})
        if done.returncode == 0 and archives:
            return unpack(archives[-1], into / "src")
    raise SystemExit(f"pip download {spec} failed: {done.stderr.strip()[-500:]}")


def unpack(archive: Path, into: Path) -> Path:
    if archive.suffix == ".gz":
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    else:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(into)
    return into


def find_package(root: Path, name: str) -> Path | None:
    """``name``'s folder (holding ``__init__.py``) in an unpacked distribution, shallowest first."""
    candidates = sorted(root.rglob(f"{name}/__init__.py"), key=lambda p: len(p.parts))
    return candidates[0].parent if candidates else None


async def document(kit: StubKit, source: Path, output: str) -> tuple[dict[str, Any], float]:
    """Run the worker on one task: (its context's essentials, seconds)."""
    started = time.monotonic()
    run = await kit.run(
        DocumentationWorker,
        tasks=[
            {
                "id": output.strip("/").replace("/", "-"),
                "name": f"API reference for {source.name}",
                "required_skills": ["documentation"],
                "payload": {"path": str(source.relative_to(kit.workspace)), "output": output},
            }
        ],
        timeout=1800,
    )
    seconds = time.monotonic() - started
    [context] = run.tasks.values()
    return {
        "status": context.task.status,
        "blockers": [b.description for b in context.blockers],
        "message": context.progress_log[-1].message if context.progress_log else "",
        "artifact": context.artifacts[0].data if context.artifacts else {},
    }, seconds


def measure(kit: StubKit, spec: str) -> dict[str, Any]:
    """Document the distribution's import packages in one task (their folder, as a src layout is
    documented), then hold the pages to griffe loading the same packages."""
    distribution = spec.split("==")[0].split(">")[0].split("<")[0].strip()
    unpacked = download(spec, kit.workspace / distribution)
    names = IMPORT_NAMES.get(distribution, [distribution.replace("-", "_")])
    folders = [find_package(unpacked, name) for name in names]
    if any(f is None for f in folders) or len({f.parent for f in folders if f}) != 1:
        return {
            "package": spec,
            "error": f"import packages {names} not found side by side in the distribution",
        }
    packages = [f for f in folders if f is not None]
    source = packages[0] if len(packages) == 1 else packages[0].parent
    if len(packages) > 1:  # only the packages: a src folder may hold more (tests, scripts)
        source = kit.workspace / distribution / "only" / "src"
        for folder in packages:
            shutil.copytree(folder, source / folder.name)
    result, seconds = asyncio.run(document(kit, source, f"site/{distribution}/"))
    if result["status"] != "done":
        return {"package": spec, "error": f"{result['status']}: {result['blockers']}"}
    pages = {p.name: p.read_text() for p in (kit.workspace / "site" / distribution).glob("*.md")}
    reference = griffe_public_names(packages[0].parent, names)
    ours = documented_names(pages)
    missing = {n: kind for n, kind in reference.items() if n not in ours}
    return {
        "package": f"{'+'.join(names)} ({spec})",
        "modules": len([n for n, k in reference.items() if k == "module"]),
        "pages": len(pages) - 1,
        "griffe": len(reference),
        "in_pages": len(reference) - len(missing),
        "missing": dict(Counter(missing.values())),
        "missing_examples": sorted(n for n, k in missing.items() if k != "special")[:10],
        "dead_links": dead_links(pages),
        "tests_left_out": result["artifact"].get("tests_left_out", 0),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS))
    parser.add_argument("--keep", type=Path, help="keep the sources and pages in this folder")
    args = parser.parse_args()
    configure_logging("console", "warning")  # the figures, not the worker's progress lines
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="api-coverage-"))
    scratch.mkdir(parents=True, exist_ok=True)
    kit = StubKit(scratch)
    print(
        f"{'package':<40} {'modules':>7} {'pages':>5} {'griffe':>6} {'in pages':>8} "
        f"{'missing (by kind)':<28} {'dead links':>10} {'tests out':>9} {'seconds':>7}"
    )
    try:
        for spec in args.specs:
            for row in [measure(kit, spec)]:
                if "error" in row:
                    print(f"{row['package']:<40} {row['error']}")
                    continue
                missing = ", ".join(f"{k} {v}" for k, v in sorted(row["missing"].items())) or "none"
                print(
                    f"{row['package']:<40} {row['modules']:>7} {row['pages']:>5} {row['griffe']:>6} "
                    f"{row['in_pages']:>8} {missing:<28} {len(row['dead_links']):>10} "
                    f"{row['tests_left_out']:>9} {row['seconds']:>7}"
                )
                for example in row["missing_examples"]:
                    print(f"    missing: {example}")
                for link in row["dead_links"][:10]:
                    print(f"    dead link: {link}")
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"sources and pages kept in {scratch}")


if __name__ == "__main__":
    main()
