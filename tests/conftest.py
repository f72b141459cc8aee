"""Shared fixtures: a valid suite dict to mutate, paths to the test suites, and a machine lock per test worker.

The tests run in two workers (pytest-xdist, one test file per worker at a time, pyproject.toml). They share
the build folder, whose caches take file locks of their own; the runs a worker starts in its own process
take that worker's machine lock, so two workers' runs go side by side. A run started through the command
line (a subprocess) takes the real lock and waits for another such run, as a user's would.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import jdks, pipeline
from harness.java_build import java_toolchain_problem
from harness.paths import SUITES_DIR

TESTS = Path(__file__).parent
TINY = TESTS / "suites" / "tiny.toml"


@pytest.fixture(scope="module")
def ffm_toolchain() -> None:
    """The FFM runners' tests need the Java toolchain and a JDK with java.lang.foreign (final in 22)."""
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    if not any(j.feature >= 22 for j in jdks.installed()):
        pytest.skip("no JDK 22 or newer on this machine (java.lang.foreign is final in 22)")


@pytest.fixture
def suite_dict() -> dict[str, Any]:
    """The default suite as a dict, fresh for each test to break in its own way."""
    return copy.deepcopy(tomllib.loads((SUITES_DIR / "default.toml").read_text()))


@pytest.fixture(scope="session", autouse=True)
def _worker_run_lock(worker_id: str) -> Iterator[None]:
    """This worker's in-process runs lock `build/.run.lock.<worker>` instead of the machine's lock."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "RUN_LOCK", f"{pipeline.RUN_LOCK}.{worker_id}")
        yield


# Variables their owners set on purpose: pytest names the running test; inductor writes its default cache
# folder into the environment on first use, once per process.
OWN_VARIABLES = {"PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR"}


@pytest.fixture(autouse=True)
def _environment_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves os.environ changed: a later test in the same worker would inherit it (a PATH
    without valgrind made an instructions test fail far from the cause). Runs after the test's own monkeypatch
    has undone its changes, since it is set up before it."""
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    changed = sorted(k for k in (before.keys() | after.keys()) - OWN_VARIABLES if before.get(k) != after.get(k))
    if changed:
        for k in changed:
            if k in before:
                os.environ[k] = before[k]
            else:
                del os.environ[k]
        pytest.fail(f"{request.node.nodeid} left the environment changed: {', '.join(changed)}", pytrace=False)
