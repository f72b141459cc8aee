"""The tiny suite's model with the AOTInductor packages a test file needs, and running a built runner on a job.

Every file that tests a runner on packages wants the same thing: the tiny suite trained once into build/ and the
packages made there (cached: one AOTInductor compile takes tens of seconds, so files share them). Order matters on
a cold cache: torch 2.13's inductor ignores the minimal-interface config unless the plain package comes first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from harness import exports
from harness.build import Built, build_runner
from harness.models import ModelFiles, train_and_export
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import load_suite
from tests.conftest import TESTS, TINY

# A user's model with two inputs: the factory in tests/user_factory.py (float32 [1, 4] and int64 [1, 3] ids in, a
# tuple out). Every test file that runs it uses these two, so its exports (AOTInductor packages) are the cached ones.
USER_MODEL = {"name": "TwoInTwoOut", "kind": "factory", "path": str(TESTS / "user_factory.py") + ":build"}
USER_INPUTS = {"count": 8, "tensors": [{"shape": [1, 4]},
                                       {"shape": [1, 3], "dtype": "int64", "distribution": "integers",
                                        "low": 0, "high": 9}]}


def tiny_with(packages: tuple[str, ...]) -> tuple[Suite, ModelFiles]:
    """The tiny suite and its model files in build/, with `packages` (export file names) made beside them."""
    suite = load_suite(str(TINY))
    files = train_and_export(suite.model, suite.inputs, BUILD_DIR)
    calibration = np.zeros((1, suite.model.sample_size), dtype=np.float32)
    problem = exports.ensure_exports(packages, suite.model, files, calibration)
    assert problem is None, problem
    return suite, files


def built_ok(rid: str, suite: Suite) -> Built:
    """Runner `rid` built for the suite's model in build/ (its build id's, for a variant); fails with the reason."""
    b = build_runner(RUNNERS[RUNNERS[rid].build_id], suite.model, BUILD_DIR)
    assert b.status == "ok", f"{rid}: {b.reason}"
    return b


def run_job(b: Built, job: Path, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One process of the built runner on `job`, as the harness starts it (its argv, in its source folder)."""
    return subprocess.run([*b.argv, str(job)], cwd=b.source_dir, capture_output=True, text=True, timeout=timeout,
                          check=False)
