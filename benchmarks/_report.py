"""What the benchmark scripts share: the machine's description, writing one section of BENCHMARKS.md, and a
server child process that is waited for and stopped."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
_HEADER = "# Benchmarks\n\nMeasured results of the scripts in `benchmarks/`.\n"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def add_record_option(parser: argparse.ArgumentParser) -> None:
    """``--record [PATH]``: write the results into the script's section of BENCHMARKS.md."""
    parser.add_argument(
        "--record",
        nargs="?",
        const=str(BENCHMARKS_MD),
        default=None,
        metavar="PATH",
        help="write the results into this script's section of BENCHMARKS.md (default path: the repo's)",
    )


def record_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the section headed ``title`` in ``path``, leaving every other section alone."""
    text = path.read_text() if path.exists() else _HEADER
    lines = text.splitlines()
    section = [title, "", *body.strip("\n").splitlines()]
    if title in lines:
        start = lines.index(title)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = [*section, *([""] if end < len(lines) else [])]
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *section]
    path.write_text("\n".join(lines) + "\n")


@contextmanager
def serving(proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> Iterator[str]:
    """Wait until the server ``proc`` answers ``/readyz`` at ``url``, yield the URL, then stop it (SIGINT, then
    kill). Raises `RuntimeError` if it exits or is not ready within ``timeout`` seconds."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
