"""java-aoti (java/runner/Aoti.java.j2 on the bridge's bridge.AotiModel): an AOTInductor package run from Java.

The package is the bridge tests' fixture (java/bridge/tests/make_fixtures.py: a seeded 2-8-8-1 MLP exported
for input [2], compiled once into build/ and shared with tests/test_java_bridge.py), so this file compiles
nothing new; the runner is built the harness's way (harness.build.build_runner, cached under build/).
Outputs against the same package in Python, the bridge's settings read back, and the clear refusals.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch

from harness.build import Built, build_runner
from harness.java_build import BRIDGE_SOURCE, java_env, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import RESULT_SCHEMA, make_job

RUNNER = "java-aoti"
AOTI_CACHE = BUILD_DIR / "java-bridge-fixtures"  # tests/test_java_bridge.py's, the same compiled package
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def built() -> Built:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    b = build_runner(RUNNERS[RUNNER], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)
    assert b.status == "ok", b.reason
    return b


@pytest.fixture(scope="module")
def package() -> Path:
    """The folder holding aoti.pt2, aoti.inputs.bin and aoti.expected.bin (made once, then cached)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", BRIDGE_SOURCE / "tests" / "make_fixtures.py")
    assert spec and spec.loader
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    return fixtures.aoti_cached(AOTI_CACHE)


def run(b: Built, job_path: Path, grad_mode: str = "inference", threads: int = 1,
        tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **java_env(threads=threads, interop_threads=1, grad_mode=grad_mode),
           **({"TMPDIR": str(tmp)} if tmp else {})}
    return subprocess.run([*b.argv, str(job_path)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)


def write_job(d: Path, package: Path, *, grad_mode: str = "inference", threads: int = 1,
              **override: Any) -> tuple[Path, dict[str, Any]]:
    inputs = np.fromfile(package / "aoti.inputs.bin", dtype="<f4").reshape(-1, 2)
    path = make_job(d, RUNNER, package, inputs, model_file="aoti.pt2", layers=(2, 8, 8, 1), calls=96, warmup=3,
                    block=8, bare_rounds=3, grad_mode=grad_mode, threads=threads, override=override)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(("grad_mode", "threads"), [("inference", 1), ("no_grad", 2)])
def test_outputs_equal_the_package_in_python(
    built: Built, package: Path, tmp_path: Path, grad_mode: str, threads: int
) -> None:
    job_path, job = write_job(tmp_path, package, grad_mode=grad_mode, threads=threads)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = run(built, job_path, grad_mode, threads, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the loader's folder it extracted the package to is gone: the runner closed its model before System.exit
    assert not list(tmp.iterdir())
    expected = np.fromfile(package / "aoti.expected.bin", dtype="<f4")  # aoti_load_package's, per sample
    outputs = np.fromfile(job["outputs"], dtype="<f4")
    assert outputs.size == job["slots"] == expected.size
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)

    result = json.loads(Path(job["result"]).read_text())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (result["threads"], result["interop_threads"], result["grad_mode"]) == (threads, 1, grad_mode)
    assert result["libtorch_version"] == torch.__version__.split("+")[0]
    assert Path(result["libtorch_path"]).parent == Path(torch.__file__).parent / "lib"
    assert result["extra"]["aoti_input_shape"] == "[2]" and result["extra"]["reuse_buffer"] is True
    assert np.fromfile(job["timings"], dtype="<i8").size == 12 and len(result["bare_ns"]) == 3


def test_outputs_written_in_slots_are_collected_across_a_wrap(built: Built, package: Path, tmp_path: Path) -> None:
    """40 slots, runs of 32 calls: the second run wraps from slot 39 to 0, so its slots are copied from the
    bridge's buffer in two parts (a wrong split reads past the buffer); the outputs are still the package's."""
    inputs = np.fromfile(package / "aoti.inputs.bin", dtype="<f4").reshape(-1, 2)[:40]
    job_path = make_job(tmp_path, RUNNER, package, inputs, model_file="aoti.pt2", layers=(2, 8, 8, 1), calls=96,
                        warmup=3, block=8, bare_rounds=3, grad_mode="inference")
    job = json.loads(job_path.read_text())
    assert job["slots"] == 40
    proc = run(built, job_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = np.fromfile(package / "aoti.expected.bin", dtype="<f4")[:40]
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), expected, rtol=1e-5, atol=1e-5)


def test_a_missing_package_is_refused_in_one_line(built: Built, package: Path, tmp_path: Path) -> None:
    missing = tmp_path / "model.b1.pt2"
    job_path, job = write_job(tmp_path, package, model_file=str(missing))
    proc = run(built, job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"no AOTInductor package at {missing}: export one")
    assert not Path(job["result"]).exists()


def test_a_corrupt_package_is_refused_in_one_line(built: Built, package: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "model.b1.pt2"
    corrupt.write_bytes((package / "aoti.pt2").read_bytes()[:4096])
    job_path, job = write_job(tmp_path, package, model_file=str(corrupt))
    proc = run(built, job_path)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith(f"{corrupt} is not a loadable AOTInductor package: ") and "\n" not in line, line
    assert not Path(job["result"]).exists()


def test_a_package_of_another_shape_is_refused(built: Built, package: Path, tmp_path: Path) -> None:
    """A batch-4 job on the package exported for [2]: AOTInductor does not check the input's shape, the
    output's size gives it away."""
    inputs = np.fromfile(package / "aoti.inputs.bin", dtype="<f4").reshape(-1, 2)
    job_path = make_job(tmp_path, RUNNER, package, inputs, model_file="aoti.pt2", layers=(2, 8, 8, 1), batch=4,
                        calls=8, warmup=1, grad_mode="inference")
    proc = run(built, job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "bench.Runner: IllegalArgumentException: the output has 1 floats, a slot of the output buffer holds 4: "
        "export the package for input [4, 2] (AOTInductor does not check it)")
