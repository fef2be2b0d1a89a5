"""Repository-wide pytest hooks (the shared fixtures are in tests/conftest.py).

`make test-fast` runs `pytest -m "not slow"`: every notebook cell that nbval collects is marked `slow` here,
beside the tests marked `@pytest.mark.slow` in tests/ (subprocesses, DDP, SIGKILL, papermill, complexity and
anything measured above about 5 s).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
