"""``python -m documentation_worker``: run the documentation worker until stopped."""

from documentation_worker.worker import main

if __name__ == "__main__":
    main()
