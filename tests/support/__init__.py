"""Helpers shared by the test suite and the benches: a private PostgreSQL server (`postgres`) and a
real farm of server and agent subprocesses (`farm`). Importable as `tests.support` from the repository
root (the benches add the root to sys.path; tests/conftest.py does the same)."""
