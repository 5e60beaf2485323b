"""``python -m testing_worker``: run the testing worker until stopped."""

from testing_worker.worker import main

if __name__ == "__main__":
    main()
