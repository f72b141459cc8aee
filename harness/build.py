"""Build each runner once per distinct rendered source, and say how to launch it.

A runner whose toolchain is missing is reported as skipped with the reason; a build that fails
names its log. Neither stops the other runners.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from harness.cmake import BuildError, cmake_build
from harness.model_spec import ModelSpec
from harness.python_ext import build_extensions
from harness.render import render_runner
from harness.runners import RUNNERS, Runner
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
    # a Java runner: the same project built and run with the JDK a suite entry names (see for_choice)
    for_jdk: Callable[[str], Built] | None = None
    jdk: str = ""  # the JDK it is built and run with, described (harness/jdks.py), for a JDK-named build


def for_choice(built: Built, choice: RunnerChoice) -> Built:
    """The build a row runs: its runner's, or for a row that names a JDK, that runner's project built with it
    (cached; a JDK not found here makes the row skipped, with one line naming the JDK and how to install it)."""
    if not choice.jdk or built.status != "ok":
        return built
    if built.for_jdk is None:
        return Built(built.runner, "failed", f"{built.runner} is not a Java runner: leave jdk out for it")
    return built.for_jdk(choice.jdk)


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
            if runner.toolchain == "python-ext":  # its C extension compiled beside runner.py, which imports it
                build_extensions(src, log)
                return Built(runner.id, "ok", argv=[sys.executable, str(src / "runner.py")], source_dir=src, log=log)
            if runner.toolchain == "cmake":
                cmake_build(src, out, log)
                return Built(runner.id, "ok", argv=[str(out / "runner")], source_dir=src, log=log)
            if runner.toolchain == "java":
                return _build_java(runner, src, build_root, log)
    except BuildError as exc:
        return Built(runner.id, "failed", str(exc), source_dir=src, log=log)
    raise ValueError(f"unknown toolchain {runner.toolchain}")


def _build_java(runner: Runner, src: Path, build_root: Path, log: Path) -> Built:
    """The shared JNI bridge (CMake; not for a runner without libtorch or one that calls it through FFM), then the
    runner's Maven project.

    Threads and grad mode go to the bridge by environment; a runner on another runtime sets them itself.
    A suite entry that names a JDK gets the same project copied beside it and built with that JDK (for_jdk).
    """
    from harness import java_build, jdks

    # a runner that needs a newer JDK than PATH's (min_jdk) is built and run on one, or skipped saying why
    default_jdk = None
    if runner.min_jdk is not None:
        try:
            default_jdk = jdks.at_least(runner.min_jdk, f"{runner.id} needs it ({runner.template})")
        except jdks.JdkNotFound as exc:
            return Built(runner.id, "skipped", str(exc))
    ffm = runner.template in java_build.FFM_TEMPLATES  # opens libtorch itself: no bridge
    options = java_build.ffm_jvm_options() if ffm else ()
    bridge = java_build.build_bridge(build_root, src.parent) if runner.uses_torch and not ffm else None
    java_build.build_runner_jar(src, log, default_jdk, runner.min_jdk)

    def env_for(suite: Suite, choice: RunnerChoice) -> dict[str, str]:
        if bridge is None:
            return {}
        # the row's own entry: a variant shares its base's build but not its options
        optimizer = bool(dict(RUNNERS[choice.id].options).get("graph_optimizer", False))
        return java_build.java_env(choice.threads, suite.run.interop_threads, choice.grad_mode, optimizer)

    made: dict[str, Built] = {}

    def for_jdk(spec: str) -> Built:
        if spec not in made:
            try:
                jdk = jdks.find(spec)
            except jdks.JdkNotFound as exc:
                made[spec] = Built(runner.id, "skipped", str(exc))
                return made[spec]
            if runner.min_jdk is not None and jdk.feature < runner.min_jdk:
                made[spec] = Built(runner.id, "skipped", f"{jdk.describe()} is older than JDK {runner.min_jdk}, "
                                   f"which {runner.id} needs ({runner.template}): name a newer one")
                return made[spec]
            home = hashlib.sha256(str(jdk.home).encode()).hexdigest()[:8]
            project = java_build.copy_project(src, src.parent / f"jdk{jdk.feature}-{home}" / "src")
            jdk_log = project.parent / "build.log"
            try:
                with FileLock(str(project.parent / ".lock")):
                    java_build.build_runner_jar(project, jdk_log, jdk, runner.min_jdk)
            except BuildError as exc:
                made[spec] = Built(runner.id, "failed", str(exc), source_dir=project, log=jdk_log)
                return made[spec]
            argv = java_build.java_command(project, bridge, Path("JOB"), jdk, options)[:-1]
            made[spec] = Built(runner.id, "ok", argv=argv, source_dir=project, log=jdk_log, env_for=env_for,
                               jdk=jdk.describe())
        return made[spec]

    argv = java_build.java_command(src, bridge, Path("JOB"), default_jdk, options)[:-1]
    return Built(runner.id, "ok", argv=argv, source_dir=src, log=log, env_for=env_for, for_jdk=for_jdk,
                 jdk=default_jdk.describe() if default_jdk else "")
