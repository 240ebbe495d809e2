"""What the benchmark scripts share: the machine's description and writing one section of BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

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
