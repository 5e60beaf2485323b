"""The documentation specialist: API references, getting-started pages and reports.

Task payloads (paths relative to the workspace; a default `output` is inside the project
`path` is in, e.g. ``app/docs/api/`` for ``path: app/src/pkg``):

- ``{"path": "demo-project/calc", "output": "docs/api/"}`` (``kind`` ``api``, the default):
  one Markdown page per module plus ``index.md``; logs an ``api_docs`` artifact.
- ``{"kind": "tutorial", "path": "demo-project/calc", "output": "docs/getting-started.md"}``:
  a getting-started page built from the source; logs a ``tutorial`` artifact.
- ``{"kind": "report", "output": "docs/report.md", "title": "..."}``: a page summarising
  the artifacts of the tasks this one depends on (test counts, images, ...).

The target code is parsed with :mod:`ast`, never imported or run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from documentation_worker.apidoc import ModuleDoc, SourceError
from documentation_worker.limits import DocsLimits, load_limits
from documentation_worker.parsing import ParserProcess
from documentation_worker.payload import DocsPayload
from documentation_worker.render import (
    ArtifactInfo,
    collect_examples,
    module_filename,
    render_index,
    render_module,
    render_report,
    render_tutorial,
)
from documentation_worker.safefs import UnsafePath, is_file_in, opened_dir, write_file
from documentation_worker.sources import Found, TooMuch, read_package
from pm_worker import (
    Assignment,
    SettingsError,
    TaskBlocked,
    TaskContext,
    TaskReleased,
    Worker,
    WorkerSettings,
    run,
)
from pm_worker.clip import clip

#: Bytes of file names an artifact or a checkpoint lists (the stub stores at most 256 KiB of either).
LIST_BUDGET = 64 * 1024


class DocumentationWorker(Worker):
    """Writes Markdown documentation for Python packages found in the workspace."""

    role = "documentation"
    name = "Documentation Worker"
    skills = ("documentation", "markdown", "api-docs", "tutorials")
    payload_model = DocsPayload

    def __init__(self, settings: WorkerSettings | None = None, limits: DocsLimits | None = None) -> None:
        super().__init__(settings)
        self.limits = limits or load_limits()

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        spec: DocsPayload = ctx.payload
        if spec.kind == "tutorial":
            return await self.tutorial(task, ctx, spec)
        if spec.kind == "report":
            return await self.report(task, ctx, spec)
        return await self.api_reference(task, ctx, spec)

    # -- API reference -------------------------------------------------------------

    async def api_reference(self, task: Assignment, ctx: TaskContext, spec: DocsPayload) -> str:
        source_rel, output_rel = spec.path, spec.output or ctx.in_project(spec.path, spec.output_path)
        source = ctx.resolve(source_rel)
        out_dir = ctx.resolve(output_rel, must_exist=False)
        if out_dir.exists() and not out_dir.is_dir():
            raise TaskBlocked(
                f"payload.output {output_rel!r} is a file; the API reference needs a folder",
                severity="medium",
            )

        await ctx.progress(5, f"Analysing {source_rel}")
        modules, found = await self.analyse(ctx, source)
        package = package_name(source, modules)
        classes = sum(len(m.classes) for m in modules)
        functions = sum(len(m.functions) for m in modules)
        await ctx.progress(
            30,
            f"Analysed {len(modules)} modules of {package}: {classes} classes, {functions} functions"
            + skipped_note(found),
        )

        test_reports = [a for a in await dependency_artifacts(ctx) if a.artifact_type == "test_report"]
        pages, index = await asyncio.to_thread(render_pages, package, modules, test_reports)
        await ctx.progress(40, f"Generated {len(pages)} module pages and the index")

        with output_folder(ctx, out_dir, output_rel) as out_fd:  # opened once: a later swap changes nothing
            done = resumed_pages(task.checkpoint, "api", output_rel, out_fd)
            if done:
                ctx.log.info("resuming from checkpoint", already_written=sorted(done)[:50], count=len(done))
            written = 0
            for number, module in enumerate(modules, start=1):
                filename = module_filename(module)
                if filename in done:
                    continue
                if ctx.stopping:
                    await self._stop_with_checkpoint(ctx, "api", output_rel, done)
                await write_page(out_fd, filename, pages[filename], output_rel)
                done.add(filename)
                written += 1
                ctx.last_progress = 40 + 55 * number / len(modules)
                await ctx.checkpoint(
                    pages_checkpoint("api", output_rel, done),
                    message=f"Writing pages: {number}/{len(modules)} ({filename})",
                )
            await write_page(out_fd, "index.md", index, output_rel)

        location = ctx.relative(out_dir).rstrip("/") + "/"
        await ctx.artifact(
            "api_docs",
            f"API reference for {package}: {len(modules)} module pages and index.md",
            location=location,
            data={
                "package": package,
                "source": ctx.relative(source),
                "index": ctx.relative(out_dir / "index.md"),
                **listed("pages", [ctx.relative(out_dir / module_filename(m)) for m in modules]),
                "modules": len(modules),
                "classes": classes,
                "functions": functions,
            },
        )
        resumed = len(modules) - written
        tail = f" ({resumed} kept from an earlier attempt)" if resumed else ""
        return (
            f"Wrote the API reference for {package} to {location}: {len(modules)} module pages "
            f"({classes} classes, {functions} functions) and index.md{tail}{skipped_note(found)}"
        )

    # -- tutorial --------------------------------------------------------------------

    async def tutorial(self, task: Assignment, ctx: TaskContext, spec: DocsPayload) -> str:
        source_rel, output_rel = spec.path, spec.output or ctx.in_project(spec.path, spec.output_path)
        source = ctx.resolve(source_rel)
        output = _markdown_file(ctx, output_rel)

        await ctx.progress(10, f"Analysing {source_rel}")
        modules, found = await self.analyse(ctx, source)
        package = package_name(source, modules)
        examples = collect_examples(modules)
        await ctx.progress(
            40, f"Generating the getting-started page for {package} ({len(examples)} examples)"
        )

        api_link = self._api_link(task, ctx, spec, output, await dependency_artifacts(ctx))
        text = render_tutorial(package, modules, api_docs=api_link)
        await ctx.progress(70, f"Writing {output_rel}")
        await write_markdown(ctx, output, output_rel, text)

        functions = sum(len(m.functions) for m in modules)
        await ctx.artifact(
            "tutorial",
            f"Getting-started page for {package}",
            location=ctx.relative(output),
            data={
                "package": package,
                "modules": len(modules),
                "functions": functions,
                "examples": len(examples),
                "api_docs": api_link,
            },
        )
        return (
            f"Wrote a getting-started page for {package} to {ctx.relative(output)}: {len(modules)} modules, "
            f"{functions} functions, {len(examples)} usage examples from docstrings{skipped_note(found)}"
        )

    @staticmethod
    def _api_link(
        task: Assignment, ctx: TaskContext, spec: DocsPayload, output: Path, artifacts: Sequence[ArtifactInfo]
    ) -> str | None:
        """A relative link from the tutorial to the API index: ``payload.api_docs`` or an ``api_docs`` artifact."""
        target: Any = spec.api_docs
        if target is None:
            for artifact in artifacts:
                if artifact.artifact_type == "api_docs":
                    data = artifact.data if isinstance(artifact.data, dict) else {}
                    target = data.get("index") or artifact.location
                    break
        if not isinstance(target, str) or not target:
            return None
        path = ctx.resolve(target, must_exist=False)
        if path.is_dir() or target.endswith("/"):
            path = path / "index.md"
        return Path(os.path.relpath(path, output.parent)).as_posix()

    # -- report ----------------------------------------------------------------------

    async def report(self, task: Assignment, ctx: TaskContext, spec: DocsPayload) -> str:
        output_rel = spec.output or ctx.in_project(spec.path, spec.output_path)
        title = spec.title or f"Report: {task.task_name}"
        output = _markdown_file(ctx, output_rel)
        artifacts = [replace(a, link=_link(ctx, a.location, output)) for a in await dependency_artifacts(ctx)]
        if not artifacts:
            deps = ", ".join(task.dependencies) or "none"
            raise TaskBlocked(
                f"task {task.task_id}: nothing to report, no artifacts from its dependencies ({deps}); "
                "make it depend on the test/build tasks whose results it should summarise",
                severity="medium",
            )
        await ctx.progress(
            30, f"Summarising {len(artifacts)} artifacts from {len({a.task_id for a in artifacts})} tasks"
        )
        await write_markdown(ctx, output, output_rel, render_report(title, artifacts))
        tests = [a for a in artifacts if a.artifact_type == "test_report"]
        await ctx.artifact(
            "report",
            title,
            location=ctx.relative(output),
            data={
                "artifacts": len(artifacts),
                "test_reports": len(tests),
                "from_tasks": sorted({a.task_id for a in artifacts}),
            },
        )
        return f"Wrote {ctx.relative(output)} from {len(artifacts)} artifacts ({len(tests)} test reports)"

    # -- shared ----------------------------------------------------------------------

    async def analyse(self, ctx: TaskContext, source: Path) -> tuple[list[ModuleDoc], Found]:
        """Read every module under ``source`` (bounded, nothing from outside the workspace) and
        parse it in the parser child; a problem becomes a blocker naming the file."""
        try:
            found = await asyncio.to_thread(read_package, ctx.workspace, source, self.limits)
        except (TooMuch, UnsafePath) as exc:
            raise TaskBlocked(clip(str(exc), 2000), severity="high") from None
        if found.skipped:
            ctx.log.warning("not read", skipped=found.skipped[:50], count=len(found.skipped))
        if not found.sources:
            raise TaskBlocked(f"no Python modules found in {ctx.relative(source)}", severity="medium")
        where = PurePosixPath(ctx.relative(source.parent))
        modules: list[ModuleDoc] = []
        async with ParserProcess(
            timeout=self.limits.parse_timeout_seconds, memory_mb=self.limits.parse_memory_mb
        ) as parser:
            for module in found.sources:
                try:
                    modules.append(await parser.parse(module))
                except SourceError as exc:
                    line = f", line {exc.line}" if exc.line else ""
                    raise TaskBlocked(
                        f"{clip(str(where / exc.path), 1000)}{line}: {clip(exc.problem, 1000)}; "
                        "fix the file, then resolve this blocker",
                        severity="high",
                    ) from None
        return modules, found

    @staticmethod
    async def _stop_with_checkpoint(ctx: TaskContext, kind: str, output: str, done: set[str]) -> None:
        """Shutdown asked for: save what is written and give the task back with that checkpoint."""
        await ctx.checkpoint(
            pages_checkpoint(kind, output, done),
            message=f"stopping: {len(done)} pages written, releasing the task",
        )
        raise TaskReleased("worker stopping; task released with its checkpoint")


def _link(ctx: TaskContext, location: str | None, page: Path) -> str | None:
    """``location`` relative to ``page`` if it names something in the workspace, else None."""
    if not location:
        return None
    try:
        target = ctx.resolve(location)
    except TaskBlocked:  # an image tag, a URL, a path that is gone: not a link
        return None
    link = Path(os.path.relpath(target, page.parent)).as_posix()
    return link + "/" if target.is_dir() else link


def _markdown_file(ctx: TaskContext, output_rel: str) -> Path:
    output = ctx.resolve(output_rel, must_exist=False)
    if not output_rel.endswith(".md") or output.is_dir():
        raise TaskBlocked(f"payload.output {output_rel!r} must name a .md file", severity="medium")
    return output


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def package_name(source: Path, modules: Sequence[ModuleDoc]) -> str:
    """The documented package's name: the folder's name for a package, else the file or folder name."""
    if source.is_file():
        return source.stem
    return modules[0].name.split(".")[0] if (source / "__init__.py").is_file() else source.name


def resumed_pages(checkpoint: Any, kind: str, output: str, out_fd: int) -> set[str]:
    """Pages an earlier attempt wrote (per its checkpoint) that are still in the output folder."""
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("kind") != kind
        or checkpoint.get("output") != output
    ):
        return set()
    written = checkpoint.get("written")
    if not isinstance(written, list):
        return set()
    return {name for name in written if isinstance(name, str) and is_file_in(out_fd, name)}


def pages_checkpoint(kind: str, output: str, done: set[str]) -> dict[str, Any]:
    """The checkpoint after a page: the pages written so far, as many as fit in its budget.

    A resumed task rewrites the pages not listed (``not_listed`` counts them): cheap, and the
    checkpoint never grows past what the stub stores."""
    data: dict[str, Any] = {"kind": kind, "output": output, **listed("written", sorted(done))}
    if "written_not_listed" in data:
        data["not_listed"] = data.pop("written_not_listed")
    return data


def listed(key: str, names: list[str], budget: int = LIST_BUDGET) -> dict[str, Any]:
    """``{key: names}``, cut to ``budget`` bytes of names, with ``{key}_not_listed`` counting the rest."""
    kept, size = [], 0
    for name in names:
        size += len(name.encode()) + 3
        if size > budget:
            break
        kept.append(name)
    data: dict[str, Any] = {key: kept}
    if len(kept) < len(names):
        data[f"{key}_not_listed"] = len(names) - len(kept)
    return data


# The artifact types whose data a page reads (test counts and failures, the API index).
DATA_READ = frozenset({"test_report", "api_docs"})


async def dependency_artifacts(ctx: TaskContext) -> list[ArtifactInfo]:
    """Every artifact of the tasks this one depends on, with the data of the types pages read
    (fetched when the assignment carried only its metadata, as it does for big data)."""
    return [
        ArtifactInfo(
            task_id=a.task_id or "?",
            artifact_type=a.artifact_type,
            description=a.description,
            location=a.location,
            data=await ctx.artifact_data(a) if a.artifact_type in DATA_READ else a.data,
        )
        for a in await ctx.dependency_artifacts()
    ]


def render_pages(
    package: str, modules: list[ModuleDoc], test_reports: list[ArtifactInfo]
) -> tuple[dict[str, str], str]:
    """Every module page by file name, and the index (run in a thread: thousands of modules take a while)."""
    known = [m.name for m in modules]
    pages = {module_filename(m): render_module(m, known) for m in modules}
    return pages, render_index(package, modules, test_reports)


@contextlib.contextmanager
def output_folder(ctx: TaskContext, folder: Path, shown: str) -> Iterator[int]:
    """A handle on the checked output folder (made if missing), every component opened without following links."""
    try:
        with opened_dir(ctx.workspace, folder.relative_to(ctx.workspace), create=True) as fd:
            yield fd
    except UnsafePath as exc:
        raise TaskBlocked(
            f"payload.output {shown!r}: {exc}; give a folder inside the workspace", "high"
        ) from None


async def write_page(folder_fd: int, name: str, text: str, shown: str) -> None:
    """Write one page in the output folder; a failure is a blocker naming it."""
    try:
        await asyncio.to_thread(write_file, folder_fd, name, text)
    except (OSError, UnsafePath) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TaskBlocked(f"cannot write {name} in {shown}: {reason}", "high") from None


async def write_markdown(ctx: TaskContext, output: Path, shown: str, text: str) -> None:
    """Write a single-page output (tutorial, report) through a handle on its folder."""
    with output_folder(ctx, output.parent, str(PurePosixPath(shown).parent)) as fd:
        await write_page(fd, output.name, text, shown)


def skipped_note(found: Found, shown: int = 5) -> str:
    """`` (not read: a/b (a link to a folder: never followed); ...)`` or ``""``, at most ~2,000 characters."""
    if not found.skipped:
        return ""
    listed = "; ".join(clip(entry, 300) for entry in found.skipped[:shown])
    more = f"; and {len(found.skipped) - shown} more" if len(found.skipped) > shown else ""
    return f" (not read: {listed}{more})"


def main() -> None:
    """`python -m documentation_worker`: the DOCS_* limits first (one line and exit 2 if bad), then `pm_worker.run`."""
    if not {"--check", "-h", "--help"} & set(sys.argv[1:]):
        try:
            load_limits()
        except SettingsError as exc:
            print(f"python -m documentation_worker: {exc}", file=sys.stderr)
            sys.exit(2)
    run(DocumentationWorker)
