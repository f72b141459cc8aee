"""Build each runner once per distinct rendered source, and say how to launch it.

A runner whose toolchain is missing is reported as skipped with the reason; a build that fails
names its log. Neither stops the other runners.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from harness.cmake import BuildError, cmake_build
from harness.model_spec import ModelSpec
from harness.render import render_runner
from harness.runners import Runner
from harness.suite import RunnerChoice, Suite
from harness.toolchains import TOOLCHAINS


@dataclass
class Built:
    """A runner ready to run (status ok), or why it is not (skipped / failed)."""

    runner: str
    status: str  # "ok", "skipped", "failed"
    reason: str = ""
    argv: list[str] = field(default_factory=list)  # the job file path is appended
    env: dict[str, str] = field(default_factory=dict)
    source_dir: Path | None = None
    log: Path | None = None
    # job-dependent environment (the Java bridge takes threads and grad mode this way)
    env_for: Callable[..., dict[str, str]] | None = None


def toolchain_problem(runner: Runner) -> str | None:
    """None when the runner can be built here, else a one-line reason naming what to install."""
    return TOOLCHAINS[runner.toolchain].problem()


def build_runner(runner: Runner, model: ModelSpec, build_root: Path) -> Built:
    """Render, then build (cached); never raises for a runner-level problem."""
    problem = toolchain_problem(runner)
    if problem:
        return Built(runner.id, "skipped", problem)
    src = render_runner(runner, model, build_root / "runners")
    out = src.parent / "build"
    log = src.parent / "build.log"
    try:
        with FileLock(str(src.parent / ".lock")):
            if runner.toolchain == "python":
                return Built(runner.id, "ok", argv=[sys.executable, str(src / "runner.py")], source_dir=src)
            if runner.toolchain == "cmake":
                cmake_build(src, out, log)
                return Built(runner.id, "ok", argv=[str(out / "runner")], source_dir=src, log=log)
            if runner.toolchain == "java":
                return _build_java(runner, src, build_root, log)
    except BuildError as exc:
        return Built(runner.id, "failed", str(exc), source_dir=src, log=log)
    raise ValueError(f"unknown toolchain {runner.toolchain}")


def _build_java(runner: Runner, src: Path, build_root: Path, log: Path) -> Built:
    """The shared JNI bridge (CMake), then the runner's Maven project; threads and grad mode go by env."""
    from harness import java_build

    bridge = java_build.build_bridge(build_root, src.parent)
    java_build.build_runner_jar(src, log)

    def env_for(suite: Suite, choice: RunnerChoice) -> dict[str, str]:
        return java_build.java_env(choice.threads, suite.run.interop_threads, choice.grad_mode)

    argv = java_build.java_command(src, bridge, Path("JOB"))[:-1]
    return Built(runner.id, "ok", argv=argv, source_dir=src, log=log, env_for=env_for)
