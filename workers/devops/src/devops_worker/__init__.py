"""The devops specialist: builds a Docker image from the workspace and smoke-tests it.

Task payload (paths relative to the workspace; only ``context`` is usually needed)::

    {"context": "demo-project",              # the build context folder      (default ".")
     "dockerfile": "Dockerfile",             # relative to the context       (default "Dockerfile")
     "tag": "demo-calc:latest",              # default "pm-fleet/<task id>:latest"
     "build_args": {"X": "1"},               # PYTHON_IMAGE is passed through from the
                                             #   worker's environment unless given here
     "smoke_command": "python -m calc add 2 3",   # run in a container of the new image
     "expect_output": "5",                   # must appear in the smoke test's output
     "smoke_timeout_seconds": 120, "build_timeout_seconds": 1800, "pull": false, "nocache": false}

The image is not rebuilt when this task's checkpoint (a resumed task) or a dependency's
``docker_image`` artifact names an image with the same tag that the engine still has
(unless ``nocache``): a smoke-deploy task after a build task reuses that build.

It talks to the engine with the ``docker`` SDK (``docker.from_env()``: ``DOCKER_HOST`` or the
socket at /var/run/docker.sock), every blocking call in a thread. Engine unreachable,
build failure and a failing smoke test end as blockers carrying the engine's own words.
"""

from devops_worker.payload import BuildPayload, parse_payload
from devops_worker.worker import DevOpsWorker

__all__ = ["BuildPayload", "DevOpsWorker", "parse_payload"]
