"""The two Java runners (java/runner: BenchRuntime.java, Job.java and one template per variant) on the job keys
of docs/runner-contract.md: model_file, batch, input_shape, slots (calls wrapping over them), options; outputs
against TorchScript in Python.

The runners are built the harness's way (harness.build.build_runner, cached under build/); the models are
made here: a seeded 2-8-8-1 MLP and seed 003's Conv2d-BatchNorm2d-ReLU, that one also saved channels-last
(whose outputs the bridge hands over channels-last, and the runner must write as NCHW).
"""

from __future__ import annotations

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
from harness.java_build import java_env, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from harness.suite_file import load_suite
from tests.jobs import RESULT_SCHEMA, make_job
from tests.seed_model import MyNN

VARIANTS = ("java-torchscript", "java-torchscript-reuse")
MLP_SHAPE = ([2], [1])
CONV_SHAPE = ([3, 224, 224], [5, 222, 222])
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def runners() -> dict[str, Built]:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    built = {}
    for name in VARIANTS:
        b = build_runner(RUNNERS[name], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)
        if b.status == "skipped":
            pytest.skip(f"{name}: {b.reason}")
        assert b.status == "ok", f"{name}: {b.reason}"
        built[name] = b
    return built


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.ts.pt (MLP), conv.ts.pt and conv.cl.pt (the conv model saved channels-last)."""
    work = tmp_path_factory.mktemp("java-runner-models")
    torch.manual_seed(0)
    with torch.no_grad():
        torch.jit.trace(MyNN().eval(), torch.zeros(2)).save(str(work / "model.ts.pt"))
        conv = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, bias=False), torch.nn.BatchNorm2d(5), torch.nn.ReLU())
        bn = conv[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        conv.eval()
        example = torch.randn(1, 3, 224, 224)
        torch.jit.trace(conv, example).save(str(work / "conv.ts.pt"))
        conv = conv.to(memory_format=torch.channels_last)
        torch.jit.trace(conv, example.contiguous(memory_format=torch.channels_last)).save(str(work / "conv.cl.pt"))
    return work


def reference(model_file: Path, samples: np.ndarray, batch: int, input_shape: list[int]) -> np.ndarray:
    """What TorchScript in Python gives for the same calls, batch by batch, flattened in NCHW order."""
    module = torch.jit.load(str(model_file))
    outs = []
    with torch.inference_mode():
        for s in range(len(samples) // batch):
            x = torch.from_numpy(samples[s * batch : (s + 1) * batch].copy()).reshape(input_shape)
            outs.append(module(x).contiguous().reshape(-1).numpy())
    return np.concatenate(outs)


def write_job(
    work: Path, runner: str, model_file: Path, shapes: tuple[list[int], list[int]], *, batch: int,
    input_count: int, calls: int, block: int, warmup_calls: int = 3, options: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any], np.ndarray]:
    """A job (tests/jobs.py) over seeded inputs in its own folder; returns its path, its keys and the inputs."""
    sample_shape, output_shape = shapes
    rng = np.random.default_rng(input_count * 1000 + batch)
    inputs = rng.uniform(-10, 10, size=(input_count, *sample_shape)).astype("<f4")
    conv = len(sample_shape) == 3
    path = make_job(
        work / f"{runner}-{model_file.stem}-b{batch}", runner, model_file.parent, inputs, model_file=model_file.name,
        kind="conv_bn_relu" if conv else "mlp", layers=() if conv else (2, 8, 8, 1), output_shape=tuple(output_shape),
        batch=batch, calls=calls, warmup=warmup_calls, block=block, bare_rounds=1, grad_mode="inference",
        options=options,
    )
    return path, json.loads(path.read_text()), inputs


def run(built: Built, job_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **java_env(threads=1, interop_threads=1, grad_mode="inference")}
    return subprocess.run(
        [*built.argv, str(job_path)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


CASES = {
    # name: (model file, shapes, batch, input_count, calls, block)
    "mlp-b1": ("model.ts.pt", MLP_SHAPE, 1, 64, 96, 8),  # the seed's shape [2]; 96 calls wrap over 64 slots
    "mlp-b16": ("model.ts.pt", MLP_SHAPE, 16, 72, 8, 2),  # [16, 2]; 4 slots (8 samples left over)
    "conv-b1": ("conv.ts.pt", CONV_SHAPE, 1, 2, 5, 1),  # [1, 3, 224, 224]; 5 calls over 2 slots
    "conv-cl-b1": ("conv.cl.pt", CONV_SHAPE, 1, 2, 5, 1),  # channels-last model: channels-last outputs
    "conv-cl-b2": ("conv.cl.pt", CONV_SHAPE, 2, 4, 4, 2),  # [2, 3, 224, 224], 2 slots
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runner", VARIANTS)
def test_outputs_match_torchscript_in_python(
    runners: dict[str, Built], models: Path, tmp_path: Path, runner: str, case: str
) -> None:
    file, shapes, batch, input_count, calls, block = CASES[case]
    model_file = models / file
    job_path, job, inputs = write_job(
        tmp_path, runner, model_file, shapes, batch=batch, input_count=input_count, calls=calls, block=block
    )
    proc = run(runners[runner], job_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    slots = job["slots"]
    outputs = np.fromfile(job["outputs"], dtype="<f4")
    assert outputs.shape == (slots * batch * job["output_size"],)
    expected = reference(model_file, inputs[: slots * batch], batch, job["input_shape"])
    assert np.count_nonzero(expected) > expected.size // 4  # not a trivial (all-ReLU-zero) reference
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)

    assert np.fromfile(job["timings"], dtype="<i8").shape == (calls // block,)
    assert np.fromfile(job["warmup_timings"], dtype="<i8").shape == (job["warmup_calls"],)
    result = json.loads(Path(job["result"]).read_text())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (result["runner"], result["status"]) == (runner, "ok")
    assert (result["calls"], result["block"], result["batch"]) == (calls, block, batch)
    assert result["bare_calls"] == calls and len(result["bare_ns"]) == 1 and result["bare_ns"][0] > 0
    assert result["peak_rss_kb"] > 10_000
    assert result["extra"]["model_file"] == str(model_file)
    assert result["extra"]["reuse_buffer"] is runner.endswith("-reuse")
    # the channels-last case must really take the reordering path
    expected_format = "CHANNELS_LAST" if case.startswith("conv-cl") else "CONTIGUOUS"
    assert result["extra"]["output_memory_format"] == expected_format


@pytest.mark.parametrize("runner", VARIANTS)
def test_an_option_is_refused_by_name(runners: dict[str, Built], models: Path, tmp_path: Path, runner: str) -> None:
    job_path, job, _ = write_job(
        tmp_path, runner, models / "model.ts.pt", MLP_SHAPE, batch=1, input_count=8, calls=8, block=1,
        options={"qengine": "fbgemm"},
    )
    proc = run(runners[runner], job_path)
    assert proc.returncode == 1
    supports = "channels_last, graph_optimizer" if runner == "java-torchscript-reuse" else "none"
    expected = f"job {job_path}: 'qengine' is an option {runner} does not support (it supports {supports})"
    assert proc.stderr.strip() == expected
    assert not Path(job["result"]).exists()


def test_graph_optimizer_runs_as_the_job_says(runners: dict[str, Built], models: Path, tmp_path: Path) -> None:
    """The option reaches the bridge by environment (the row's env_for); a bridge on the other setting fails."""
    job_path, job, inputs = write_job(
        tmp_path, "java-torchscript-reuse", models / "model.ts.pt", MLP_SHAPE, batch=1, input_count=8, calls=8,
        block=1, options={"graph_optimizer": True},
    )
    proc = run(runners["java-torchscript-reuse"], job_path)  # the official bridge's setting: optimizer off
    assert proc.returncode == 1
    assert "the job asks graph_optimizer=true but the bridge runs false" in proc.stderr
    assert not Path(job["result"]).exists()

    built = runners["java-torchscript-reuse"]
    assert built.env_for is not None
    suite = load_suite(None)
    choice = next(c for c in suite.runners if c.id == "java-torchscript-optimized")
    env = {**os.environ, **built.env_for(suite, choice)}
    assert env["PYTORCH_JNI_GRAPH_OPTIMIZER"] == "1"
    proc = subprocess.run([*built.argv, str(job_path)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(Path(job["result"]).read_text())
    assert result["extra"]["graph_optimizer"] is True
    expected = reference(models / "model.ts.pt", inputs[: job["slots"]], 1, job["input_shape"])
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), expected, rtol=1e-5, atol=1e-5)
    plain = next(c for c in suite.runners if c.id == "java-torchscript-reuse")
    assert built.env_for(suite, plain)["PYTORCH_JNI_GRAPH_OPTIMIZER"] == "0"


def test_channels_last_needs_a_4d_input(runners: dict[str, Built], models: Path, tmp_path: Path) -> None:
    job_path, job, _ = write_job(
        tmp_path, "java-torchscript-reuse", models / "model.ts.pt", MLP_SHAPE, batch=1, input_count=8, calls=8,
        block=1, options={"channels_last": True},
    )
    proc = run(runners["java-torchscript-reuse"], job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"job {job_path}: 'channels_last' needs a 4-D input_shape (N, C, H, W), "
                                   "the job's is [2]")
    assert not Path(job["result"]).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slots": 7}, "'slots' is 7, expected min(calls, input_count // batch) = 8"),
        ({"input_shape": [3]}, "'input_shape' [3] holds 3 floats, expected batch x sample_size = 1 x 2 = 2"),
        ({"sample_shape": [3]}, "'sample_size' is 2, expected the product of sample_shape [3] = 3"),
        ({"block": 3}, "'block' is 3, which does not divide calls = 8"),
        ({"bare_calls": -1}, "'bare_calls' breaks docs/schemas/job.schema.json (minimum at /bare_calls)"),
        ({"bare_rounds": 3}, "'bare_rounds' is 3, which must divide both calls / block = 8 and bare_calls = 8"),
        ({"inputs": "/nonexistent/inputs.bin"}, "'inputs' /nonexistent/inputs.bin does not exist"),
        # rule 10: input_tensors[0] is the job's one input, at offset 0
        ({"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [1, 2], "offset": 0}]},
         "'input_tensors'[0] has sample_shape [2] and shape [1, 2], expected the job's sample_shape [2] and "
         "input_shape [2] (rule 10)"),
        ({"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 8}]},
         "'input_tensors'[0] offset is 8, expected 0 (rule 10)"),
        ({"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0},
                            {"dtype": "int64", "sample_shape": [3], "shape": [2, 3], "offset": 64}]},
         "'input_tensors'[1] shape [2, 3] does not hold batch x its sample_shape = 1 x [3] (rule 10)"),
        ({"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0},
                            {"dtype": "int64", "sample_shape": [3], "shape": [3], "offset": 60}]},
         "'input_tensors'[1] offset is 60, expected 64 (rule 10)"),
        ({"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0},
                            {"dtype": "int64", "sample_shape": [3], "shape": [3], "offset": 64}]},
         "'inputs' "),  # the file holds the float32 tensor only: 64 bytes, not 64 + 8 x 3 x 8
    ],
)
def test_inconsistent_jobs_are_refused(
    runners: dict[str, Built], models: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    job_path, job, _ = write_job(
        tmp_path, "java-torchscript", models / "model.ts.pt", MLP_SHAPE, batch=1, input_count=8, calls=8, block=1
    )
    job_path.write_text(json.dumps(job | change))
    proc = run(runners["java-torchscript"], job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"job {job_path}: {message}"), proc.stderr  # one line, no stack trace
    assert "\n" not in proc.stderr.strip()
    assert not Path(job["result"]).exists()
