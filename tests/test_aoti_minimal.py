"""cpp-aoti-minimal: an AOTInductor package compiled with the minimal ArrayRef interface, called from C++ through
its model .so's AOTInductorModelRunMinimalArrayrefInterfaceV2 on raw descriptors.

Its outputs against the Python reference on the default model (directly, and through the harness's verify step on
a user's factory with a float32 and an int64 input and two outputs), and its refusals: a package compiled without
the interface, a missing or corrupt file, a batch the package was not made for. The packages are the harness's
own (cached in build/, shared with the conformance tests), since one AOTInductor compile takes tens of seconds.
"""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness import contract, exports, programs
from harness.build import Built, toolchain_problem
from harness.models import ModelFiles, load_eager
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import parse_suite
from tests import jobs
from tests.conftest import TINY
from tests.tiny import USER_INPUTS, USER_MODEL, built_ok, run_job, tiny_with

RID = "cpp-aoti-minimal"
# cpp-aoti's (which must be refused) first: on a cold cache this process then compiles the minimal one after a
# plain one, the order in which torch 2.13's inductor ignores the minimal config unless the exporter swaps its wrapper
PACKAGES = ("model.b1.pt2", "model.minimal.b1.pt2")
# The package computes the same float32 arithmetic as the eager module, in another order
TOL = {"atol": 1e-5, "rtol": 1e-5}

_problem = toolchain_problem(RUNNERS[RID])
if _problem:
    pytest.skip(f"the C++ runners cannot be built here: {_problem}", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny() -> tuple[Suite, ModelFiles]:
    return tiny_with(PACKAGES)


@pytest.fixture(scope="module")
def built(tiny: tuple[Suite, ModelFiles]) -> Built:
    return built_ok(RID, tiny[0])


def _job(d: Path, files: ModelFiles, model_file: Path, x: np.ndarray, **kw: Any) -> Path:
    return jobs.make_job(d, RID, files.dir, x, layers=(2, 8, 8, 1), calls=kw.pop("calls", x.shape[0]),
                         grad_mode=RUNNERS[RID].grad_mode, override={"model_file": str(model_file)}, **kw)


def _refusal(b: Built, job: Path) -> tuple[int, str, bool]:
    """The exit status, the last line on stderr and whether a result was written.

    Only the last line: the model .so prints a failed call's exception itself ("Error: ...") before returning its
    code.
    """
    p = run_job(b, job)
    lines = p.stderr.strip().splitlines()
    return p.returncode, lines[-1] if lines else "", Path(json.loads(job.read_text())["result"]).exists()


def test_the_export_is_per_batch_and_compiled_with_the_interface(tiny: tuple[Suite, ModelFiles]) -> None:
    assert RUNNERS[RID].needs(1) == ("model.minimal.b1.pt2",) and RUNNERS[RID].needs(8) == ("model.minimal.b8.pt2",)
    assert "minimal ArrayRef" in exports.exporter("model.minimal.b4.pt2").__doc__
    facts = exports.facts(tiny[1], ["model.minimal.b1.pt2"])["model.minimal.b1.pt2"]
    assert facts["seconds"]["compile"] > 0.5  # a g++ compile, recorded like the other packages
    with zipfile.ZipFile(tiny[1].dir / "model.minimal.b1.pt2") as z:
        wrapper = [n for n in z.namelist() if n.endswith(".wrapper.cpp")]
        assert len(wrapper) == 1
        source = z.read(wrapper[0]).decode()
    assert 'extern "C" AOTIRuntimeError AOTInductorModelRunMinimalArrayrefInterfaceV2(' in source


def test_the_array_ref_wrapper_is_selected_for_the_minimal_compile_only(tiny: tuple[Suite, ModelFiles]) -> None:
    """Inductor registers its CPU C++ wrapper once per process: the minimal compile must swap in the ArrayRef one
    (else a process that made a plain package first makes a plain one again) and leave the plain one after."""
    from torch._inductor.codegen import common
    from torch._inductor.codegen.cpp_wrapper_cpu_array_ref import CppWrapperCpuArrayRef

    common.init_backend_registration()
    before = common.get_wrapper_codegen_for_device("cpu", cpp_wrapper=True)
    assert before is not CppWrapperCpuArrayRef  # the default config's (allow_stack_allocation off)
    with exports._array_ref_wrapper():
        assert common.get_wrapper_codegen_for_device("cpu", cpp_wrapper=True) is CppWrapperCpuArrayRef
    assert common.get_wrapper_codegen_for_device("cpu", cpp_wrapper=True) is before
    # and the check made after each minimal compile tells the two packages apart
    assert exports._has_minimal_entry(tiny[1].dir / "model.minimal.b1.pt2")
    assert not exports._has_minimal_entry(tiny[1].dir / "model.b1.pt2")


def test_default_model_outputs_match_the_reference(built: Built, tiny: tuple[Suite, ModelFiles],
                                                   tmp_path: Path) -> None:
    suite, files = tiny
    x = np.random.default_rng(3).uniform(-10, 10, (50, 2)).astype(np.float32)
    job = _job(tmp_path, files, files.dir / "model.minimal.b1.pt2", x, calls=200, block=10, threads=1)
    p = run_job(built, job)
    assert p.returncode == 0, p.stderr[-2000:]
    out = np.fromfile(tmp_path / "outputs.bin", dtype="<f4")
    with torch.no_grad():
        ref = load_eager(suite.model, files)(torch.from_numpy(x)).numpy().reshape(-1)
    assert out.shape == ref.shape and np.abs(ref).max() > 1  # real outputs, not zeros
    np.testing.assert_allclose(out, ref, **TOL)
    result = json.loads((tmp_path / "result.json").read_text())
    assert contract.problem("result", result) is None and result["runner"] == RID and result["grad_mode"] == "inference"
    assert result["extra"]["aoti_call"].startswith("AOTInductorModelRunMinimalArrayrefInterfaceV2")
    assert result["extra"]["output"] == "(float32 [1])"
    assert len(np.fromfile(tmp_path / "timings.bin", dtype="<i8")) == 200 // 10


def test_a_package_without_the_interface_is_refused(built: Built, tiny: tuple[Suite, ModelFiles],
                                                    tmp_path: Path) -> None:
    """cpp-aoti's package has no minimal entry point: refused at load, never called another way."""
    x = np.zeros((4, 2), np.float32)
    code, line, wrote = _refusal(built, _job(tmp_path, tiny[1], tiny[1].dir / "model.b1.pt2", x))
    assert code == 1 and not wrote and line.startswith(f"{RID}: error:"), line
    assert "model.b1.pt2" in line and "has no AOTInductorModelRunMinimalArrayrefInterfaceV2" in line, line
    assert "use_minimal_arrayref_interface=True" in line, line


def test_missing_and_corrupt_packages_fail_in_one_line(built: Built, tiny: tuple[Suite, ModelFiles],
                                                       tmp_path: Path) -> None:
    x = np.zeros((4, 2), np.float32)
    corrupt = tmp_path / "model.minimal.b1.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not a package" * 10)
    for model_file in (tmp_path / "absent.pt2", corrupt):
        code, line, wrote = _refusal(built, _job(tmp_path / model_file.stem, tiny[1], model_file, x))
        assert code == 1 and not wrote and line.startswith(f"{RID}: error:"), line
        assert "cannot load AOTInductor package" in line and model_file.name in line, line


def test_an_exact_shape_package_refuses_another_batch(built: Built, tiny: tuple[Suite, ModelFiles],
                                                     tmp_path: Path) -> None:
    x = np.zeros((16, 2), np.float32)
    code, line, wrote = _refusal(built, _job(tmp_path, tiny[1], tiny[1].dir / "model.minimal.b1.pt2", x, batch=4,
                                             calls=4))
    assert code == 1 and not wrote and line.startswith(f"{RID}: error:"), line
    assert "AOTInductor:" in line and "incorrect numel for input tensor. expected 2, got 8" in line, line


def _program(run: Path) -> tuple[dict[str, Any], str]:
    """The run's one program record (harness/programs.py built, ran and checked it) and its source."""
    made = programs.read(run)
    assert [r["row"] for r in made] == [RID]
    return made[0], (run / made[0]["folder"] / made[0]["main"]).read_text()


def test_its_program_matches_on_the_default_model(tmp_path: Path) -> None:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"].update(calls=2000, warmup_calls=20, repeats=1, programs=True)
    data["runners"] = [{"id": RID}]
    r, source = _program(run_suite(parse_suite(data, "minimal-tiny.toml"), tmp_path, BUILD_DIR, quiet=True))
    assert r["status"] == "ok" and r["outputs_ok"], r["message"]  # outputs matched the reference
    assert r["us_per_call"] and all(f > 0 for f in r["us_per_call"])
    assert "AOTInductorModelRunMinimalArrayrefInterfaceV2" in source and "job.json" not in source


def test_a_users_model_with_two_inputs_verifies(tmp_path: Path) -> None:
    """The conformance test's user factory (float32 [1, 4] and int64 [1, 3] in, a tuple out), so its package is
    the cached one: exported by the harness, run, and its outputs checked by the harness's verify step."""
    data = {
        "name": "minimal-user", "model": USER_MODEL,
        "inputs": USER_INPUTS,
        "run": {"calls": 200, "warmup_calls": 3, "warmup_s": 0, "repeats": 1, "timeout_s": 300, "programs": True},
        "runners": [{"id": RID}],
    }
    run = run_suite(parse_suite(data, "minimal-user.toml"), tmp_path, BUILD_DIR, quiet=True)
    program, _ = _program(run)
    assert program["status"] == "ok" and program["outputs_ok"], program["message"]
    row = pd.read_csv(run / "results.csv").set_index("runner").loc[RID]
    assert row["status"] == "ok" and bool(row["outputs_ok"]), row["message"]
    rep = run / "raw" / RID / "0"
    job = json.loads((rep / "job.json").read_text())
    assert [t["dtype"] for t in job["input_tensors"]] == ["float32", "int64"]
    assert job["output_size"] == 4 + 1 and job["model_file"].endswith("model.minimal.b1.pt2")
    result = json.loads((rep / "result.json").read_text())
    assert result["extra"]["output"] == "(float32 [1, 4], float32 [1, 1])"
    assert "float32 [1, 4], int64 [1, 3]" in result["extra"]["input"]
    # the verify step compared against the reference: the outputs are the reference's, slot by slot
    out = np.fromfile(rep / "outputs.bin", dtype="<f4").reshape(job["slots"], 5)
    ref = np.fromfile(run / "raw" / "reference.bin", dtype="<f4").reshape(-1, 5)[: job["slots"]]
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
