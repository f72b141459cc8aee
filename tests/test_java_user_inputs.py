"""The Java runners on a user's model (docs/runner-contract.md, "Several inputs, any dtype"): several input
tensors of several dtypes (input_tensors, rule 10), and tuple, list and dict outputs flattened in pytree order
to float32; against the same model in Python, flattened the same way.

Models made here: TorchScript models of a float32 and an int64 input returning a tuple (with a list inside)
and a dict {"b", "a"} (for java-torchscript and java-torchscript-reuse), an AOTInductor package of a float64
and a bool input returning two tensors (java-aoti; compiled once per module, tens of seconds) and an ONNX
export of a float32, an int64 and a bool input returning two tensors (java-onnxruntime). The runners are built
the harness's way (harness.build.build_runner, cached under build/). Refusals: a bool input to the TorchScript
runners (org.pytorch.Tensor has no bool dtype), a bad rule-10 offset, an inputs file of the wrong size and a
model returning something that is not a tensor.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch
from torch.utils._pytree import tree_leaves

from harness.build import Built, build_runner
from harness.java_build import java_env, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import RESULT_SCHEMA, make_job

TORCHSCRIPT = ("java-torchscript", "java-torchscript-reuse")
RUNNER_IDS = (*TORCHSCRIPT, "java-aoti", "java-onnxruntime")
COUNT, CALLS = 16, 24  # 24 calls wrap over 16 slots
TIMEOUT_S = 120
# Java and Python run the same libtorch kernels (TorchScript, the same AOTInductor package): equal up to
# float32 rounding; ONNX Runtime against eager PyTorch: its own kernels, within 1e-5
SAME_KERNELS = {"rtol": 1e-6, "atol": 1e-6}
OTHER_KERNELS = {"rtol": 1e-5, "atol": 1e-5}
NO_BOOL = "org.pytorch.Tensor (pytorch_java_only) has no bool dtype"


class TupleModel(torch.nn.Module):
    """x float32 [1, 4], idx int64 [1, 3] -> (float32 [1, 2], [float32 [1, 3], int64 [1, 3], bool [1, 3]]): 11
    values (the bridge hands the bool tensor over as uint8 0/1)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.lin(x), [idx.float() * 0.5 + x[:, :3], idx * 2 + 1, idx > 4]


class DictModel(torch.nn.Module):
    """x float32 [1, 4], idx int64 [1, 3] -> {"b": float32 [1, 4], "a": float32 [1, 3]}: 7 values, b first."""

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"b": x * 2.0, "a": idx.float() - x[:, 1:]}


class PairModel(torch.nn.Module):
    """One float32 input x [1, 4] (the inputs' fast path) -> (float32 [1, 4], float32 [1]): 5 values."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * 3.0, x.sum(dim=1)


class NotATensor(torch.nn.Module):
    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        return x, 3


class MixedModel(torch.nn.Module):
    """x float64 [1, 3], mask bool [1, 3] -> (float64 [1, 3], bool [1, 3]): 6 values."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.where(mask, x, -2.0 * x), mask & (x > 0)


class OnnxModel(torch.nn.Module):
    """x float32 [1, 4], idx int64 [1, 3], flag bool [1, 3] -> (float32 [1, 3], int64 [1, 3]): 6 values."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, idx: torch.Tensor, flag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.lin(x) + idx.float()
        return torch.where(flag, y, -y), idx * 3


@pytest.fixture(scope="module")
def runners() -> dict[str, Built]:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    built = {}
    for name in RUNNER_IDS:
        b = build_runner(RUNNERS[name], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)
        if b.status == "skipped":
            pytest.skip(f"{name}: {b.reason}")
        assert b.status == "ok", f"{name}: {b.reason}"
        built[name] = b
    return built


def inputs(*specs: tuple[str, tuple[int, ...]]) -> list[np.ndarray]:
    """Seeded inputs, [COUNT, *shape] each: floats in [-5, 5), int64 in [0, 10), bools."""
    rng = np.random.default_rng(7)
    out = []
    for dtype, shape in specs:
        size = (COUNT, *shape)
        if dtype == "bool":
            out.append(rng.integers(0, 2, size=size).astype(bool))
        elif dtype == "int64":
            out.append(rng.integers(0, 10, size=size).astype("<i8"))
        else:
            out.append(rng.uniform(-5, 5, size=size).astype(dtype))
    return out


@pytest.fixture(scope="module")
def torchscript_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tuple.ts.pt, dict.ts.pt, pair.ts.pt and notensor.ts.pt (scripted: a trace cannot return a dict or an int)."""
    work = tmp_path_factory.mktemp("java-user-ts")
    torch.manual_seed(0)
    for name, model in (("tuple", TupleModel()), ("dict", DictModel()), ("pair", PairModel()),
                        ("notensor", NotATensor())):
        torch.jit.script(model.eval()).save(str(work / f"{name}.ts.pt"))
    return work


@pytest.fixture(scope="module")
def aoti_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mixed.pt2: MixedModel exported for its exact input shapes and compiled by AOTInductor (once)."""
    work = tmp_path_factory.mktemp("java-user-aoti")
    example = (torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.bool))
    program = torch.export.export(MixedModel().eval(), example)
    return Path(torch._inductor.aoti_compile_and_package(program, package_path=str(work / "mixed.pt2")))


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """By the TorchScript-based exporter (dynamo=False, as harness/exports.py): three.onnx, OnnxModel with static
    shapes, and one.onnx, a Linear(4, 2) of one float32 input with a dynamic first axis (the runner sizes its
    one output's from output_size)."""
    work = tmp_path_factory.mktemp("java-user-onnx")
    torch.manual_seed(0)
    net, lin = OnnxModel().eval(), torch.nn.Linear(4, 2).eval()
    example = (torch.zeros(1, 4), torch.zeros(1, 3, dtype=torch.int64), torch.zeros(1, 3, dtype=torch.bool))
    with warnings.catch_warnings():  # the exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(work / "three.onnx"), input_names=["x", "idx", "flag"],
                          output_names=["y", "k"], dynamo=False)
        torch.onnx.export(lin, (torch.zeros(1, 4),), str(work / "one.onnx"), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return work, net, lin


def flat(result: Any) -> np.ndarray:
    """The contract's flattening: pytree leaves in order, each float32, row-major, concatenated."""
    return np.concatenate([t.detach().to(torch.float32).contiguous().reshape(-1).numpy() for t in tree_leaves(result)])


def reference(call: Any, arrays: list[np.ndarray], slots: int) -> np.ndarray:
    """What `call` gives for each slot's samples (batch 1: sample s of every tensor), flattened."""
    with torch.inference_mode():
        return np.concatenate([flat(call(*(torch.from_numpy(a[s].copy()) for a in arrays))) for s in range(slots)])


def run(built: Built, job_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **java_env(threads=1, interop_threads=1, grad_mode="inference")}
    return subprocess.run([*built.argv, str(job_path)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)


def user_job(d: Path, runner: str, model_file: Path, arrays: list[np.ndarray], output_size: int, *,
             block: int = 1, kind: str = "torchscript", **changes: Any) -> tuple[Path, dict[str, Any]]:
    grad_mode = "n/a" if runner == "java-onnxruntime" else "inference"
    path = make_job(d, runner, model_file.parent, arrays[0], model_file=model_file.name, kind=kind,
                    output_shape=(output_size,), calls=CALLS, warmup=2, block=block, grad_mode=grad_mode,
                    more_inputs=tuple(arrays[1:]), **changes)
    return path, json.loads(path.read_text())


def check_run(built: Built, job_path: Path, job: dict[str, Any], expected: np.ndarray,
              tolerance: dict[str, float]) -> dict[str, Any]:
    """The runner succeeds, its outputs equal `expected` (slot by slot) and its result is valid; the result."""
    proc = run(built, job_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = np.fromfile(job["outputs"], dtype="<f4")
    assert outputs.shape == (job["slots"] * job["output_size"],) == expected.shape
    np.testing.assert_allclose(outputs, expected, **tolerance)
    assert np.fromfile(job["timings"], dtype="<i8").size == job["calls"] // job["block"]
    result = json.loads(Path(job["result"]).read_text())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (result["runner"], result["status"]) == (job["runner"], "ok")
    return result


TWO_INPUTS = (("float32", (1, 4)), ("int64", (1, 3)))


@pytest.mark.parametrize(("model", "specs", "output_size"),
                         [("tuple", TWO_INPUTS, 11), ("dict", TWO_INPUTS, 7), ("pair", TWO_INPUTS[:1], 5)])
@pytest.mark.parametrize("runner", TORCHSCRIPT)
def test_torchscript_float_and_int64_inputs_tuple_and_dict_outputs(
    runners: dict[str, Built], torchscript_models: Path, tmp_path: Path, runner: str, model: str,
    specs: tuple[tuple[str, tuple[int, ...]], ...], output_size: int,
) -> None:
    model_file = torchscript_models / f"{model}.ts.pt"
    arrays = inputs(*specs)
    job_path, job = user_job(tmp_path, runner, model_file, arrays, output_size, block=4)
    assert [t["dtype"] for t in job["input_tensors"]] == [dtype for dtype, _ in specs]
    expected = reference(torch.jit.load(str(model_file)), arrays, job["slots"])
    if model == "dict":  # b's 4 values come first, as inserted (not sorted by key)
        x = arrays[0][: job["slots"]].reshape(-1, 4)
        np.testing.assert_allclose(expected.reshape(-1, 7)[:, :4], 2 * x)
    result = check_run(runners[runner], job_path, job, expected, SAME_KERNELS)
    assert result["extra"]["reuse_buffer"] is runner.endswith("-reuse")


def test_aoti_float64_and_bool_inputs_two_outputs(
    runners: dict[str, Built], aoti_package: Path, tmp_path: Path
) -> None:
    arrays = inputs(("float64", (1, 3)), ("bool", (1, 3)))
    job_path, job = user_job(tmp_path, "java-aoti", aoti_package, arrays, 6, kind="pt2")
    assert job["input_tensors"][1]["offset"] == COUNT * 3 * 8  # the bool tensor right after the float64 one
    expected = reference(torch._inductor.aoti_load_package(str(aoti_package)), arrays, job["slots"])
    assert set(np.unique(expected.reshape(-1, 6)[:, 3:])) == {0.0, 1.0}  # the bool output, as 0 and 1
    result = check_run(runners["java-aoti"], job_path, job, expected, SAME_KERNELS)
    assert result["extra"]["aoti_input_shape"] == "float64 [1, 3], bool [1, 3]"


def test_onnxruntime_float_int64_and_bool_inputs_two_outputs(
    runners: dict[str, Built], onnx_models: tuple[Path, torch.nn.Module, torch.nn.Module], tmp_path: Path
) -> None:
    work, net, _ = onnx_models
    arrays = inputs(("float32", (1, 4)), ("int64", (1, 3)), ("bool", (1, 3)))
    job_path, job = user_job(tmp_path, "java-onnxruntime", work / "three.onnx", arrays, 6, block=2)
    expected = reference(net, arrays, job["slots"])
    result = check_run(runners["java-onnxruntime"], job_path, job, expected, OTHER_KERNELS)
    assert result["extra"]["onnx_input"] == "x [1, 4], idx [1, 3], flag [1, 3]"


def test_onnxruntime_one_float_input_of_a_users_model_with_a_dynamic_axis(
    runners: dict[str, Built], onnx_models: tuple[Path, torch.nn.Module, torch.nn.Module], tmp_path: Path
) -> None:
    work, _, lin = onnx_models
    arrays = inputs(("float32", (1, 4)))
    job_path, job = user_job(tmp_path, "java-onnxruntime", work / "one.onnx", arrays, 2, kind="factory")
    expected = reference(lin, arrays, job["slots"])
    result = check_run(runners["java-onnxruntime"], job_path, job, expected, OTHER_KERNELS)
    assert result["extra"]["onnx_input"] == "x [1, 4]"  # input_shape as it is, not [batch, *sample_shape]


@pytest.mark.parametrize("runner", TORCHSCRIPT)
def test_a_bool_input_is_refused_by_the_torchscript_runners(
    runners: dict[str, Built], torchscript_models: Path, tmp_path: Path, runner: str
) -> None:
    arrays = inputs(("float32", (1, 4)), ("bool", (1, 3)))
    job_path, job = user_job(tmp_path, runner, torchscript_models / "tuple.ts.pt", arrays, 11)
    proc = run(runners[runner], job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"job {job_path}: 'input_tensors'[1] is a bool input: {NO_BOOL}"
    assert not Path(job["result"]).exists()


def test_a_bad_offset_is_refused_by_rule_10(runners: dict[str, Built], torchscript_models: Path,
                                             tmp_path: Path) -> None:
    arrays = inputs(("float32", (1, 4)), ("int64", (1, 3)))
    job_path, job = user_job(tmp_path, "java-torchscript", torchscript_models / "tuple.ts.pt", arrays, 11)
    start = job["input_tensors"][1]["offset"]
    job["input_tensors"][1]["offset"] = start + 8
    job_path.write_text(json.dumps(job))
    proc = run(runners["java-torchscript"], job_path)
    assert proc.returncode == 1
    expected = f"job {job_path}: 'input_tensors'[1] offset is {start + 8}, expected {start} (rule 10)"
    assert proc.stderr.strip() == expected
    assert not Path(job["result"]).exists()


def test_an_inputs_file_of_another_size_is_refused(runners: dict[str, Built], torchscript_models: Path,
                                                   tmp_path: Path) -> None:
    arrays = inputs(("float32", (1, 4)), ("int64", (1, 3)))
    job_path, job = user_job(tmp_path, "java-torchscript", torchscript_models / "tuple.ts.pt", arrays, 11)
    inputs_file = Path(job["inputs"])
    size = inputs_file.stat().st_size
    inputs_file.write_bytes(inputs_file.read_bytes() + b"\0" * 8)  # padding after the last tensor
    proc = run(runners["java-torchscript"], job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"job {job_path}: 'inputs' {inputs_file} holds {size + 8} bytes, expected {size} "
                                   "(input_tensors end there, rule 10)")
    assert not Path(job["result"]).exists()


def test_a_result_that_is_not_tensors_fails_naming_it(runners: dict[str, Built], torchscript_models: Path,
                                                      tmp_path: Path) -> None:
    arrays = inputs(("float32", (1, 4)), ("int64", (1, 3)))
    job_path, job = user_job(tmp_path, "java-torchscript", torchscript_models / "notensor.ts.pt", arrays, 4)
    proc = run(runners["java-torchscript"], job_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("the model returned a tuple holding an int 3, not a tensor or a tuple, list or "
                                   'dict of tensors (docs/runner-contract.md, "Several inputs, any dtype")')
    assert not Path(job["result"]).exists()
