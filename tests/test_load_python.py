"""The Python runtime's load job (docs/runner-contract.md, "Load job"): caller threads on one loaded model.

Durations are tiny (0.3 s): the tests check what the callers did (counts add up, every output checked and
equal to its slot's, a rate far above capacity ends on time as unissued queries), never how fast.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness import contract
from harness.build import Built, build_runner
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests import jobs

SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))


@pytest.fixture(scope="module")
def runner() -> Built:
    b = build_runner(RUNNERS["python-torchscript"], SPEC, BUILD_DIR)
    assert b.status == "ok", b.reason
    return b


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 1)).eval()
    d = tmp_path_factory.mktemp("model")
    torch.jit.trace(net, torch.zeros(2)).save(str(d / "model.ts.pt"))
    return d


def load_job(d: Path, model_dir: Path, load: dict[str, Any]) -> Path:
    x = np.random.default_rng(1).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    path = jobs.make_job(d, "python-torchscript", model_dir, x, layers=SPEC.layers, calls=64, warmup=4,
                         bare_rounds=1, override={"bare_calls": 0, "load": {"seed": 3, "duration_s": 0.3,
                                                                           "latencies": str(d / "lat.bin"), **load}})
    return path


def run(b: Built, job: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*b.argv, str(job)], cwd=b.source_dir, capture_output=True, text=True, timeout=120)


def reference(model_dir: Path, job: dict[str, Any]) -> np.ndarray:
    x = np.fromfile(job["inputs"], dtype="<f4").reshape(-1, 2)
    with torch.no_grad():
        return torch.jit.load(str(model_dir / "model.ts.pt"))(torch.from_numpy(x)).numpy().reshape(-1)


@pytest.mark.parametrize("callers", [1, 2])
def test_closed_callers_count_and_verify_every_call(callers: int, runner: Built, model_dir: Path,
                                                    tmp_path: Path) -> None:
    job_path = load_job(tmp_path, model_dir, {"mode": "closed", "callers": callers})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run(runner, job_path)
    assert p.returncode == 0, p.stderr
    job = json.loads(job_path.read_text())
    result = json.loads(Path(job["result"]).read_text())
    assert contract.problem("result", result) is None
    load = result["load"]
    lat = np.fromfile(job["load"]["latencies"], dtype="<i8")
    assert len(load["counts"]) == callers and all(c > 0 for c in load["counts"])
    assert sum(load["counts"]) == lat.size == load["issued"] == load["checked"]
    assert load["mismatches"] == 0 and load["unissued"] == 0 and (lat > 0).all()
    assert load["elapsed_ns"] >= 0.3e9
    assert load["noop"] is False  # a job without the key calls the model
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(model_dir, job), atol=1e-5)


def test_poisson_far_above_capacity_ends_on_time_with_unissued(runner: Built, model_dir: Path,
                                                               tmp_path: Path) -> None:
    job_path = load_job(tmp_path, model_dir, {"mode": "poisson", "callers": 2, "rate": 1e7})
    p = run(runner, job_path)
    assert p.returncode == 0, p.stderr
    job = json.loads(job_path.read_text())
    load = json.loads(Path(job["result"]).read_text())["load"]
    assert load["unissued"] > 0  # 3 million due in 0.3 s: most never issued, and the run still ended
    assert sum(load["counts"]) == load["issued"] == load["checked"] and load["mismatches"] == 0


def test_poisson_at_a_low_rate_issues_about_rate_times_duration(runner: Built, model_dir: Path,
                                                                tmp_path: Path) -> None:
    job_path = load_job(tmp_path, model_dir, {"mode": "poisson", "callers": 1, "rate": 200.0})
    p = run(runner, job_path)
    assert p.returncode == 0, p.stderr
    job = json.loads(job_path.read_text())
    load = json.loads(Path(job["result"]).read_text())["load"]
    assert load["unissued"] == 0 and 10 <= load["issued"] <= 200  # 60 expected; Poisson's spread is ±8
    lat = np.fromfile(job["load"]["latencies"], dtype="<i8")
    assert lat.size == load["issued"] and (lat > 0).all()


@pytest.mark.parametrize("noop", [True, False])
@pytest.mark.parametrize("load", [{"mode": "closed", "callers": 2}, {"mode": "poisson", "callers": 2, "rate": 2000.0}])
def test_noop_runs_the_loop_on_the_stand_in_and_checks_every_output(load: dict[str, Any], noop: bool, runner: Built,
                                                                    model_dir: Path, tmp_path: Path) -> None:
    """With noop each call is the stand-in (the slot's kept output handed back): the counts add up, every output
    checked equals its slot's; the slots pass still ran and is written. `"noop": false` is a real load."""
    job_path = load_job(tmp_path, model_dir, {**load, "noop": noop})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run(runner, job_path)
    assert p.returncode == 0, p.stderr
    job = json.loads(job_path.read_text())
    result = json.loads(Path(job["result"]).read_text())
    assert result["status"] == "ok" and contract.problem("result", result) is None
    rec = result["load"]
    lat = np.fromfile(job["load"]["latencies"], dtype="<i8")
    assert rec["noop"] is noop and rec["mode"] == load["mode"] and len(rec["counts"]) == 2
    assert sum(rec["counts"]) == lat.size == rec["issued"] == rec["checked"] > 0
    assert rec["mismatches"] == 0 and (lat >= 0).all()
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(model_dir, job), atol=1e-5)


@pytest.mark.parametrize(("load", "key"), [({"mode": "open", "callers": 1}, "mode"),
                                           ({"mode": "closed", "callers": 0}, "callers"),
                                           ({"mode": "closed", "callers": 1, "burst": 2}, "burst")])
def test_a_bad_load_value_is_refused_naming_it(load: dict[str, Any], key: str, runner: Built, model_dir: Path,
                                               tmp_path: Path) -> None:
    p = run(runner, load_job(tmp_path, model_dir, load))
    assert p.returncode == 1 and f"'{key}'" in p.stderr and "job " in p.stderr, p.stderr
