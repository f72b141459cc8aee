"""python-aoti-minimal: cpp-aoti-minimal's package (compiled with aot_inductor.use_minimal_arrayref_interface) called
from Python through the runner's own C extension (python/aoti_minimal_ext.c), one extension call per call.

End to end through the harness on the default model and the conformance test's two-input, two-output user factory
(each verified against the Python reference by the harness), the runner's refusals (a package without the
interface, a missing or corrupt file, a batch the package was not made for), the common runtime's load job on it, and
its row SKIPPED with the reason when the C compiler is missing. The packages are the ones tests/test_aoti_minimal.py
and the conformance tests make (cached in build/: one AOTInductor compile takes tens of seconds).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness import contract, decomposition, programs, toolchains
from harness.build import Built, build_runner
from harness.models import ModelFiles, load_eager
from harness.paths import BUILD_DIR, ROOT
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import load_suite, parse_suite
from tests import jobs
from tests.conftest import TINY
from tests.tiny import USER_INPUTS, USER_MODEL, built_ok, run_job, tiny_with

RID = "python-aoti-minimal"
PACKAGES = ("model.b1.pt2", "model.minimal.b1.pt2")  # the plain one (refused) first, as test_aoti_minimal makes them
TOL = {"atol": 1e-5, "rtol": 1e-5}  # the package's float32 arithmetic in another order than the eager module's

if toolchains.TOOLCHAINS[RUNNERS[RID].toolchain].problem():
    pytest.skip(f"{RID} cannot be built here: {toolchains.TOOLCHAINS['python-ext'].problem()}",
                allow_module_level=True)


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
    """The exit status, the last line on stderr and whether a result was written (the model .so prints a failed
    call's exception itself before returning its code, so only the last line is the runner's)."""
    p = run_job(b, job)
    lines = p.stderr.strip().splitlines()
    return p.returncode, lines[-1] if lines else "", Path(json.loads(job.read_text())["result"]).exists()


def test_the_extension_is_built_beside_the_runner(built: Built) -> None:
    assert built.source_dir is not None and built.log is not None
    modules = list(built.source_dir.glob("aoti_minimal_ext*.so"))
    assert len(modules) == 1 and modules[0].stat().st_size > 0
    assert "cc -O2 -shared -fPIC" in built.log.read_text() and "torch/torch.h" not in built.log.read_text()


def test_a_package_without_the_interface_is_refused(built: Built, tiny: tuple[Suite, ModelFiles],
                                                    tmp_path: Path) -> None:
    """cpp-aoti's package has no minimal entry point: refused at load, never called another way."""
    code, line, wrote = _refusal(built, _job(tmp_path, tiny[1], tiny[1].dir / "model.b1.pt2", np.zeros((4, 2))))
    assert code == 1 and not wrote and line.startswith("runner.py: cannot load AOTInductor package"), line
    assert "model.b1.pt2" in line and "has no AOTInductorModelRunMinimalArrayrefInterfaceV2" in line, line
    assert "use_minimal_arrayref_interface=True" in line, line


def test_missing_and_corrupt_packages_fail_in_one_line(built: Built, tiny: tuple[Suite, ModelFiles],
                                                       tmp_path: Path) -> None:
    corrupt = tmp_path / "model.minimal.b1.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not a package" * 10)
    for model_file in (tmp_path / "absent.pt2", corrupt):
        code, line, wrote = _refusal(built, _job(tmp_path / model_file.stem, tiny[1], model_file, np.zeros((4, 2))))
        assert code == 1 and not wrote and "cannot load AOTInductor package" in line, line
        assert model_file.name in line and line.count("\n") == 0, line


def test_an_exact_shape_package_refuses_another_batch(built: Built, tiny: tuple[Suite, ModelFiles],
                                                     tmp_path: Path) -> None:
    job = _job(tmp_path, tiny[1], tiny[1].dir / "model.minimal.b1.pt2", np.zeros((16, 2)), batch=4, calls=4)
    code, line, wrote = _refusal(built, job)
    assert code == 1 and not wrote and "calling the model failed: RuntimeError: AOTInductor:" in line, line
    assert "incorrect numel for input tensor. expected 2, got 8" in line, line


@pytest.mark.parametrize("load", [{"mode": "closed", "callers": 2}, {"mode": "poisson", "callers": 2, "rate": 2000.0}])
def test_load_job_shares_the_model_under_the_gil(load: dict[str, Any], built: Built, tiny: tuple[Suite, ModelFiles],
                                                 tmp_path: Path) -> None:
    """The common runtime's load phase on this runner: caller threads share the one model (each call holds the GIL,
    so no two run it at once) and every output of every caller equals its slot's."""
    suite, files = tiny
    x = np.random.default_rng(1).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    path = jobs.make_job(tmp_path, RID, files.dir, x, model_file="model.minimal.b1.pt2", layers=(2, 8, 8, 1),
                         calls=64, warmup=4, bare_rounds=1, grad_mode="inference",
                         override={"bare_calls": 0, "load": {"seed": 3, "duration_s": 0.2,
                                                             "latencies": str(tmp_path / "lat.bin"), **load}})
    p = run_job(built, path)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "result.json").read_text())["load"]
    lat = np.fromfile(tmp_path / "lat.bin", dtype="<i8")
    assert rec["shared_model"] is True and rec["noop"] is False
    assert len(rec["counts"]) == load["callers"] and all(c > 0 for c in rec["counts"])
    assert sum(rec["counts"]) == lat.size == rec["issued"] == rec["checked"] and rec["mismatches"] == 0
    with torch.no_grad():
        expected = load_eager(suite.model, files)(torch.from_numpy(x)).numpy().reshape(-1)
    np.testing.assert_allclose(np.fromfile(tmp_path / "outputs.bin", dtype="<f4"), expected, **TOL)


def test_without_a_c_compiler_the_row_is_skipped_saying_why(tiny: tuple[Suite, ModelFiles],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = toolchains.shutil.which
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: None if name == "cc" else real(name))
    b = build_runner(RUNNERS[RID], tiny[0].model, BUILD_DIR)
    assert b.status == "skipped" and b.reason == "cc not found on PATH: install a C compiler (apt-get install gcc)"


def _program(run: Path) -> tuple[dict[str, Any], str]:
    """The run's one program record (harness/programs.py rendered, ran and checked it) and its source."""
    made = programs.read(run)
    assert [r["row"] for r in made] == [RID]
    return made[0], (run / made[0]["folder"] / made[0]["main"]).read_text()


def _row(run: Path) -> dict[str, Any]:
    return pd.read_csv(run / "results.csv").set_index("runner").loc[RID].to_dict()


def test_default_model_through_the_harness(tmp_path: Path) -> None:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"].update(calls=2000, warmup_calls=20, repeats=1, programs=True)
    data["runners"] = [{"id": RID}]
    run = run_suite(parse_suite(data, "py-minimal-tiny.toml"), tmp_path, BUILD_DIR, quiet=True)
    row = _row(run)
    assert row["status"] == "ok" and bool(row["outputs_ok"]), row["message"]
    rep = run / "raw" / RID / "0"
    job = json.loads((rep / "job.json").read_text())
    assert job["model_file"].endswith("model.minimal.b1.pt2") and job["block"] == RUNNERS["cpp-aoti-minimal"].block
    out = np.fromfile(rep / "outputs.bin", dtype="<f4")
    ref = np.fromfile(run / "raw" / "reference.bin", dtype="<f4")[: job["slots"]]
    assert out.shape == ref.shape and np.abs(ref).max() > 1  # real outputs, not zeros
    np.testing.assert_allclose(out, ref, **TOL)
    result = json.loads((rep / "result.json").read_text())
    assert contract.problem("result", result) is None and result["runner"] == RID
    assert (result["grad_mode"], result["threads"], result["interop_threads"]) == ("inference", 1, 1)
    extra = result["extra"]
    assert extra["aoti_call"].startswith("AOTInductorModelRunMinimalArrayrefInterfaceV2")
    assert "not a documented public API" in extra["aoti_call"] and "GIL held" in extra["aoti_call"]
    assert extra["output"] == "(float32 [1])" and extra["aoti_so"].startswith("data/aotinductor/model/")
    record, source = _program(run)
    assert record["status"] == "ok" and record["outputs_ok"], record["message"]  # outputs matched the reference
    assert len(record["us_per_call"]) == 1 and record["us_per_call"][0] > 0 and record["snippet"]
    assert "AOTInductorModelRunMinimalArrayrefInterfaceV2" in source and "build_ext" in source
    for harness_part in ("runner_common", "job.json", "measure("):
        assert harness_part not in source, harness_part
    folder = run / record["folder"]
    assert (folder / "aoti_minimal_ext.c").read_text() == (ROOT / "python" / "aoti_minimal_ext.c").read_text()
    assert list(folder.glob("aoti_minimal_ext*.so"))  # built by the program itself, with setuptools


def test_a_users_model_with_two_inputs_verifies(tmp_path: Path) -> None:
    """The conformance test's user factory (float32 [1, 4] and int64 [1, 3] in, a tuple out), so its package is
    the cached one: exported by the harness, run, and its outputs checked by the harness's verify step."""
    data = {"name": "py-minimal-user", "model": USER_MODEL, "inputs": USER_INPUTS,
            "run": {"calls": 200, "warmup_calls": 3, "repeats": 1, "timeout_s": 300, "programs": True},
            "runners": [{"id": RID}]}
    run = run_suite(parse_suite(data, "py-minimal-user.toml"), tmp_path, BUILD_DIR, quiet=True)
    row = _row(run)
    assert row["status"] == "ok" and bool(row["outputs_ok"]), row["message"]
    rep = run / "raw" / RID / "0"
    job = json.loads((rep / "job.json").read_text())
    assert [t["dtype"] for t in job["input_tensors"]] == ["float32", "int64"]
    assert job["output_size"] == 4 + 1 and job["model_file"].endswith("model.minimal.b1.pt2")
    extra = json.loads((rep / "result.json").read_text())["extra"]
    assert extra["output"] == "(float32 [1, 4], float32 [1, 1])"  # both outputs, in the .so's (pytree) order
    assert "float32 [1, 4], int64 [1, 3]" in extra["input"]
    out = np.fromfile(rep / "outputs.bin", dtype="<f4").reshape(job["slots"], 5)
    ref = np.fromfile(run / "raw" / "reference.bin", dtype="<f4").reshape(-1, 5)[: job["slots"]]
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
    record, _ = _program(run)
    assert record["status"] == "ok" and record["outputs_ok"], record["message"]


def test_the_decomposition_splits_it_with_pythons_c_extension_call_as_the_crossing() -> None:
    """As Python's fastest row it is split like any other: the crossing is Python's empty C-extension call (the
    call it makes), the framework its own row on the one-op model, which it can run (a factory's minimal package)."""
    rows = [("cpp-raw", "C++", 0.01), ("cpp-aoti-minimal", "C++", 0.05), ("python-aoti-single", "Python", 1.4),
            (RID, "Python", 0.1)]
    df = pd.DataFrame([{"runner": rid, "runner_id": rid, "language": lang, "median_us": us, "status": "ok",
                        "outputs_ok": True, "batch": 1, "method": "m", "median_ci_low_us": us, "median_ci_high_us": us}
                       for rid, lang, us in rows])
    assert [r["row"] for r in decomposition.chosen(df)] == [RID, "cpp-aoti-minimal"]
    assert decomposition.crossing_of(RID) == "python-extension"
    one_op = decomposition.one_op_suite(load_suite(str(TINY)), [RID])
    assert RUNNERS[RID].cannot_run(one_op.model) is None
    assert RUNNERS[RID].needs(1, user=True) == ("model.minimal.b1.pt2",)
