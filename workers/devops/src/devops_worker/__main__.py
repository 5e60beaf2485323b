"""``python -m devops_worker``: run the devops worker until stopped."""

from pm_worker import run

from devops_worker.worker import DevOpsWorker

if __name__ == "__main__":
    run(DevOpsWorker)
