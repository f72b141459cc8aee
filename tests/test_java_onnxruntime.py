"""java-onnxruntime (java/runner/OnnxRuntime.java.j2): ONNX Runtime's Java API on the ONNX export, without the
bridge. Outputs against the eager model, the thread settings recorded as set, and its own refusals.

The runner is built the harness's way (harness.build.build_runner, cached under build/); the export is the
harness's own (harness.exports) of a seeded 2-8-8-1 MLP.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch

from harness.build import Built, build_runner
from harness.exports import EXPORTERS
from harness.java_build import RUNNER_DEPENDENCIES, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import RESULT_SCHEMA, make_job
from tests.seed_model import MyNN

RUNNER = "java-onnxruntime"
SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def built() -> Built:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    b = build_runner(RUNNERS[RUNNER], SPEC, BUILD_DIR)
    assert b.status == "ok", b.reason
    return b


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """model.onnx exported by the harness's exporter from a seeded MyNN, and the module itself."""
    work = tmp_path_factory.mktemp("java-ort")
    torch.manual_seed(0)
    net = MyNN().eval()
    EXPORTERS["model.onnx"](net, SPEC, work / "model.onnx", np.zeros((1, 2), dtype="<f4"))
    return work, net


def run(b: Built, job_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*b.argv, str(job_path)], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def write_job(d: Path, model_dir: Path, *, batch: int = 1, count: int = 48, calls: int = 48, block: int = 8,
              **changes: Any) -> tuple[Path, dict[str, Any], np.ndarray]:
    inputs = np.random.default_rng(batch).uniform(-10, 10, size=(count, 2)).astype("<f4")
    path = make_job(d, RUNNER, model_dir, inputs, model_file="model.onnx", layers=(2, 8, 8, 1), batch=batch,
                    calls=calls, warmup=3, block=block, bare_rounds=2, grad_mode="n/a", **changes)
    return path, json.loads(path.read_text()), inputs


@pytest.mark.parametrize("batch", [1, 4])
def test_outputs_match_the_model_and_threads_are_recorded_as_set(
    built: Built, model: tuple[Path, torch.nn.Module], tmp_path: Path, batch: int
) -> None:
    model_dir, net = model
    job_path, job, inputs = write_job(tmp_path, model_dir, batch=batch, calls=48 // batch, block=2)
    proc = run(built, job_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    with torch.no_grad():
        expected = net(torch.from_numpy(inputs[: job["slots"] * batch])).numpy().reshape(-1)
    outputs = np.fromfile(job["outputs"], dtype="<f4")
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    assert np.count_nonzero(expected) > expected.size // 4

    result = json.loads(Path(job["result"]).read_text())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (result["libtorch_version"], result["libtorch_path"], result["grad_mode"]) == (None, None, "n/a")
    assert (result["threads"], result["interop_threads"]) == (1, 1)
    extra = result["extra"]
    assert extra["threads_read_back"] is False and "cannot read them back" in extra["threads_source"]
    version = RUNNER_DEPENDENCIES["java/runner/OnnxRuntime.java.j2"][0][2]
    assert extra["onnxruntime"] == version and extra["onnxruntime_native_version"] == version
    assert extra["onnx_input"] == f"x [{batch}, 2]" and extra["pinned_output"] is True
    assert not any(a.startswith("-Djava.library.path") for a in extra["jvm_input_arguments"])  # no bridge
    assert np.fromfile(job["timings"], dtype="<i8").size == job["calls"] // 2


def test_two_threads_are_passed_on(built: Built, model: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    job_path, job, _ = write_job(tmp_path, model[0], threads=2)
    proc = run(built, job_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(Path(job["result"]).read_text())["threads"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grad_mode": "inference"}, "'grad_mode' is inference: ONNX Runtime has no autograd, expected 'n/a'"),
        ({"model_file": "/nonexistent/model.onnx"}, "'model_file' /nonexistent/model.onnx does not exist"),
        ({"options": {"channels_last": True}}, "'channels_last' is an option java-onnxruntime does not support"),
    ],
)
def test_a_bad_job_is_refused_in_one_line(
    built: Built, model: tuple[Path, torch.nn.Module], tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    job_path, job, _ = write_job(tmp_path, model[0])
    job_path.write_text(json.dumps(job | change))
    proc = run(built, job_path)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith(f"job {job_path}: {message}") and "\n" not in line, proc.stderr
    assert not Path(job["result"]).exists()
