"""The Python runners against in-process references: batches, wrap-around, options, model files.

Each case writes a job file by hand (docs/runner-contract.md) and runs the rendered runner as the harness
would, so the runner's own checks and its one-line failures are exercised too. The models are made here,
seeded, so the test needs no trained model folder.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.build import Built, build_runner
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests import jobs

SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))
ATOL = RTOL = 1e-5


@pytest.fixture(scope="module")
def runners() -> dict[str, Built]:
    out = {}
    for rid in ("python-eager", "python-torchscript", "python-lite", "python-onnxruntime"):
        b = build_runner(RUNNERS[rid], SPEC, BUILD_DIR)
        assert b.status == "ok", b.reason
        out[rid] = b
    return out


@pytest.fixture(scope="module")
def mlp(runners: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The rendered Net, seeded, as a state dict and a traced file, with the module itself for references."""
    path = runners["python-eager"].source_dir / "model.py"
    spec = importlib.util.spec_from_file_location("rendered_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.Net().eval()
    d = tmp_path_factory.mktemp("mlp")
    torch.save(net.state_dict(), d / "model.state.pt")
    torch.jit.trace(net, torch.zeros(2)).save(str(d / "model.ts.pt"))
    return {"net": net, "dir": d}


def make_job(d: Path, runner: str, model_file: Path, *, sample_shape: list[int], output_shape: list[int],
             inputs: np.ndarray, batch: int, calls: int, warmup: int = 2, kind: str = "mlp",
             input_shape: list[int] | None = None, options: dict[str, Any] | None = None,
             grad_mode: str = "default") -> dict[str, Any]:
    """A complete, schema-valid job (tests/jobs.py) for `model_file`; inputs is [input_count, sample_size]."""
    path = jobs.make_job(
        d, runner, model_file.parent, inputs.reshape(inputs.shape[0], *sample_shape), model_file=model_file.name,
        kind=kind, layers=SPEC.layers if kind.startswith("mlp") else (), output_shape=tuple(output_shape),
        batch=batch, calls=calls, warmup=warmup, grad_mode=grad_mode, override={"options": options or {}},
        input_shape=tuple(input_shape) if input_shape is not None else None,
    )
    return json.loads(path.read_text())


def run(b: Built, job: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    job_file = Path(job["result"]).parent / "job.json"
    return subprocess.run([*b.argv, str(job_file)], cwd=b.source_dir, capture_output=True, text=True, timeout=120)


def run_ok(b: Built, job: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    p = run(b, job)
    assert p.returncode == 0, p.stderr
    result = json.loads(Path(job["result"]).read_text())
    timings = np.fromfile(job["timings"], dtype="<i8")
    assert timings.size == job["calls"] and (timings > 0).all()
    assert np.fromfile(job["warmup_timings"], dtype="<i8").size == job["warmup_calls"]
    assert result["batch"] == job["batch"] and result["calls"] == job["calls"]
    assert result["bare_calls"] == job["bare_calls"] and len(result["bare_ns"]) == job["bare_rounds"]
    assert all(ns > 0 for ns in result["bare_ns"])
    assert result["peak_rss_kb"] > 10_000  # an interpreter with torch or onnxruntime loaded: tens of MB
    return result, np.fromfile(job["outputs"], dtype="<f4")


def mlp_inputs(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=(count, 2)).astype(np.float32)


def reference(module: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).contiguous().numpy().reshape(-1)


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("rid", ["python-torchscript", "python-eager"])
def test_mlp_outputs_match_reference(rid: str, batch: int, runners: dict[str, Built], mlp: dict[str, Any],
                                     tmp_path: Path) -> None:
    x = mlp_inputs(64)
    model_file = mlp["dir"] / ("model.ts.pt" if rid == "python-torchscript" else "model.state.pt")
    job = make_job(tmp_path, rid, model_file, sample_shape=[2], output_shape=[1], inputs=x, batch=batch,
                   calls=64 // batch)
    assert job["input_shape"] == ([2] if batch == 1 else [16, 2])
    _, out = run_ok(runners[rid], job)
    np.testing.assert_allclose(out, reference(mlp["net"], x), atol=ATOL, rtol=RTOL)


def test_calls_wrap_around_the_slots(runners: dict[str, Built], mlp: dict[str, Any], tmp_path: Path) -> None:
    """8 inputs in batches of 4 give 2 slots; 7 calls use them 0, 1, 0, 1, …; the outputs hold the 2 batches."""
    x = mlp_inputs(8, seed=2)
    job = make_job(tmp_path, "python-torchscript", mlp["dir"] / "model.ts.pt", sample_shape=[2], output_shape=[1],
                   inputs=x, batch=4, calls=7, warmup=3)
    assert job["slots"] == 2
    _, out = run_ok(runners["python-torchscript"], job)
    assert out.size == 8
    np.testing.assert_allclose(out, reference(mlp["net"], x), atol=ATOL, rtol=RTOL)


@pytest.fixture(scope="module")
def conv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Seed 003's ConvBnReLU, seeded, traced as is and channels-last (from a channels-last example)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, bias=False), torch.nn.BatchNorm2d(5), torch.nn.ReLU())
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    net = net.eval()
    d = tmp_path_factory.mktemp("conv")
    example = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.jit.trace(net, example).save(str(d / "model.ts.pt"))
        cl = net.to(memory_format=torch.channels_last)
        torch.jit.trace(cl, example.contiguous(memory_format=torch.channels_last)).save(str(d / "model.cl.pt"))
    return {"net": net, "dir": d}


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_traced_and_channels_last(channels_last: bool, runners: dict[str, Built], conv: dict[str, Any],
                                       tmp_path: Path) -> None:
    """The channels-last model returns channels-last tensors: the outputs must still come out NCHW."""
    x = np.random.default_rng(3).standard_normal((2, 3 * 224 * 224)).astype(np.float32)
    model_file = conv["dir"] / ("model.cl.pt" if channels_last else "model.ts.pt")
    job = make_job(tmp_path, "python-torchscript", model_file, sample_shape=[3, 224, 224],
                   output_shape=[5, 222, 222], inputs=x, batch=1, calls=2, warmup=1, kind="conv_bn_relu",
                   options={"channels_last": True} if channels_last else {})
    assert job["input_shape"] == [1, 3, 224, 224]
    _, out = run_ok(runners["python-torchscript"], job)
    np.testing.assert_allclose(out, reference(conv["net"], x.reshape(2, 3, 224, 224)), atol=ATOL, rtol=RTOL)


# Seed 002's chain is 1000 adds, but NNC's compile of one fusion group grows about quadratically with its
# size: 1000 adds took 15 s (in the second call, the first optimized one) here, 200 took 0.6 s. 100 adds
# show the same graphs in well under a second.
CHAIN = 100


@pytest.fixture(scope="module")
def op_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 002's chain, x + 1.0 over and over, traced (the trace unrolls it into CHAIN aten::add)."""

    def chain(x: torch.Tensor) -> torch.Tensor:
        for _ in range(CHAIN):
            x = x + 1.0
        return x

    path = tmp_path_factory.mktemp("chain") / "model.ts.pt"
    torch.jit.trace(chain, torch.zeros(2)).save(str(path))
    return path


@pytest.mark.parametrize("cpu_fuser", [True, False])
def test_op_chain_graph_dump(cpu_fuser: bool, runners: dict[str, Built], op_chain: Path, tmp_path: Path) -> None:
    """With the CPU fuser on, the profiling executor puts all the adds into one NNC fusion group.

    This torch wheel has no LLVM, so the runner lets NNC run the group on its IR interpreter (and says so
    in the result); without that the first optimized call fails with "LLVM Backend not found".
    """
    x = np.arange(8, dtype=np.float32).reshape(4, 2)  # integers: the additions of 1.0 stay exact
    job = make_job(tmp_path, "python-torchscript", op_chain, sample_shape=[2], output_shape=[2], inputs=x,
                   batch=1, calls=4, warmup=2, kind="op_chain", options={"dump_graph": True, "cpu_fuser": cpu_fuser})
    result, out = run_ok(runners["python-torchscript"], job)
    np.testing.assert_array_equal(out, (x + CHAIN).reshape(-1))
    graph = Path(job["artifacts"]) / "graph.txt"
    assert graph.exists() and result["extra"]["graph"] == str(graph)
    nodes = result["extra"]["graph_nodes"]
    assert nodes["aten::add"] == CHAIN  # counted inside the fusion group's subgraph when there is one
    assert nodes["prim::FusionGroup"] == 0 and nodes["prim::Loop"] == 0
    if cpu_fuser:
        assert nodes["prim::TensorExprGroup"] == 1
        assert "prim::TensorExprGroup" in graph.read_text()
        assert "cpu_fuser" in result["extra"]
    else:
        assert nodes["prim::TensorExprGroup"] == 0


def test_lite_loads_both_ptl_formats(runners: dict[str, Built], mlp: dict[str, Any], tmp_path: Path) -> None:
    """The classic (zip) .ptl and the FlatBuffer one load through the same _load_for_lite_interpreter."""
    scripted = torch.jit.script(mlp["net"])
    x = mlp_inputs(8, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "Lite Interpreter is deprecated"
        scripted._save_for_lite_interpreter(str(tmp_path / "zip.ptl"))
        scripted._save_for_lite_interpreter(str(tmp_path / "flat.ptl"), _use_flatbuffer=True)
    for name, fmt in (("zip", "zipfile"), ("flat", "flatbuffer")):
        job = make_job(tmp_path / name, "python-lite", tmp_path / f"{name}.ptl", sample_shape=[2],
                       output_shape=[1], inputs=x, batch=4, calls=2)
        result, out = run_ok(runners["python-lite"], job)
        assert result["extra"]["ptl_format"] == fmt
        np.testing.assert_allclose(out, reference(mlp["net"], x), atol=ATOL, rtol=RTOL)


def test_onnxruntime_batch(runners: dict[str, Built], mlp: dict[str, Any], tmp_path: Path) -> None:
    """An [N, 2] export with a dynamic first axis, fed batches of 4; the process never imports torch."""
    pytest.importorskip("onnxruntime")
    model_file = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(mlp["net"], (torch.zeros(1, 2),), str(model_file), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    x = mlp_inputs(16, seed=5)
    job = make_job(tmp_path / "run", "python-onnxruntime", model_file, sample_shape=[2], output_shape=[1],
                   inputs=x, batch=4, calls=6, grad_mode="n/a")
    result, out = run_ok(runners["python-onnxruntime"], job)
    assert result["libtorch_path"] is None
    np.testing.assert_allclose(out, reference(mlp["net"], x), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize(("options", "message"), [
    ({"fast_math": True}, "'fast_math' is not a key of the contract in 'options'"),
    ({"dump_graph": True}, "option 'dump_graph' is not supported by python-eager: supported: channels_last, qengine"),
    ({"channels_last": True}, "option 'channels_last' needs a 4-D input"),
])
def test_bad_option_fails_in_one_line(options: dict[str, Any], message: str, runners: dict[str, Built],
                                      mlp: dict[str, Any], tmp_path: Path) -> None:
    job = make_job(tmp_path, "python-eager", mlp["dir"] / "model.state.pt", sample_shape=[2], output_shape=[1],
                   inputs=mlp_inputs(4), batch=1, calls=4, options=options)
    p = run(runners["python-eager"], job)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert not Path(job["result"]).exists()
