"""The report page: what the tasks this one depends on produced (test counts, images, pages).

Pure functions from data to text, like every page renderer here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from documentation_worker.markdown import cell, squeeze_blank

__all__ = ["ArtifactInfo", "render_report", "test_summary_lines"]


@dataclass(frozen=True)
class ArtifactInfo:
    """What a page needs to know about an artifact another task logged."""

    task_id: str
    artifact_type: str
    description: str
    location: str | None = None
    data: Any = None
    link: str | None = None  # ``location`` relative to the page being written, when it is a workspace path


def test_summary_lines(report: ArtifactInfo) -> list[str]:
    data = report.data if isinstance(report.data, Mapping) else {}
    counts = ", ".join(f"{data.get(k, 0)} {k}" for k in ("passed", "failed", "skipped", "errors"))
    where = f" (`{report.location}`)" if report.location else ""
    return [f"- `{report.task_id}`: {counts}{where}"]


def render_report(title: str, artifacts: Sequence[ArtifactInfo]) -> str:
    """A report page from the artifacts of the tasks this one depends on.

    ``test_report`` artifacts get a table of counts and their failing tests; every other
    artifact is listed with its type, description and location.
    """
    out = [f"# {title}", ""]
    tests = [a for a in artifacts if a.artifact_type == "test_report"]
    others = [a for a in artifacts if a.artifact_type != "test_report"]
    if tests:
        out += [
            "## Tests",
            "",
            "| Task | Passed | Failed | Skipped | Errors | Report |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for report in tests:
            data = report.data if isinstance(report.data, Mapping) else {}
            out.append(
                f"| `{report.task_id}` | {data.get('passed', 0)} | {data.get('failed', 0)} "
                f"| {data.get('skipped', 0)} | {data.get('errors', 0)} | `{cell(report.location or '')}` |"
            )
        out.append("")
        for report in tests:
            data = report.data if isinstance(report.data, Mapping) else {}
            failures = data.get("failures") or []
            if failures:
                out += [f"Failing in `{report.task_id}`:", ""]
                for failure in failures:
                    if isinstance(failure, Mapping):
                        out.append(f"- `{failure.get('id', '?')}`: {failure.get('message', '')}")
                    else:
                        out.append(f"- `{failure}`")
                out.append("")
    if others:
        out += ["## Other artifacts" if tests else "## Artifacts", ""]
        for artifact in others:
            if artifact.link:
                where = f" at [`{artifact.location}`]({artifact.link})"
            elif artifact.location:
                where = f" at `{artifact.location}`"
            else:
                where = ""
            out.append(
                f"- `{artifact.artifact_type}` from `{artifact.task_id}`{where}: {artifact.description}"
            )
        out.append("")
    if not artifacts:
        out += ["*No artifacts were shared with this task.*", ""]
    return squeeze_blank("\n".join(out)).rstrip() + "\n"
