"""``python -m devops_worker``: run the devops worker until stopped."""

from devops_worker.worker import DevOpsWorker
from pm_worker import run

if __name__ == "__main__":
    run(DevOpsWorker)
