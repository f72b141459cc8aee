"""torch.export + AOTInductor: the per-batch exports, the runners' failures on a missing, corrupt or misshapen
package, the dynamic package at another batch, and torch.export's refusal of the data-dependent branch.

The packages are the harness's own for the tiny suite's model (cached in build/, shared with the
conformance test), since one AOTInductor compile takes tens of seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness import exports
from harness.build import Built, toolchain_problem
from harness.models import ModelFiles, load_eager, train_and_export
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import load_suite
from tests import jobs
from tests.conftest import TESTS
from tests.tiny import built_ok, run_job, tiny_with

RUNNER_IDS = ("python-aoti", "python-aoti-loader", "python-aoti-single", "python-aoti-boxed", "python-export",
              "cpp-aoti")
PACKAGES = ("model.b1.pt2", "model.b1.exported.pt2", "model.dynamic.pt2")


@pytest.fixture(scope="module")
def tiny() -> tuple[Suite, ModelFiles]:
    return tiny_with(PACKAGES)


@pytest.fixture(scope="module")
def built(tiny: tuple[Suite, ModelFiles]) -> dict[str, Built]:
    for rid in RUNNER_IDS:
        problem = toolchain_problem(RUNNERS[rid])
        if problem:
            pytest.skip(f"{rid} cannot be built here: {problem}")
    return {rid: built_ok(rid, tiny[0]) for rid in RUNNER_IDS}


def _job(d: Path, rid: str, files: ModelFiles, model_file: Path, x: np.ndarray, **kw: Any) -> Path:
    """A schema-valid job for `rid` with its registry options, loading `model_file`."""
    options = dict(RUNNERS[rid].options) | kw.pop("options", {})
    return jobs.make_job(d, rid, files.dir, x, layers=(2, 8, 8, 1), calls=kw.pop("calls", 20),
                         override={"model_file": str(model_file), "options": options}, **kw)


def _reference(files: ModelFiles, suite: Suite, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return load_eager(suite.model, files)(torch.from_numpy(x)).numpy().reshape(-1)


def test_per_batch_names_resolve_and_others_do_not() -> None:
    assert "batch 16" in exports.exporter("model.b16.pt2").__doc__
    assert "batch 4" in exports.exporter("model.b4.exported.pt2").__doc__
    assert "dynamic batch" in exports.exporter("model.dynamic.pt2").__doc__
    for name in ("model.b0.pt2", "model.bx.pt2", "model.b1.nothing"):
        with pytest.raises(KeyError):
            exports.exporter(name)
    assert RUNNERS["cpp-aoti"].needs(64) == ("model.b64.pt2",)
    assert RUNNERS["cpp-aoti-dynamic"].needs(64) == ("model.dynamic.pt2",)


def test_the_record_keeps_export_and_compile_seconds(tiny: tuple[Suite, ModelFiles]) -> None:
    facts = exports.facts(tiny[1], list(PACKAGES))
    for name in ("model.b1.pt2", "model.dynamic.pt2"):
        seconds = facts[name]["seconds"]
        assert seconds["export"] > 0 and seconds["compile"] > 0.5, facts  # a g++ compile is never instant
    assert set(facts["model.b1.exported.pt2"]["seconds"]) == {"export"}


@pytest.mark.parametrize("rid", RUNNER_IDS)
def test_missing_and_corrupt_packages_fail_in_one_line(rid: str, built: dict[str, Built],
                                                       tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (20, 2)).astype(np.float32)
    corrupt = tmp_path / "model.b1.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not a package" * 10)
    for model_file, needle in ((tmp_path / "absent.pt2", "absent.pt2"), (corrupt, "model.b1.pt2")):
        p = run_job(built[rid], _job(tmp_path / model_file.stem, rid, tiny[1], model_file, x))
        assert p.returncode != 0
        last = p.stderr.strip().splitlines()[-1]
        prefix = "runner.py:" if RUNNERS[rid].language == "Python" else f"{rid}:"  # how each runtime names itself
        assert last.startswith(prefix) and needle in last, p.stderr[-2000:]


def test_an_exact_shape_package_refuses_another_batch(built: dict[str, Built], tiny: tuple[Suite, ModelFiles],
                                                     tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (16, 2)).astype(np.float32)
    job = _job(tmp_path, "cpp-aoti", tiny[1], tiny[1].dir / "model.b1.pt2", x, batch=4, calls=4)
    p = run_job(built["cpp-aoti"], job)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode != 0 and last.startswith("cpp-aoti:") and "AOTInductor" in last, p.stderr[-2000:]


@pytest.mark.parametrize("rid", ["cpp-aoti", "python-aoti"])
@pytest.mark.parametrize("batch", [1, 4])
def test_the_dynamic_package_at_any_batch(rid: str, batch: int, built: dict[str, Built],
                                         tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    suite, files = tiny
    x = np.random.default_rng(batch).uniform(-5, 5, (16, 2)).astype(np.float32)
    job = _job(tmp_path, rid, files, files.dir / "model.dynamic.pt2", x, batch=batch, calls=16 // batch,
               options={"batch_dim": True}, threads=2)
    p = run_job(built[rid], job)
    assert p.returncode == 0, p.stderr[-2000:]
    out = np.fromfile(tmp_path / "outputs.bin", dtype="<f4")
    np.testing.assert_allclose(out, _reference(files, suite, x), atol=1e-5, rtol=1e-5)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["threads"] == 2  # set through the job, read back from the runtime


def test_torch_export_refuses_the_data_dependent_branch() -> None:
    suite = load_suite(str(TESTS / "suites" / "tiny-pitfall.toml"))
    files = train_and_export(suite.model, suite.inputs, BUILD_DIR)
    with pytest.raises(exports.ExportUnavailable, match=r"torch\.export\.export refused the model: "
                                                        r"GuardOnDataDependentSymNode"):
        exports.exporter("model.b1.pt2")(load_eager(suite.model, files), suite.model, files.dir / "never.pt2",
                                         np.zeros((1, 2), np.float32))
    assert not (files.dir / "never.pt2").exists()
