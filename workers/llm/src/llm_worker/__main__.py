"""``python -m llm_worker``: run the LLM worker until stopped."""

from llm_worker.worker import main

if __name__ == "__main__":
    main()
