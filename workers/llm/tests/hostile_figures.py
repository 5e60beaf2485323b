"""Figures for docs/reliability.md: the llm worker against a hostile model endpoint and workspace.

Every component real: the stub (`python -m pm_agent_stub serve`), the llm worker process,
the fake model endpoint (`llm_fake_model`, hostile modes), a FIFO and a never-answering
FUSE mount in the task folder. Prints one line per case (time, the worker's peak RSS,
the largest request it sent, how the task ended) and a JSON list at the end.

    .venv/bin/python workers/llm/tests/hostile_figures.py                       # this tree
    .venv/bin/python workers/llm/tests/hostile_figures.py --src /tmp/old/src    # another llm_worker
    .venv/bin/python workers/llm/tests/hostile_figures.py fifo_read trickle     # some cases

`--src` puts another copy of `llm_worker` first on the worker's PYTHONPATH (e.g. main's,
from `git archive main workers/llm/src | tar -x -C /tmp/old`), so before and after run
side by side against the same stub, fake and workspace. A benchmark, not a test: it
prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import hung_mount  # noqa: E402

from pm_agent_stub.testing import StubProcess, read_events, start_stub, tasks_yaml  # noqa: E402
from pm_agent_stub.testing import task_context as stub_task_context  # noqa: E402

from llm_fake_model import FakeModel, Reply, call, huge_answer, trickle, turn  # noqa: E402
from llm_harness import LiveWorker, agent_env  # noqa: E402

MIB = 1024 * 1024
BIG_FILE = 64 * 1024


@dataclass
class Figure:
    case: str
    seconds: float
    peak_rss_mib: float
    requests: int
    largest_request_mib: float
    exit_codes: list[int | None]  # per worker, None: did not exit after SIGTERM (killed)
    sigterm_to_exit_seconds: list[float | None]  # per worker that needed one
    status: str
    attempts_counted: int
    note: str


@dataclass
class Case:
    name: str
    replies: Callable[[], list[Reply]]
    repeat_last: bool = False
    env: dict[str, str] | None = None
    workers: int = 1  # workers that take the task in turn (each MAX_TASKS=1)
    run_for: float = 60.0  # then SIGTERM
    needs_mount: bool = False
    sigterm_after: tuple[str, ...] = ()  # SIGTERM 0.5 s after one of these appears in the log
    note: str = ""


def reads(n: int, usage: tuple[int, int] = (100, 20)) -> Reply:
    return turn(*[call("read_file", {"path": "big.txt"}) for _ in range(n)], usage=usage)


CASES = [
    Case(
        "fifo_read",
        lambda: [turn(call("read_file", {"path": "pipe"})), turn(call("finish", {"summary": "done"}))],
        workers=3,
        run_for=8,
        note="read_file on a FIFO in the task folder; 3 workers in turn",
    ),
    Case(
        "fifo_write",
        lambda: [
            turn(call("write_file", {"path": "pipe", "content": "x"})),
            turn(call("finish", {"summary": "done"})),
        ],
        run_for=8,
        note="write_file onto a FIFO",
    ),
    Case(
        "hung_mount",
        lambda: [turn(call("read_file", {"path": "stuck/x"})), turn(call("finish", {"summary": "done"}))],
        env={"LLM_TOOL_TIMEOUT_SECONDS": "3"},
        workers=3,
        run_for=8,
        needs_mount=True,
        note="read_file under a FUSE mount that never answers (a dead NFS server); 3 workers in turn",
    ),
    Case(
        "hung_mount_sigterm",
        lambda: [turn(call("read_file", {"path": "stuck/x"})), turn(call("finish", {"summary": "done"}))],
        env={"LLM_TOOL_TIMEOUT_SECONDS": "60"},
        run_for=30,
        needs_mount=True,
        sigterm_after=('"model_turn"', '"model turn"'),  # main's name for the event, and ours
        note="SIGTERM while read_file waits on the dead mount (SHUTDOWN_GRACE_SECONDS=5)",
    ),
    Case(
        "reads_300",
        lambda: [reads(300)],
        repeat_last=True,
        env={"LLM_MAX_STEPS": "5"},
        run_for=300,
        note="300 read_file of a 64 KiB file per turn, LLM_MAX_STEPS=5",
    ),
    Case(
        "reads_32_lying_usage",
        lambda: [reads(32, usage=(-1_000_000, 0))],
        repeat_last=True,
        env={"LLM_MAX_STEPS": "12"},
        run_for=300,
        note="32 reads of 64 KiB per turn, usage input_tokens=-1000000, LLM_MAX_STEPS=12",
    ),
    Case(
        "trickle",
        lambda: [trickle(0.5)],
        repeat_last=True,
        env={"LLM_TIMEOUT_SECONDS": "3", "LLM_RETRY_ATTEMPTS": "2", "LLM_RETRY_MAX_WAIT_SECONDS": "0"},
        run_for=30,
        note="an answer trickling one byte per 0.5 s, LLM_TIMEOUT_SECONDS=3, LLM_RETRY_ATTEMPTS=2",
    ),
    Case(
        "huge_answer",
        lambda: [huge_answer(256 * MIB)],
        repeat_last=True,
        env={"LLM_RETRY_ATTEMPTS": "1", "LLM_MAX_STEPS": "1"},
        run_for=120,
        note="a 256 MiB answer",
    ),
]


def skill(case: str) -> str:
    return f"hostile-{case}"


def board_tasks() -> list[dict[str, Any]]:
    return [
        {
            "id": c.name,
            "name": f"Hostile case {c.name}",
            "description": "Document the files of the task folder.",
            "priority": "high",
            "required_skills": ["python", skill(c.name)],
            "payload": {"path": c.name},
        }
        for c in CASES
    ]


def prepare_folder(ws: Path, case: Case) -> None:
    folder = ws / case.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "big.txt").write_text("x" * (BIG_FILE - 1) + "\n")
    if not (folder / "pipe").exists():
        os.mkfifo(folder / "pipe")


def wait_for_log(worker: LiveWorker, marks: tuple[str, ...], seconds: float) -> int | None:
    """None once a mark is in the worker's log (0.5 s later: into the next step), or its exit code."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            return worker.proc.returncode
        if any(mark in worker.log.read_text(errors="replace") for mark in marks):
            time.sleep(0.5)
            return None
        time.sleep(0.05)
    return None


def run_case(case: Case, stub: StubProcess, fake: FakeModel, ws: Path, logs: Path, src: str | None) -> Figure:
    started = time.monotonic()
    peak = 0.0
    sizes: list[int] = []
    exit_codes: list[int | None] = []
    to_exit: list[float | None] = []
    for i in range(case.workers):
        if stub_task_context(stub, case.name)["task"]["status"] != "todo":
            break
        fake.script(case.replies(), repeat_last=case.repeat_last)  # each worker meets the same model
        env = agent_env(stub, ws, "openai", fake, f"llm-{case.name}-{i}", skill(case.name))
        env.update({"SHUTDOWN_GRACE_SECONDS": "5", "LLM_STARTUP_WAIT_SECONDS": "5", **(case.env or {})})
        worker = LiveWorker(env, logs / f"{case.name}-{i}.log", pythonpath=src)
        if case.sigterm_after:
            code = wait_for_log(worker, case.sigterm_after, case.run_for)
        else:
            code = worker.wait(case.run_for)
        if code is None:
            took = worker.terminate(grace=20)
            to_exit.append(None if took is None else round(took, 2))
            code = None if took is None else worker.proc.returncode
        worker.result()
        exit_codes.append(code)
        peak = max(peak, worker.peak_kib / 1024)
        with fake._lock:
            sizes += [r.size for r in fake.requests]
    ctx = stub_task_context(stub, case.name)
    counted = sum(1 for e in read_events(stub.db, task_id=case.name) if e["kind"] == "expired") + sum(
        1
        for e in read_events(stub.db, "released", case.name)
        if isinstance(e["detail"], dict) and e["detail"].get("count_attempt")
    )
    blockers = ctx["blockers"]
    status = ctx["task"]["status"]
    if blockers:
        status += f": {blockers[-1]['description'][:160]}"
    return Figure(
        case=case.name,
        seconds=round(time.monotonic() - started, 2),
        peak_rss_mib=round(peak, 1),
        requests=len(sizes),
        largest_request_mib=round(max(sizes, default=0) / MIB, 2),
        exit_codes=exit_codes,
        sigterm_to_exit_seconds=to_exit,
        status=status,
        attempts_counted=counted,
        note=case.note,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("cases", nargs="*", help=f"cases to run (default all): {[c.name for c in CASES]}")
    parser.add_argument("--src", help="a folder holding another llm_worker package, put first on PYTHONPATH")
    parser.add_argument("--keep", help="keep the workers' logs in this folder")
    args = parser.parse_args()
    chosen = [c for c in CASES if not args.cases or c.name in args.cases]
    src = str(Path(args.src).resolve()) if args.src else None
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="llm-hostile-") as tmp:
        root = Path(tmp)
        ws = root / "ws"
        logs = Path(args.keep) if args.keep else root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        project = root / "board.yaml"
        project.write_text(tasks_yaml(*board_tasks(), project="llm-hostile"))
        stub = start_stub(root / "board.db", project=project, timeout=60)
        fake = FakeModel().start()
        try:
            for case in chosen:
                prepare_folder(ws, case)
                if case.needs_mount:
                    why = hung_mount.available()
                    if why:
                        print(f"{case.name}: skipped ({why})", flush=True)
                        continue
                    with hung_mount.never_answering_mount(ws / case.name / "stuck"):
                        figure = run_case(case, stub, fake, ws, logs, src)
                else:
                    figure = run_case(case, stub, fake, ws, logs, src)
                figures.append(figure)
                print(
                    f"{figure.case}: {figure.seconds} s, peak RSS {figure.peak_rss_mib} MiB, "
                    f"{figure.requests} requests (largest {figure.largest_request_mib} MiB), "
                    f"exit codes {figure.exit_codes}, SIGTERM→exit {figure.sigterm_to_exit_seconds} s, "
                    f"attempts counted {figure.attempts_counted}, task {figure.status}",
                    flush=True,
                )
        finally:
            fake.stop()
            stub.stop()
    print(json.dumps([asdict(f) for f in figures], indent=1))


if __name__ == "__main__":
    main()
