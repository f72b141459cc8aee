"""The C++ runtime's load job (docs/runner-contract.md, "Load job"): std::thread callers on one loaded model.

cpp/runner_common.hpp runs it for every C++ runner; here cpp-torchscript (one torch::jit::Module shared), cpp-aoti
(one AOTIModelPackageLoader with a runner per caller) and cpp-aoti-minimal (a model instance per further caller). The
builds and the AOTInductor packages are the other tests' (cached in build/). Durations are tiny (0.3 s): the tests
check what the callers did (counts add up, every output checked and equal to its slot's, a rate far above capacity
ends on time as unissued queries, the go file holds the callers back), never how fast.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness import contract
from harness.build import Built, toolchain_problem
from harness.models import ModelFiles
from harness.runners import RUNNERS
from harness.suite import Suite
from tests import jobs
from tests.tiny import built_ok, run_job, tiny_with

RUNNER_IDS = ("cpp-torchscript", "cpp-aoti", "cpp-aoti-minimal")
MODEL_FILES = {"cpp-torchscript": "model.ts.pt", "cpp-aoti": "model.b1.pt2", "cpp-aoti-minimal": "model.minimal.b1.pt2"}
# the plain package first, as tests/test_aoti_minimal.py makes them (the order inductor needs on a cold cache)
PACKAGES = ("model.b1.pt2", "model.minimal.b1.pt2")
DURATION_S = 0.3

_problem = toolchain_problem(RUNNERS["cpp-torchscript"])
if _problem:
    pytest.skip(f"the C++ runners cannot be built here: {_problem}", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny() -> tuple[Suite, ModelFiles]:
    return tiny_with(PACKAGES)


@pytest.fixture(scope="module")
def built(tiny: tuple[Suite, ModelFiles]) -> dict[str, Built]:
    return {rid: built_ok(rid, tiny[0]) for rid in RUNNER_IDS}


def load_job(d: Path, rid: str, files: ModelFiles, load: dict[str, Any]) -> Path:
    x = np.random.default_rng(1).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    return jobs.make_job(d, rid, files.dir, x, model_file=MODEL_FILES[rid], layers=(2, 8, 8, 1), calls=64, warmup=4,
                         bare_rounds=1, override={"bare_calls": 0, "load": {"seed": 3, "duration_s": DURATION_S,
                                                                           "latencies": str(d / "lat.bin"), **load}})


def finished(job_path: Path) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """The job, its result (valid against the result schema) and the latencies file."""
    job = json.loads(job_path.read_text())
    result = json.loads(Path(job["result"]).read_text())
    assert contract.problem("result", result) is None
    return job, result, np.fromfile(job["load"]["latencies"], dtype="<i8")


def reference(files: ModelFiles, job: dict[str, Any]) -> np.ndarray:
    x = np.fromfile(job["inputs"], dtype="<f4").reshape(-1, 2)
    with torch.no_grad():
        return torch.jit.load(str(files.dir / "model.ts.pt"))(torch.from_numpy(x)).numpy().reshape(-1)


@pytest.mark.parametrize("callers", [1, 2])
@pytest.mark.parametrize("rid", RUNNER_IDS)
def test_closed_callers_count_and_verify_every_call(rid: str, callers: int, built: dict[str, Built],
                                                    tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    files = tiny[1]
    job_path = load_job(tmp_path, rid, files, {"mode": "closed", "callers": callers})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run_job(built[rid], job_path)
    assert p.returncode == 0, p.stderr
    job, result, lat = finished(job_path)
    load = result["load"]
    assert load["mode"] == "closed" and load["callers"] == callers
    assert len(load["counts"]) == callers and all(c > 0 for c in load["counts"])
    assert sum(load["counts"]) == lat.size == load["issued"] == load["checked"]
    assert load["mismatches"] == 0 and load["unissued"] == 0 and (lat > 0).all()
    assert load["elapsed_ns"] >= DURATION_S * 1e9
    # cpp-aoti-minimal gives every further caller a model of its own: the model is shared by one caller only
    assert load["shared_model"] is (rid != "cpp-aoti-minimal" or callers == 1)
    assert result["bare_ns"] == []  # a load job has no bare pass
    assert load["noop"] is False  # a job without the key calls the model
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(files, job), atol=1e-5)


NOOP_CASES = [(rid, True) for rid in RUNNER_IDS] + [("cpp-torchscript", False)]


@pytest.mark.parametrize(("rid", "noop"), NOOP_CASES)
@pytest.mark.parametrize("load", [{"mode": "closed", "callers": 2}, {"mode": "poisson", "callers": 2, "rate": 2000.0}])
def test_noop_runs_the_loop_on_the_stand_in_and_checks_every_output(load: dict[str, Any], rid: str, noop: bool,
                                                                    built: dict[str, Built],
                                                                    tiny: tuple[Suite, ModelFiles],
                                                                    tmp_path: Path) -> None:
    """With noop each call is the stand-in (the slot's kept floats copied into the held buffer): the counts add up,
    every output checked equals its slot's; the slots pass still ran and is written. `"noop": false` is a real
    load."""
    files = tiny[1]
    job_path = load_job(tmp_path, rid, files, {**load, "noop": noop})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run_job(built[rid], job_path)
    assert p.returncode == 0, p.stderr
    job, result, lat = finished(job_path)
    rec = result["load"]
    assert result["status"] == "ok" and rec["noop"] is noop and rec["mode"] == load["mode"]
    assert len(rec["counts"]) == 2 and sum(rec["counts"]) == lat.size == rec["issued"] == rec["checked"] > 0
    assert rec["mismatches"] == 0 and (lat >= 0).all()
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(files, job), atol=1e-5)


@pytest.mark.parametrize("rid", ["cpp-torchscript", "cpp-aoti"])
def test_poisson_far_above_capacity_ends_on_time_with_unissued(rid: str, built: dict[str, Built],
                                                               tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    job_path = load_job(tmp_path, rid, tiny[1], {"mode": "poisson", "callers": 2, "rate": 1e7})
    p = run_job(built[rid], job_path)
    assert p.returncode == 0, p.stderr
    _, result, lat = finished(job_path)
    load = result["load"]
    assert load["unissued"] > 0  # 3 million due in 0.3 s: most never issued, and the run still ended
    assert load["elapsed_ns"] < (DURATION_S + 5) * 1e9  # no query after the deadline, however far behind
    assert sum(load["counts"]) == lat.size == load["issued"] == load["checked"] and load["mismatches"] == 0


def test_poisson_at_a_low_rate_issues_about_rate_times_duration(built: dict[str, Built],
                                                                tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    job_path = load_job(tmp_path, "cpp-torchscript", tiny[1], {"mode": "poisson", "callers": 1, "rate": 200.0})
    p = run_job(built["cpp-torchscript"], job_path)
    assert p.returncode == 0, p.stderr
    _, result, lat = finished(job_path)
    load = result["load"]
    assert load["unissued"] == 0 and 10 <= load["issued"] <= 200  # 60 expected; Poisson's spread is ±8
    assert lat.size == load["issued"] == load["checked"] and (lat > 0).all() and load["mismatches"] == 0


def test_callers_wait_for_the_go_file(built: dict[str, Built], tiny: tuple[Suite, ModelFiles],
                                      tmp_path: Path) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    job_path = load_job(tmp_path, "cpp-torchscript", tiny[1],
                        {"mode": "closed", "callers": 2, "ready": str(ready), "go": str(go)})
    b = built["cpp-torchscript"]
    with subprocess.Popen([*b.argv, str(job_path)], cwd=b.source_dir, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            give_up = time.monotonic() + 120
            while not ready.exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < give_up, "no ready file after 120 s"
                time.sleep(0.01)
            time.sleep(DURATION_S + 0.2)  # ready, and held back: no result while there is no go file
            assert proc.poll() is None and not Path(json.loads(job_path.read_text())["result"]).exists()
            go.write_text("go\n")
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    _, result, lat = finished(job_path)
    assert result["load"]["mismatches"] == 0 and sum(result["load"]["counts"]) == lat.size > 0


@pytest.mark.parametrize(("load", "key"), [({"mode": "poisson", "callers": 2}, "rate"),
                                           ({"mode": "poisson", "callers": 1, "rate": 0.0}, "rate"),
                                           ({"mode": "open", "callers": 1}, "mode"),
                                           ({"mode": "closed", "callers": 0}, "callers"),
                                           ({"mode": "closed", "callers": 1, "burst": 2}, "burst")])
def test_a_bad_load_value_is_refused_on_one_line(load: dict[str, Any], key: str, built: dict[str, Built],
                                                 tiny: tuple[Suite, ModelFiles], tmp_path: Path) -> None:
    job_path = load_job(tmp_path, "cpp-torchscript", tiny[1], load)
    p = run_job(built["cpp-torchscript"], job_path)
    assert p.returncode == 1 and f"'{key}'" in p.stderr and "job " in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "result.json").exists()
