"""The documentation specialist: API references, getting-started pages and reports.

Task payloads (paths relative to the workspace; a default `output` is inside the project
`path` is in, e.g. ``app/docs/api/pkg/`` for ``path: app/src/pkg``):

- ``{"path": "demo-project/calc", "output": "docs/api/"}`` (``kind`` ``api``, the default):
  one Markdown page per public module plus ``index.md``; logs an ``api_docs`` artifact.
  ``include_tests`` / ``include_private`` document the package's tests / private modules too.
- ``{"kind": "tutorial", "path": "demo-project/calc", "output": "docs/getting-started.md"}``:
  a getting-started page built from the source; logs a ``tutorial`` artifact.
- ``{"kind": "report", "output": "docs/report.md", "title": "..."}``: a page summarising
  the artifacts of the tasks this one depends on (test counts, images, ...).

The target code is analysed statically with griffe in a locked-down child process, never
imported or run (:mod:`documentation_worker.parsing`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from documentation_worker.apidoc import ModuleDoc, SourceError
from documentation_worker.limits import DocsLimits, load_limits
from documentation_worker.output import Manifest, folder_lock, read_manifest, remove_stale, write_manifest
from documentation_worker.parsing import ParserProcess, ParserUnavailable
from documentation_worker.payload import DocsPayload
from documentation_worker.render import module_filename, render_index, render_module
from documentation_worker.report import ArtifactInfo, render_report
from documentation_worker.safefs import UnsafePath
from documentation_worker.sources import Found, TooMuch, read_package
from documentation_worker.tutorial import collect_examples, render_tutorial
from documentation_worker.writing import (
    listed,
    output_folder,
    pages_checkpoint,
    resumed_pages,
    skipped_note,
    write_markdown,
    write_page,
)
from pm_worker import Assignment, SettingsError, TaskBlocked, TaskContext, Worker, WorkerSettings, run
from pm_worker.clip import clip


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
        source = ctx.resolve(spec.path)
        package = package_name(source)
        # The default is the package's own folder, so two packages of one project never share one.
        output_rel = spec.output or ctx.in_project(spec.path, spec.output_path) + f"{package}/"
        out_dir = ctx.resolve(output_rel, must_exist=False)
        if out_dir.exists() and not out_dir.is_dir():
            raise TaskBlocked(
                f"payload.output {output_rel!r} is a file; the API reference needs a folder",
                severity="medium",
            )

        await ctx.progress(5, f"Analysing {spec.path}")
        modules, found = await self.analyse(ctx, source, spec)
        documented = [m for m in modules if m.documented]
        if not documented:
            raise TaskBlocked(
                f"{ctx.relative(source)} has no public modules (all {len(modules)} are private); "
                "set payload.include_private to document them",
                severity="medium",
            )
        classes = sum(len(m.classes) for m in documented)
        functions = sum(len(m.functions) for m in documented)
        names = sum(m.public_count for m in documented)
        await ctx.progress(
            30,
            f"Analysed {len(modules)} modules of {package}: {len(documented)} documented, {names} public names "
            f"({classes} classes, {functions} functions)" + skipped_note(found),
        )

        test_reports = [a for a in await dependency_artifacts(ctx) if a.artifact_type == "test_report"]
        pages, index = await asyncio.to_thread(render_pages, package, documented, test_reports)
        await ctx.progress(40, f"Generated {len(pages)} module pages and the index")

        claim = Manifest(ctx.relative(source), package, task.task_id, (*pages, "index.md"))
        with output_folder(ctx, out_dir, output_rel) as out_fd:  # opened once: a later swap changes nothing
            async with folder_lock(
                out_fd,
                stopping=lambda: ctx.stopping,
                waiting=lambda: ctx.log.info("output_folder_busy", output=output_rel),
            ):
                earlier = self._claim(out_fd, claim, output_rel)
                written = await self._write_pages(task, ctx, out_fd, out_dir, output_rel, pages)
                await write_page(out_fd, out_dir, "index.md", index, output_rel)
                removed = remove_stale(out_fd, earlier, set(claim.pages))
                write_manifest(out_fd, claim)
        if removed:
            ctx.log.info("stale_pages_removed", output=output_rel, pages=removed[:50], count=len(removed))

        location = ctx.relative(out_dir).rstrip("/") + "/"
        await ctx.artifact(
            "api_docs",
            f"API reference for {package}: {len(pages)} module pages and index.md",
            location=location,
            data={
                "package": package,
                "source": ctx.relative(source),
                "index": ctx.relative(out_dir / "index.md"),
                **listed("pages", [ctx.relative(out_dir / name) for name in pages]),
                "modules": len(pages),
                "public_names": names,
                "classes": classes,
                "functions": functions,
                "stale_pages_removed": len(removed),
                "tests_left_out": len(found.tests),
            },
        )
        resumed = len(pages) - written
        tail = f" ({resumed} kept from an earlier attempt)" if resumed else ""
        if removed:
            tail += f"; removed {len(removed)} page(s) of modules that no longer exist ({clip(', '.join(removed), 500)})"
        return (
            f"Wrote the API reference for {package} to {location}: {len(pages)} module pages "
            f"({names} public names: {classes} classes, {functions} functions) and index.md{tail}{skipped_note(found)}"
        )

    @staticmethod
    def _claim(out_fd: int, claim: Manifest, shown: str) -> tuple[str, ...]:
        """Take the folder for this source (refused if another source's reference is there); the pages it held."""
        earlier = read_manifest(out_fd)
        if earlier is not None and earlier.source != claim.source:
            raise TaskBlocked(
                f"payload.output {shown!r} holds the API reference of {earlier.source} (written by task "
                f"{earlier.task_id}); give this task its own payload.output, or delete that folder to reuse it",
                severity="medium",
            )
        pages = earlier.pages if earlier is not None else ()
        # listed before a page is written: a run that dies half-way still knows every page it may have left
        write_manifest(out_fd, replace(claim, pages=tuple(sorted({*pages, *claim.pages}))))
        return pages

    async def _write_pages(
        self,
        task: Assignment,
        ctx: TaskContext,
        out_fd: int,
        out_dir: Path,
        output_rel: str,
        pages: dict[str, str],
    ) -> int:
        """Every module page not already written by an earlier attempt, a checkpoint after each; how many it wrote."""
        done = resumed_pages(task.checkpoint, "api", output_rel, out_fd)
        if done:
            ctx.log.info("resuming_from_checkpoint", already_written=sorted(done)[:50], count=len(done))
        written = 0
        for number, (filename, text) in enumerate(pages.items(), start=1):
            if filename in done:
                continue
            if ctx.stopping:
                await self._stop_with_checkpoint(ctx, "api", output_rel, done)
            await write_page(out_fd, out_dir, filename, text, output_rel)
            done.add(filename)
            written += 1
            ctx.last_progress = 40 + 55 * number / len(pages)
            await ctx.checkpoint(
                pages_checkpoint("api", output_rel, done),
                message=f"Writing pages: {number}/{len(pages)} ({filename})",
            )
        return written

    # -- tutorial --------------------------------------------------------------------

    async def tutorial(self, task: Assignment, ctx: TaskContext, spec: DocsPayload) -> str:
        source_rel, output_rel = spec.path, spec.output or ctx.in_project(spec.path, spec.output_path)
        source = ctx.resolve(source_rel)
        output = _markdown_file(ctx, output_rel)

        await ctx.progress(10, f"Analysing {source_rel}")
        modules, found = await self.analyse(ctx, source, spec)
        package = package_name(source)
        examples = collect_examples(modules)
        await ctx.progress(
            40, f"Generating the getting-started page for {package} ({len(examples)} examples)"
        )

        api_link = self._api_link(task, ctx, spec, output, await dependency_artifacts(ctx))
        text = render_tutorial(package, modules, api_docs=api_link)
        await ctx.progress(70, f"Writing {output_rel}")
        await write_markdown(ctx, output, output_rel, text)

        modules = [m for m in modules if m.documented]
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

    async def analyse(
        self, ctx: TaskContext, source: Path, spec: DocsPayload
    ) -> tuple[list[ModuleDoc], Found]:
        """Read every module under ``source`` (bounded, nothing from outside the workspace, tests left out
        unless asked) and analyse it in the parser child; a problem becomes a blocker naming the file."""
        try:
            found = await asyncio.to_thread(
                read_package, ctx.workspace, source, self.limits, include_tests=spec.include_tests
            )
        except (TooMuch, UnsafePath) as exc:
            raise TaskBlocked(clip(str(exc), 2000), severity="high") from None
        if found.skipped:
            ctx.log.warning("files_not_read", skipped=found.skipped[:50], count=len(found.skipped))
        if found.tests:
            ctx.log.info("tests_left_out", tests=found.tests[:50], count=len(found.tests))
        if not found.sources:
            left_out = " (only tests, left out: set payload.include_tests)" if found.tests else ""
            raise TaskBlocked(
                f"no Python modules found in {ctx.relative(source)}{left_out}", severity="medium"
            )
        where = PurePosixPath(ctx.relative(source.parent))
        async with ParserProcess(
            timeout=self.limits.parse_timeout_seconds, memory_mb=self.limits.parse_memory_mb
        ) as parser:
            try:
                for module in found.sources:
                    await parser.parse(module)
                modules = await parser.finish(include_private=spec.include_private, label=source.name)
            except ParserUnavailable as exc:
                raise TaskBlocked(str(exc), severity="high") from None
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
        """Shutdown asked for: save what is written and end as cancelled, so the task is released."""
        await ctx.checkpoint(
            pages_checkpoint(kind, output, done),
            message=f"stopping: {len(done)} pages written, releasing the task",
        )
        raise asyncio.CancelledError("worker stopping; task released with its checkpoint")


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


def package_name(source: Path) -> str:
    """The documented package's name: the folder's (or the file's) name, without ``.py``."""
    return source.name.rsplit(".", 1)[0] if source.is_file() else source.name


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
    """Every documented module's page by file name, and the index (in a thread: thousands of modules take a while)."""
    known = [m.name for m in modules]
    pages = {module_filename(m): render_module(m, known) for m in modules}
    return pages, render_index(package, modules, test_reports)


def main() -> None:
    """`python -m documentation_worker`: the DOCS_* limits first (one line and exit 2 if bad), then `pm_worker.run`."""
    if not {"--check", "-h", "--help"} & set(sys.argv[1:]):
        try:
            load_limits()
        except SettingsError as exc:
            print(f"python -m documentation_worker: {exc}", file=sys.stderr)
            sys.exit(2)
    run(DocumentationWorker)
