"""Pikcha: the analytics pipeline of the shop chain Пикча.

Build a pipeline from settings (the environment by default) or from adapters
you give, and run one step or all of them::

    from pikcha import build_pipeline

    pipeline = build_pipeline()
    pipeline.load(Path("data"))
    pipeline.publish()
    pipeline.project()

For tests of your own code, :func:`pikcha.testing.memory_pipeline` wires the
in-memory adapters together with no service at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pikcha.domain.errors import ConfigurationError, PikchaError, RecordError

if TYPE_CHECKING:
    from pikcha.application.pipeline import Pipeline
    from pikcha.entrypoints.settings import Settings

__all__ = [
    "ConfigurationError",
    "PikchaError",
    "Pipeline",
    "RecordError",
    "Settings",
    "build_pipeline",
]


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    """A pipeline wired from settings, the ``PIKCHA_*`` environment by default."""
    from pikcha.entrypoints.container import build_pipeline as build

    return build(settings)


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import pikcha`` builds nothing and loads no adapter.
    if name == "Pipeline":
        from pikcha.application.pipeline import Pipeline

        return Pipeline
    if name == "Settings":
        from pikcha.entrypoints.settings import Settings

        return Settings
    raise AttributeError(f"module 'pikcha' has no attribute {name!r}")
