"""What a build that failed on its `FROM` line should tell the person fixing it.

Where no registry answers (a machine without internet, like the ones ensure-engine.sh sets up),
a Dockerfile's base image can only come from the engine's own images. The worker passes
PYTHON_IMAGE from its environment as a build arg, so `ARG PYTHON_IMAGE` / `FROM ${PYTHON_IMAGE}`
builds against a local image; a user who never heard of it saw the engine's "lookup
registry-1.docker.io: no such host" and nothing about what to do. The blocker now names the
base image, the images of that name the engine has, and both ways to use one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import docker

FROM_STEP = re.compile(r"^Step \d+/\d+ : FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE)


def failed_base_image(step_line: str) -> str | None:
    """The image the failing step asked for, if that step was a `FROM` (None otherwise)."""
    m = FROM_STEP.match(step_line.strip())
    return m.group(1) if m else None


def resolve(image: str, build_args: Mapping[str, str]) -> str:
    """`image` with `${NAME}` / `$NAME` replaced by the build args the build was given."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: build_args.get(m.group(1) or m.group(2), m.group(0)), image
    )


def local_images(client: docker.DockerClient, image: str) -> list[str]:
    """Tags the engine has of the repository `image` names (python:3.12-slim -> python:*), at most 8."""
    repository = image.rsplit(":", 1)[0] if "$" not in image else "python"
    try:
        images = client.images.list(name=repository)
    except Exception:  # a hint must never hide the build's own error
        return []
    return sorted({tag for found in images for tag in found.tags})[:8]


def hint(written: str, build_args: Mapping[str, str], have: Sequence[str]) -> str:
    """The lines added to the blocker of a build whose `FROM written` image could not be fetched."""
    image = resolve(written, build_args)
    example = have[0] if have else "python:3.11-slim"
    named = image if image == written else f"{image}, from `FROM {written}`"
    lines = [
        f"The base image ({named}) could not be fetched: the engine does not have it and asked a "
        "registry, which did not answer or does not have it either.",
        "This engine has: "
        + (", ".join(have) if have else "no image of that name (`docker image ls` lists what it has)")
        + ".",
    ]
    fleet = (
        f"run the fleet with PYTHON_IMAGE={example} (`PYTHON_IMAGE={example} make up`; `make demo` picks a "
        f"local python:*-slim by itself), or give it in the task: `build_args: {{PYTHON_IMAGE: {example}}}`"
    )
    if "PYTHON_IMAGE" in written:
        lines.append(f"To build from a local image: {fleet}. Then rerun the task.")
    else:
        lines.append(
            "To build from a local image: start the Dockerfile with `ARG PYTHON_IMAGE=python:3.12-slim` and "
            f"`FROM ${{PYTHON_IMAGE}}` (the fleet passes PYTHON_IMAGE as a build arg), {fleet}; or pull or "
            "load the image into the engine. Then rerun the task."
        )
    return "\n".join(lines)
