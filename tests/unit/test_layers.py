"""The import rules between the layers, read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pikcha"
LAYERS = ("domain", "ports", "application", "adapters", "entrypoints")

IMPURE_MODULES = frozenset(
    {
        "logging",
        "structlog",
        "random",
        "secrets",
        "uuid",
        "time",
        "os",
        "socket",
        "pathlib",
        "subprocess",
        "shutil",
        "tempfile",
    }
)
CLOCK_CALLS = frozenset({"now", "today", "utcnow"})


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]

    return ".".join(parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every dotted name a module imports, relative imports made absolute.

    ``from a import b`` yields ``a.b``, which covers a module ``b`` of package
    ``a`` as well as a name ``b`` defined in module ``a``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)

    return found


def clock_calls(source: str) -> list[str]:
    """The attribute calls that read a clock, such as ``datetime.now()``."""
    return [
        ast.unparse(node.func)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    ]


def imports_of(path: Path) -> set[str]:
    return imports(
        path.read_text(encoding="utf-8"),
        module_name(path),
        is_package=path.name == "__init__.py",
    )


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(PACKAGE)) for path in paths]


def test_imports_resolve_relative_and_from_forms() -> None:
    """The collector sees plain, from and relative imports, relative ones made whole."""
    source = (
        "import os.path\n"
        "from pikcha.adapters import kafka\n"
        "from . import events\n"
        "from ..ports.crm import CrmStore\n"
        "def f():\n"
        "    import random\n"
    )

    found = imports(source, "pikcha.domain.cleaning")

    assert found == {
        "os.path",
        "pikcha.adapters.kafka",
        "pikcha.domain.events",
        "pikcha.ports.crm.CrmStore",
        "random",
    }


def test_relative_imports_in_a_package_init_are_anchored_at_the_package() -> None:
    """In an __init__ module, a single dot means the package itself."""
    found = imports("from .kafka import KafkaEventLog\n", "pikcha.adapters", True)

    assert found == {"pikcha.adapters.kafka.KafkaEventLog"}


def test_clock_calls_are_found_whatever_the_receiver() -> None:
    """now(), today() and utcnow() are found on any object, nested or not."""
    source = (
        "import datetime as dt\n"
        "x = dt.datetime.now(dt.UTC)\n"
        "y = [date.today() for _ in range(2)]\n"
        "z = clock.now\n"
    )

    assert clock_calls(source) == ["dt.datetime.now", "date.today"]


def test_every_layer_has_modules_to_check() -> None:
    """The walk finds each layer, so an empty result means a moved tree, not purity."""
    assert all(modules(layer) for layer in LAYERS)


@pytest.mark.parametrize("path", modules("domain"), ids=ids(modules("domain")))
def test_the_domain_imports_no_other_layer(path: Path) -> None:
    """A domain module imports nothing from any outer layer of Pikcha."""
    outer = [f"pikcha.{layer}" for layer in LAYERS if layer != "domain"]

    bad = sorted(
        name
        for name in imports_of(path)
        if any(within(name, prefix) for prefix in outer)
    )

    assert bad == []


@pytest.mark.parametrize("path", modules("domain"), ids=ids(modules("domain")))
def test_the_domain_imports_no_io_logging_clock_or_randomness(path: Path) -> None:
    """A domain module leaves logging, files, sockets, time and chance to callers."""
    bad = sorted(
        name
        for name in imports_of(path)
        if any(within(name, impure) for impure in IMPURE_MODULES)
    )

    assert bad == []


@pytest.mark.parametrize("path", modules("domain"), ids=ids(modules("domain")))
def test_the_domain_never_reads_the_clock(path: Path) -> None:
    """No domain module calls now(), today() or utcnow(); time is passed in."""
    assert clock_calls(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "path", modules("application"), ids=ids(modules("application"))
)
def test_the_application_depends_on_domain_and_ports_only(path: Path) -> None:
    """Use cases import Pikcha's domain, ports and other use cases, nothing else."""
    allowed = ("pikcha.domain", "pikcha.ports", "pikcha.application")

    bad = sorted(
        name
        for name in imports_of(path)
        if within(name, "pikcha")
        and not any(within(name, prefix) for prefix in allowed)
    )

    assert bad == []


def adapter_unit(path: Path) -> str:
    """The adapter a module belongs to: its own module or its subpackage."""
    parts = path.relative_to(PACKAGE / "adapters").with_suffix("").parts
    if parts == ("__init__",):
        return "pikcha.adapters.__init__"

    return f"pikcha.adapters.{parts[0]}"


@pytest.mark.parametrize("path", modules("adapters"), ids=ids(modules("adapters")))
def test_an_adapter_imports_no_other_adapter_application_or_entrypoint(
    path: Path,
) -> None:
    """Adapters stand alone: only their own subpackage, ports, domain and libraries."""
    unit = adapter_unit(path)

    bad = sorted(
        name
        for name in imports_of(path)
        if within(name, "pikcha.application")
        or within(name, "pikcha.entrypoints")
        or (within(name, "pikcha.adapters") and not within(name, unit))
    )

    assert bad == []


def test_an_adapter_importing_a_sibling_adapter_is_caught() -> None:
    """The adapter rule flags a module of another adapter, not one of its own."""
    path = PACKAGE / "adapters" / "kafka" / "consumer.py"
    found = imports(
        "from . import producer\nfrom ..sqlite import SqliteEventLog\n",
        "pikcha.adapters.kafka.consumer",
    )
    unit = adapter_unit(path)

    assert sorted(name for name in found if not within(name, unit)) == [
        "pikcha.adapters.sqlite.SqliteEventLog"
    ]
