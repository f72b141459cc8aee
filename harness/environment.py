"""Describe the machine and toolchains a run used, so a reader can judge and reproduce it."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import cpuinfo
import psutil
import torch

from harness import jdks
from harness.paths import ROOT
from harness.toolchains import TOOLS


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    text = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout or p.stderr).strip()
    return text.splitlines()[0] if text else None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# A run writes its own folder under results/ and fills the build cache: neither makes the code differ.
_NOT_CODE = (":(exclude)results", ":(exclude)build")


def _dirty(root: Path) -> bool:
    """Whether the code differs from HEAD; only stdout counts, so a warning on stderr is no false alarm."""
    try:
        p = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", ".", *_NOT_CODE],
                           capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and bool(p.stdout.strip())


def git_commit(root: Path = ROOT) -> str | None:
    """The commit the code came from, marked when the code (not results/ or build/) has uncommitted changes."""
    commit = _first_line(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"])
    if not commit:
        return None
    return f"{commit} (uncommitted changes)" if _dirty(root) else commit


def collect() -> dict[str, Any]:
    """Everything DESIGN.md's 'Environment' asks for that can be read without root."""
    info = cpuinfo.get_cpu_info()
    mem = psutil.virtual_memory()
    return {
        "host": socket.gethostname(),
        "cpu_model": info.get("brand_raw"),
        "cpu_flags_avx2": "avx2" in info.get("flags", []),
        "cpu_flags_avx512f": "avx512f" in info.get("flags", []),
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "not exposed",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(mem.total / 2**30, 1),
        "kernel": platform.release(),
        "os": _read_os(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_lib": str(Path(torch.__file__).parent / "lib"),
        "torch_parallel_info": torch.__config__.parallel_info(),
        **{t.env_key: _first_line(list(t.version)) for t in TOOLS.values() if t.env_key},
        "jdks": [j.describe() for j in jdks.installed()],  # what a suite's `jdk` can name (harness/jdks.py)
        "git_commit": git_commit(),
    }


def _read_os() -> str:
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()
