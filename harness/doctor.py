"""`invoke doctor`: which toolchains are here, their versions, and which runners would be skipped and why."""

from __future__ import annotations

import shutil
import subprocess

import torch

from harness import jdks
from harness.build import toolchain_problem
from harness.runners import RUNNERS
from harness.toolchains import NOT_BUILDABLE, TOOLS


def _version(argv: tuple[str, ...] | list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "NOT FOUND"
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run ({exc})"
    lines = (p.stdout or p.stderr).strip().splitlines()
    return lines[0].replace("\x1b[1m", "").replace("\x1b[m", "").replace("\x1b[0m", "") if lines else "?"


def report() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(tool, version) pairs and (runner, 'ready' or the reason it would be skipped)."""
    tools = [("python torch", f"{torch.__version__} ({torch.__file__})")]
    for name, tool in TOOLS.items():
        version = _version(tool.version)
        tools.append((name, f"not found: {tool.install}" if version == "NOT FOUND" else version))
    found = "; ".join(j.describe() for j in jdks.installed()) or "none found"
    tools.append(("JDKs (a runner's jdk)", found))
    runners = [(rid, toolchain_problem(r) or "ready") for rid, r in RUNNERS.items()]
    return tools, runners


def render() -> str:
    tools, runners = report()
    width = max(len(n) for n, _ in tools + runners) + 2
    lines = ["toolchains:"] + [f"  {n:<{width}}{v}" for n, v in tools]
    lines += ["runners:"] + [f"  {n:<{width}}{v}" for n, v in runners]
    skipped = [n for n, v in runners if v != "ready"]
    lines.append(f"{len(runners) - len(skipped)} of {len(runners)} runners ready"
                 + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    lines += ["not buildable here:"] + [f"  {path}: {why}" for path, why in NOT_BUILDABLE.items()]
    return "\n".join(lines)
