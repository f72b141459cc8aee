"""The C++ runners against docs/runner-contract.md: batches, calls wrapping over slots, options, errors.

Jobs are written by tests/jobs.py (valid against docs/schemas/job.schema.json), not by harness.run, so these
tests pin the contract itself. The models are
made here too (a seeded MLP, a Conv-BN-ReLU and its channels-last twin) and the reference is the very same
TorchScript file run by Python on the same batches.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.build import build_runner, toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import make_job

LAYERS = (2, 8, 8, 1)
SPEC = ModelSpec("MyNN", layers=LAYERS)  # the default suite's spec, so the cached builds are shared
GRAD_MODE = {"cpp-api": "inference", "cpp-torchscript": "default", "cpp-raw": "n/a"}
TOL = {"atol": 1e-5, "rtol": 1e-5}
CONV_SAMPLE, CONV_OUTPUT = (3, 224, 224), (5, 222, 222)

_problem = toolchain_problem(RUNNERS["cpp-raw"])
if _problem:
    pytest.skip(f"the C++ runners cannot be built here: {_problem}", allow_module_level=True)


@pytest.fixture(scope="module")
def argv() -> dict[str, list[str]]:
    """Each runner built once (or found in BUILD_DIR's cache), as the argv to append a job to."""
    out = {}
    for rid in GRAD_MODE:
        built = build_runner(RUNNERS[rid], SPEC, BUILD_DIR)
        assert built.status == "ok", f"{rid}: {built.reason}"
        out[rid] = built.argv
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A seeded 2-8-8-1 ReLU MLP (traced file and weights.bin), a Conv-BN-ReLU and its channels-last twin."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    ).eval()
    torch.jit.trace(mlp, torch.ones(2)).save(str(d / "model.ts.pt"))
    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    # weights.bin as the contract defines it: per layer, weight [out, in] row-major, then bias.
    np.concatenate([p.detach().numpy().ravel() for m in linears for p in (m.weight, m.bias)]).astype("<f4").tofile(
        d / "weights.bin"
    )

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, bias=False), torch.nn.BatchNorm2d(5), torch.nn.ReLU())
    with torch.no_grad():  # statistics far from the defaults, so batch norm is not the identity
        bn = conv[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    conv.eval()
    example = torch.randn(1, *CONV_SAMPLE)
    torch.jit.trace(conv, example).save(str(d / "conv.ts.pt"))
    conv_cl = conv.to(memory_format=torch.channels_last)
    torch.jit.trace(conv_cl, example.contiguous(memory_format=torch.channels_last)).save(str(d / "conv.cl.pt"))
    return {
        "mlp": d / "model.ts.pt", "weights": d / "weights.bin", "conv": d / "conv.ts.pt", "conv_cl": d / "conv.cl.pt"
    }


def _inputs(n: int, sample_shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-10, 10, size=(n, *sample_shape)).astype("<f4")


def _job(d: Path, rid: str, model_file: Path, x: np.ndarray, *, kind: str = "mlp", **kw: Any) -> Path:
    """A complete job (tests/jobs.py: every key of the contract, schema-valid) loading model_file, over x."""
    return make_job(d, rid, model_file.parent, x, model_file=model_file.name, kind=kind,
                    layers=LAYERS if kind.startswith("mlp") else (), grad_mode=GRAD_MODE[rid], warmup=3, **kw)


def _break(job: Path, change: dict[str, Any]) -> Path:
    """The job with `change` written over it as it is, after make_job built and checked it: some of these keys
    (batch, options, ...) are make_job's own arguments, which it would use to build a valid job instead."""
    spec = json.loads(job.read_text())
    spec.update(change)
    job.write_text(json.dumps(spec))
    return job


def _run(argv: list[str], job: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, str(job)], capture_output=True, text=True, timeout=300, check=False)


def _ok(argv: list[str], job: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Runs a job that must succeed: its outputs (float32, as written) and its result JSON."""
    p = _run(argv, job)
    assert p.returncode == 0, p.stderr
    spec = json.loads(job.read_text())
    result = json.loads(Path(spec["result"]).read_text())
    assert result["status"] == "ok" and result["batch"] == spec["batch"] and result["calls"] == spec["calls"]
    assert result["extra"]["options"] == spec["options"]
    assert len(np.fromfile(spec["timings"], dtype="<i8")) == spec["calls"] // spec["block"]
    assert result["bare_calls"] == spec["bare_calls"] and len(result["bare_ns"]) == spec["bare_rounds"]
    assert all(ns > 0 for ns in result["bare_ns"])
    assert result["peak_rss_kb"] > 500  # its own VmHWM, read from /proc/self/status
    return np.fromfile(spec["outputs"], dtype="<f4"), result


def _reference(model_file: Path, job: Path, branch: bool = False) -> np.ndarray:
    """What Python computes for the job's slots: slot s is the file run on batch s, of shape input_shape."""
    spec = json.loads(job.read_text())
    x = np.fromfile(spec["inputs"], dtype="<f4")
    step = spec["batch"] * spec["sample_size"]
    model = torch.jit.load(str(model_file))
    out = []
    with torch.no_grad():
        for s in range(spec["slots"]):
            xb = torch.from_numpy(x[s * step : (s + 1) * step]).reshape(spec["input_shape"])
            y = model(xb)
            if branch and xb.sum() <= 0:  # mlp_branch: the whole call's input decides
                y = -y
            out.append(y.contiguous().reshape(-1).numpy())
    return np.concatenate(out)


def _fails(argv: list[str], job: Path, *needles: str) -> str:
    """Runs a job that must fail: exit status 1, one line on stderr holding every needle, no result."""
    p = _run(argv, job)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for needle in needles:
        assert needle in lines[0]
    assert not Path(json.loads(job.read_text())["result"]).exists()
    return lines[0]


@pytest.mark.parametrize(("rid", "batch"), [
    ("cpp-api", 1), ("cpp-torchscript", 1), ("cpp-raw", 1), ("cpp-api", 16), ("cpp-torchscript", 16), ("cpp-raw", 16),
])
def test_mlp_batches_wrap_over_slots(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path,
                                     rid: str, batch: int) -> None:
    """Batch 1 is the seed's [2] per call; calls > slots wrap; input_count need not be a multiple of batch."""
    model_file = models["mlp"] if rid == "cpp-torchscript" else models["weights"]
    x = _inputs(10 * batch + batch // 2, (2,), seed=batch)  # 10 whole batches and an unused half one
    job = _job(tmp_path, rid, model_file, x, batch=batch, calls=30, block=10 if rid == "cpp-raw" else 1, bare_rounds=3)
    got, _ = _ok(argv[rid], job)
    assert got.shape == (10 * batch,)  # slots x batch x output_size, not calls x ...
    np.testing.assert_allclose(got, _reference(models["mlp"], job), **TOL)


@pytest.mark.parametrize("rid", ["cpp-api", "cpp-torchscript"])
@pytest.mark.parametrize("options", [{"input_build": "vstack"}, {"select": "mask"}, {"select": "index"}],
                         ids=["vstack", "mask", "index"])
def test_input_options_keep_the_outputs(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path,
                                        rid: str, options: dict[str, str]) -> None:
    model_file = models["mlp"] if rid == "cpp-torchscript" else models["weights"]
    job = _job(tmp_path, rid, model_file, _inputs(64, (2,), seed=3), batch=8, calls=16, options=options)
    got, result = _ok(argv[rid], job)
    np.testing.assert_allclose(got, _reference(models["mlp"], job), **TOL)
    described = result["extra"]["input"]
    assert ("vstack" in described) == (options.get("input_build") == "vstack")
    assert ("index(" in described) == (options.get("select") == "mask")
    assert ("index_select" in described) == (options.get("select") == "index")


@pytest.mark.parametrize("batch", [1, 16])
def test_api_columns_layout_keeps_the_outputs(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path,
                                              batch: int) -> None:
    """layout = columns computes W·Xᵀ + b: the same outputs, row-major, at the seed's [2] and at [16, 2]."""
    job = _job(tmp_path, "cpp-api", models["weights"], _inputs(64, (2,), seed=6), batch=batch,
               options={"layout": "columns"})
    got, result = _ok(argv["cpp-api"], job)
    np.testing.assert_allclose(got, _reference(models["mlp"], job), **TOL)
    assert result["extra"]["layout"].startswith("columns")


@pytest.mark.parametrize(("grad_mode", "parameters"), [
    ("inference", "inference tensors, requires_grad"), ("default", "normal tensors, requires_grad"),
])
def test_api_builds_its_module_under_the_jobs_grad_mode(argv: dict[str, list[str]], models: dict[str, Path],
                                                        tmp_path: Path, grad_mode: str, parameters: str) -> None:
    """As the seed did (its InferenceMode guard came before make_shared and torch::load): parameters made
    outside the guard are normal tensors, whose per-call views cost ~4,100 instructions a call more."""
    job = make_job(tmp_path, "cpp-api", models["weights"].parent, _inputs(8, (2,), seed=7),
                   model_file=models["weights"].name, layers=LAYERS, grad_mode=grad_mode, warmup=3)
    got, result = _ok(argv["cpp-api"], job)
    np.testing.assert_allclose(got, _reference(models["mlp"], job), **TOL)
    assert result["grad_mode"] == grad_mode  # as libtorch reported it inside the guard
    assert result["extra"]["parameters"] == parameters


def test_vstack_at_batch_one_is_viewed_as_the_seed_shape(argv: dict[str, list[str]], models: dict[str, Path],
                                                         tmp_path: Path) -> None:
    job = _job(tmp_path, "cpp-api", models["weights"], _inputs(8, (2,), seed=4), options={"input_build": "vstack"})
    got, _ = _ok(argv["cpp-api"], job)
    np.testing.assert_allclose(got, _reference(models["mlp"], job), **TOL)


def test_api_runs_the_branch_per_call(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path) -> None:
    """mlp_branch: C++ runs the data-dependent branch on each call's whole input, as Python's `if x.sum() <= 0`."""
    x = _inputs(40, (2,), seed=5)
    job = _job(tmp_path, "cpp-api", models["weights"], x, batch=4, kind="mlp_branch")
    got, _ = _ok(argv["cpp-api"], job)
    sums = x.reshape(10, -1).sum(axis=1)
    assert (sums > 0).any() and (sums <= 0).any()
    np.testing.assert_allclose(got, _reference(models["mlp"], job, branch=True), **TOL)


def test_conv_wraps_over_two_slots(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path) -> None:
    x = _inputs(2, CONV_SAMPLE, seed=6)
    job = _job(tmp_path, "cpp-torchscript", models["conv"], x, calls=5, kind="conv_bn_relu", output_shape=CONV_OUTPUT)
    assert json.loads(job.read_text())["input_shape"] == [1, *CONV_SAMPLE]  # an image is always [N, C, H, W]
    got, _ = _ok(argv["cpp-torchscript"], job)
    assert got.shape == (2 * int(np.prod(CONV_OUTPUT)),)
    np.testing.assert_allclose(got, _reference(models["conv"], job), **TOL)


def test_channels_last_conv(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path) -> None:
    """The channels-last model returns NHWC strides: the runner must still write contiguous NCHW outputs."""
    x = _inputs(2, CONV_SAMPLE, seed=7)
    cl = torch.jit.load(str(models["conv_cl"]))
    with torch.no_grad():
        assert not cl(torch.from_numpy(x[:1]).contiguous(memory_format=torch.channels_last)).is_contiguous()
    job = _job(tmp_path, "cpp-torchscript", models["conv_cl"], x, calls=2, kind="conv_bn_relu",
               output_shape=CONV_OUTPUT, options={"channels_last": True})
    got, _ = _ok(argv["cpp-torchscript"], job)
    np.testing.assert_allclose(got, _reference(models["conv"], job), **TOL)


def test_qengine_is_set(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path) -> None:
    engine = next(e for e in torch.backends.quantized.supported_engines if e != "none")
    job = _job(tmp_path, "cpp-torchscript", models["mlp"], _inputs(4, (2,), seed=8), options={"qengine": engine})
    _, result = _ok(argv["cpp-torchscript"], job)
    assert result["extra"]["qengine"] == engine


# The job checks shared by all three (runner_common.hpp: the schema, then the nine rules) are exercised through
# cpp-raw, which starts in milliseconds; a libtorch runner takes most of a second just to load the library.
# tests/test_job_rules.py feeds the same bad jobs to every runtime; these pin the C++ messages and the
# runner-specific checks that come after the rules.
@pytest.mark.parametrize(("rid", "change", "needles"), [
    ("cpp-raw", {"options": {"bogus": 1}}, ("'bogus' in 'options'", "not a key of docs/schemas/job.schema.json")),
    ("cpp-raw", {"options": {"select": "mask"}}, ("option 'select'", "not supported by cpp-raw", "supported: none")),
    ("cpp-raw", {"slots": 7}, ("'slots' is 7", "min(calls, input_count // batch) = min(8, 8 // 1) = 8")),
    ("cpp-raw", {"slots": 9}, ("'slots' is 9", "= 8")),
    ("cpp-raw", {"input_shape": [2, 2]}, ("'input_shape' is [2, 2] (4 floats)", "1 x 2 = 2 floats")),
    ("cpp-raw", {"sample_shape": [3]}, ("'sample_size' is 2", "sample_shape [3] = 3")),
    ("cpp-raw", {"output_size": 3}, ("'output_size' is 3", "output_shape [1] = 1")),
    ("cpp-raw", {"batch": 9, "input_shape": [9, 2]}, ("'input_count' is 8, less than batch = 9",)),
    ("cpp-raw", {"calls": 9, "block": 2}, ("'block' is 2", "calls = 9")),
    ("cpp-raw", {"bare_calls": -1}, ("'bare_calls' is -1, below its minimum 0",)),
    ("cpp-raw", {"bare_rounds": 3}, ("'bare_rounds' is 3, which must divide",)),
    ("cpp-raw", {"layers": [2, 4, 1]}, ("'layers' is [2, 4, 1]", "rendered for layers [2, 8, 8, 1]")),
    ("cpp-raw", {"model_kind": "mlp_branch"}, ("'model_kind' is mlp_branch", "needs cpp-api or cpp-torchscript")),
    # rule 10 (the job's one float32 tensor: 8 samples of [2] are 64 bytes); tests/test_cpp_user_inputs.py has more
    ("cpp-raw", {"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [1, 2], "offset": 0}]},
     ("'input_tensors'[0] has sample_shape [2] and shape [1, 2]", "input_shape [2] (rule 10)")),
    ("cpp-raw", {"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 8}]},
     ("'input_tensors'[0] has offset 8, expected 0", "(rule 10)")),
    ("cpp-raw", {"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0},
                                   {"dtype": "int32", "sample_shape": [3], "shape": [3], "offset": 60}]},
     ("'input_tensors'[1] has offset 60, expected 64", "(rule 10)")),
    ("cpp-raw", {"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0},
                                   {"dtype": "int32", "sample_shape": [3], "shape": [3], "offset": 64}]},
     ("'input_tensors' is float32 [2], int32 [3]", "cpp-raw takes exactly one float32 input")),
    ("cpp-raw", {"input_tensors": [{"dtype": "float16", "sample_shape": [2], "shape": [2], "offset": 0}]},
     ("'dtype' in 'input_tensors'[0]", '"float32", "float64", "int64", "int32", "bool"')),
    ("cpp-raw", {"input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2]}]},
     ("'offset' in 'input_tensors'[0] is missing",)),
    ("cpp-api", {"input_tensors": [{"dtype": "float64", "sample_shape": [2], "shape": [2], "offset": 0}]},
     ("'input_tensors' is float64 [2]", "cpp-api takes exactly one float32 input")),
    ("cpp-api", {"options": {"cpu_fuser": True}}, ("option 'cpu_fuser'", "supported: input_build, select, layout")),
    ("cpp-api", {"options": {"layout": "diagonal"}}, ("'layout' in 'options'", '"rows", "columns"')),
    ("cpp-api", {"options": {"select": "all"}}, ("'select' in 'options'", '"none", "mask", "index"')),
    ("cpp-api", {"grad_mode": "n/a"}, ("'grad_mode'", "cpp-api needs default, no_grad or inference")),
    ("cpp-torchscript", {"options": {"channels_last": True}}, ("option 'channels_last'", "4-D input_shape")),
    ("cpp-torchscript", {"options": {"qengine": "abacus"}}, ("option 'qengine'", "supported: ")),
    ("cpp-api", {"model_kind": "op_chain"}, ("'model_kind' is op_chain", "model_kind op_chain needs cpp-torchscript")),
])
def test_bad_jobs_fail_on_one_line(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path,
                                   rid: str, change: dict[str, Any], needles: tuple[str, ...]) -> None:
    model_file = models["mlp"] if rid == "cpp-torchscript" else models["weights"]
    job = _break(_job(tmp_path, rid, model_file, _inputs(8, (2,), seed=9)), change)
    line = _fails(argv[rid], job, *needles)
    assert line.startswith(f"{rid}: error: job {job}: "), line
