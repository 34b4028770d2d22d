"""Shared fixtures: every module of ``tests/services/`` is a pytest plugin.

Each service module starts one real protocol server for the session, on
loopback and a free port, and stops it by its process id; or it uses the
server an environment variable names (``PIKCHA_TEST_KAFKA`` and friends).
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.services.{path.stem}"
    for path in (Path(__file__).parent / "services").glob("*.py")
    if path.stem not in {"__init__", "ports"}
)
