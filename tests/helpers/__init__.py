"""Test helpers shared by suites (put `tests/` on sys.path, then `from helpers.stubproc import ...`)."""
