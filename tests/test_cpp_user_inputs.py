"""The C++ libtorch runners on a user's model (docs/runner-contract.md, "Several inputs, any dtype").

Several input tensors of several dtypes, each slot's passed as positional arguments in input_tensors' order,
and outputs that are a tuple, a list or a dict of tensors, flattened in pytree order (dict values in insertion
order), each converted to float32, concatenated. The models are made here: two scripted TorchScript models
(float32 and int64 inputs; a tuple and a dict {"b", "a"} out) and one AOTInductor package (float64 and bool
inputs). The reference is Python running the same model on the same slots, read back from the inputs file by
the job's offsets, flattened with torch.utils._pytree.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils import _pytree

from harness.build import build_runner, toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import make_job

SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))  # the default suite's, so the cached builds are shared
RIDS = ("cpp-torchscript", "cpp-aoti", "cpp-raw")
GRAD_MODE = {"cpp-torchscript": "default", "cpp-aoti": "inference", "cpp-raw": "n/a"}
# Python and C++ run the same TorchScript file (the same kernels), and the package against its eager module
# computes in float64: the outputs agree to float32 rounding.
TOL = {"rtol": 1e-6, "atol": 1e-6}
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_}
COUNT = 6  # samples of each input: 6 slots, which the calls wrap over

_problem = toolchain_problem(RUNNERS["cpp-torchscript"])
if _problem:
    pytest.skip(f"the C++ runners cannot be built here: {_problem}", allow_module_level=True)


class EmbedAndLinear(torch.nn.Module):
    """float32 x [1, 4] and int64 idx [1, 3] → (linear(x) [1, 2], embedding(idx) transposed [1, 3, 3])."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.embedding = torch.nn.Embedding(10, 3)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # transposed: a non-contiguous output, which must be written in its logical row-major order
        return self.linear(x), self.embedding(idx).transpose(1, 2)


class DictOut(torch.nn.Module):
    """The same inputs → {"b": bool [1, 3], "a": float32 [1, 2]}: insertion order b, a, not sorted."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.embedding = torch.nn.Embedding(10, 3)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"b": self.embedding(idx).sum(-1) > 0, "a": self.linear(x)}


class ReturnsInt(torch.nn.Module):
    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> int:
        return int(idx.sum())


class MaskedDouble(torch.nn.Module):
    """float64 x [1, 4] and bool mask [1, 4] → (where(mask, 2x, -x) float64, mask & (x > 0) bool), a list."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        return [torch.where(mask, 2 * x, -x), mask & (x > 0)]


@pytest.fixture(scope="module")
def argv() -> dict[str, list[str]]:
    """Each runner built once (or found in BUILD_DIR's cache), as the argv to append a job to."""
    out = {}
    for rid in RIDS:
        built = build_runner(RUNNERS[rid], SPEC, BUILD_DIR)
        assert built.status == "ok", f"{rid}: {built.reason}"
        out[rid] = built.argv
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scripted TorchScript files and the AOTInductor package (compiled once: tens of seconds)."""
    d = tmp_path_factory.mktemp("user_models")
    torch.manual_seed(0)
    for name, cls in (("tuple", EmbedAndLinear), ("dict", DictOut), ("int", ReturnsInt)):
        torch.jit.script(cls().eval()).save(str(d / f"{name}.ts.pt"))
    example = (torch.randn(1, 4, dtype=torch.float64), torch.tensor([[True, False, True, False]]))
    program = torch.export.export(MaskedDouble().eval(), example)
    with torch._inductor.config.patch(compile_threads=1):  # no worker pool left behind
        torch._inductor.aoti_compile_and_package(program, package_path=str(d / "masked.pt2"))
    return {"tuple": d / "tuple.ts.pt", "dict": d / "dict.ts.pt", "int": d / "int.ts.pt", "aoti": d / "masked.pt2"}


def _float_and_index(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """COUNT samples of a float32 [1, 4] and an int64 [1, 3] (indices into the 10 embeddings)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 3, (COUNT, 1, 4)).astype("<f4"), rng.integers(0, 10, (COUNT, 1, 3)).astype("<i8")


def _double_and_mask(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 3, (COUNT, 1, 4)).astype("<f8"), rng.integers(0, 2, (COUNT, 1, 4)).astype(np.bool_)


def _job(d: Path, rid: str, model_file: Path, inputs: tuple[np.ndarray, ...], output_size: int, **kw: Any) -> Path:
    kind = "pt2" if model_file.suffix == ".pt2" else "torchscript"
    return make_job(d, rid, model_file.parent, inputs[0], model_file=model_file.name, kind=kind,
                    output_shape=(output_size,), grad_mode=GRAD_MODE[rid], more_inputs=inputs[1:], **kw)


def _run(argv: list[str], job: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, str(job)], capture_output=True, text=True, timeout=300, check=False)


def _ok(argv: list[str], job: Path) -> tuple[np.ndarray, dict[str, Any]]:
    p = _run(argv, job)
    assert p.returncode == 0, p.stderr
    spec = json.loads(job.read_text())
    result = json.loads(Path(spec["result"]).read_text())
    assert result["status"] == "ok" and result["calls"] == spec["calls"]
    assert len(np.fromfile(spec["timings"], dtype="<i8")) == spec["calls"] // spec["block"]
    return np.fromfile(spec["outputs"], dtype="<f4"), result


def _fails(argv: list[str], job: Path, *needles: str) -> str:
    """A job that must be refused: exit status 1, one line on stderr holding every needle, no result."""
    p = _run(argv, job)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not Path(json.loads(job.read_text())["result"]).exists()
    return lines[0]


def _slot_inputs(job: Path) -> list[list[torch.Tensor]]:
    """Every slot's arguments read back from the inputs file by the job's own input_tensors (dtype, offset)."""
    spec = json.loads(job.read_text())
    blob = Path(spec["inputs"]).read_bytes()
    per_tensor = []
    for t in spec["input_tensors"]:
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        count = spec["input_count"] * int(np.prod(t["sample_shape"]))
        a = np.frombuffer(blob, dtype=dtype, count=count, offset=t["offset"]).reshape(spec["input_count"], -1)
        per_tensor.append([torch.from_numpy(a[s].copy()).reshape(t["shape"]) for s in range(spec["slots"])])
    return [list(args) for args in zip(*per_tensor, strict=True)]


def _reference(model: Callable[..., Any], job: Path) -> np.ndarray:
    """The contract's flattening of Python's outputs: pytree leaves, each float32 row-major, concatenated."""
    out = []
    with torch.no_grad():
        for args in _slot_inputs(job):
            leaves = _pytree.tree_leaves(model(*args))
            out += [leaf.to(torch.float32).contiguous().reshape(-1).numpy() for leaf in leaves]
    return np.concatenate(out)


@pytest.mark.parametrize("name", ["tuple", "dict"])
def test_torchscript_two_inputs_flattened_outputs(argv: dict[str, list[str]], models: dict[str, Path],
                                                  tmp_path: Path, name: str) -> None:
    """float32 [1, 4] and int64 [1, 3] in; a tuple (non-contiguous second) or a dict {b, a} (bool b) out."""
    output_size = {"tuple": 2 + 9, "dict": 3 + 2}[name]
    job = _job(tmp_path, "cpp-torchscript", models[name], _float_and_index(1), output_size, calls=2 * COUNT,
               bare_rounds=2)
    got, result = _ok(argv["cpp-torchscript"], job)
    model = torch.jit.load(str(models[name]))
    assert got.shape == (COUNT * output_size,)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(_reference(model, job)), **TOL)
    assert "int64 [1, 3]" in result["extra"]["input"]
    if name == "dict":  # insertion order, kept by c10::Dict and by the flattening: b's 3 values come first
        x, idx = _slot_inputs(job)[0]
        assert list(model(x, idx)) == ["b", "a"]
        assert set(got[:3].tolist()) <= {0.0, 1.0}
        assert result["extra"]["output"] == "dict{'b': bool [1, 3], 'a': float32 [1, 2]}"
    else:
        assert result["extra"]["output"] == "tuple(float32 [1, 2], float32 [1, 3, 3])"


def test_aoti_float64_and_bool_inputs(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path) -> None:
    """A non-float32 first input and a bool one; a list of a float64 and a bool tensor out (flat from run)."""
    job = _job(tmp_path, "cpp-aoti", models["aoti"], _double_and_mask(2), 4 + 4, calls=2 * COUNT, block=2)
    got, result = _ok(argv["cpp-aoti"], job)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(_reference(MaskedDouble().eval(), job)),
                               **TOL)
    assert result["extra"]["output"] == "(float64 [1, 4], bool [1, 4])"
    assert "float64 [1, 4], bool [1, 4]" in result["extra"]["input"]


def test_one_float_input_takes_the_seed_path(argv: dict[str, list[str]], tmp_path: Path) -> None:
    """A user's model with one float32 input and one float32 output goes the built-in kinds' way: from_blob per
    call (the input builder), the output copied as it is."""
    linear = torch.jit.script(torch.nn.Linear(4, 2).eval())
    linear.save(str(tmp_path / "linear.ts.pt"))
    x, _ = _float_and_index(3)
    job = make_job(tmp_path / "job", "cpp-torchscript", tmp_path, x, model_file="linear.ts.pt", kind="torchscript",
                   output_shape=(2,), calls=COUNT)
    got, result = _ok(argv["cpp-torchscript"], job)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(_reference(linear, job)), **TOL)
    assert result["extra"]["input"].startswith("one torch::from_blob [1, 4]")


def test_a_result_that_is_not_tensors_fails_naming_it(argv: dict[str, list[str]], models: dict[str, Path],
                                                      tmp_path: Path) -> None:
    job = _job(tmp_path, "cpp-torchscript", models["int"], _float_and_index(4), 1)
    _fails(argv["cpp-torchscript"], job, "cpp-torchscript: error: the model returned Int",
           "expected a tensor or a tuple, list or dict of tensors")


def test_output_size_mismatch_names_the_outputs(argv: dict[str, list[str]], models: dict[str, Path],
                                                tmp_path: Path) -> None:
    job = _job(tmp_path, "cpp-torchscript", models["tuple"], _float_and_index(5), 12)
    _fails(argv["cpp-torchscript"], job, "tuple(float32 [1, 2], float32 [1, 3, 3])", "11 values together",
           "batch x output_size = 1 x 12 = 12")


def _break(job: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    spec = json.loads(job.read_text())
    change(spec)
    job.write_text(json.dumps(spec))
    return job


def _set_offset(spec: dict[str, Any]) -> None:
    spec["input_tensors"][1]["offset"] += 8


def _set_shape(spec: dict[str, Any]) -> None:
    spec["input_tensors"][1]["shape"] = [1, 4]


def _set_first(spec: dict[str, Any]) -> None:
    spec["input_tensors"][0]["sample_shape"] = [4]


@pytest.mark.parametrize(("change", "needles"), [
    (_set_offset, ("'input_tensors'[1] has offset 104, expected 96", "(rule 10)")),
    (_set_shape, ("'input_tensors'[1] has shape [1, 4] (4 elements)", "1 x 3 (rule 10)")),
    (_set_first, ("'input_tensors'[0] has sample_shape [4] and shape [1, 4]", "sample_shape [1, 4]", "(rule 10)")),
], ids=["offset", "shape", "first"])
def test_rule_10_refusals(argv: dict[str, list[str]], models: dict[str, Path], tmp_path: Path,
                          change: Callable[[dict[str, Any]], None], needles: tuple[str, ...]) -> None:
    """6 float32 [1, 4] samples are 96 bytes: the int64 tensor starts there (a multiple of 8 already)."""
    job = _break(_job(tmp_path, "cpp-torchscript", models["tuple"], _float_and_index(6), 11), change)
    line = _fails(argv["cpp-torchscript"], job, *needles)
    assert line.startswith(f"cpp-torchscript: error: job {job}: "), line


def test_an_inputs_file_with_bytes_after_the_last_tensor_is_refused(argv: dict[str, list[str]],
                                                                    models: dict[str, Path], tmp_path: Path) -> None:
    job = _job(tmp_path, "cpp-aoti", models["aoti"], _double_and_mask(7), 8)
    inputs = Path(json.loads(job.read_text())["inputs"])
    end = inputs.stat().st_size  # 6 x 4 float64 = 192, then 6 x 4 bools = 24
    assert end == 192 + 24
    with inputs.open("ab") as f:
        f.write(b"\0" * 8)
    _fails(argv["cpp-aoti"], job, f"inputs file {inputs} has {end + 8} bytes", f"end at byte {end}")


def test_a_bool_input_holds_only_zero_and_one(argv: dict[str, list[str]], models: dict[str, Path],
                                              tmp_path: Path) -> None:
    job = _job(tmp_path, "cpp-aoti", models["aoti"], _double_and_mask(8), 8)
    inputs = Path(json.loads(job.read_text())["inputs"])
    blob = bytearray(inputs.read_bytes())
    blob[192 + 5] = 7
    inputs.write_bytes(bytes(blob))
    _fails(argv["cpp-aoti"], job, "'input_tensors'[1] is bool but byte 197 of the file holds 7")


@pytest.mark.parametrize(("rid", "options", "key"), [
    ("cpp-torchscript", {"input_build": "vstack"}, "input_build"),
    ("cpp-torchscript", {"select": "index"}, "select"),
    ("cpp-aoti", {"batch_dim": True}, "batch_dim"),
])
def test_input_options_are_refused_with_several_inputs(argv: dict[str, list[str]], models: dict[str, Path],
                                                       tmp_path: Path, rid: str, options: dict[str, Any],
                                                       key: str) -> None:
    model = models["tuple" if rid == "cpp-torchscript" else "aoti"]
    inputs = _float_and_index(9) if rid == "cpp-torchscript" else _double_and_mask(9)
    job = _job(tmp_path, rid, model, inputs, 11 if rid == "cpp-torchscript" else 8, options=options)
    line = _fails(argv[rid], job, f"option '{key}'", "one float32 input only", "remove the option")
    assert line.startswith(f"{rid}: error: job {job}: "), line


def test_default_valued_input_options_pass(argv: dict[str, list[str]], models: dict[str, Path],
                                           tmp_path: Path) -> None:
    """input_build from_blob and select none change nothing, so a user's model runs with them."""
    job = _job(tmp_path, "cpp-torchscript", models["tuple"], _float_and_index(10), 11,
               options={"input_build": "from_blob", "select": "none"})
    got, _ = _ok(argv["cpp-torchscript"], job)
    torch.testing.assert_close(torch.from_numpy(got),
                               torch.from_numpy(_reference(torch.jit.load(str(models["tuple"])), job)), **TOL)


def test_the_float_only_runners_refuse_other_inputs(argv: dict[str, list[str]], tmp_path: Path) -> None:
    """cpp-raw (and cpp-api, the same check) compute one float32 tensor: a guard, the harness never sends more."""
    rng = np.random.default_rng(11)
    x, idx = rng.uniform(-1, 1, (4, 2)).astype("<f4"), rng.integers(0, 3, (4, 3)).astype("<i8")
    job = make_job(tmp_path, "cpp-raw", tmp_path, x, layers=SPEC.layers, grad_mode="n/a", more_inputs=(idx,))
    _fails(argv["cpp-raw"], job, "'input_tensors' is float32 [2], int64 [3]", "exactly one float32 input")
