"""The Java runtime's load job (docs/runner-contract.md, "Load job"): Java threads on one loaded model.

java/runner/BenchRuntime.java runs it for every Java runner; here java-torchscript (the runner itself is every
caller's: a call keeps no state), java-torchscript-reuse (each further caller refills direct buffers of its own),
java-aoti (one AOTIModelPackageLoader with a runner per caller, each caller its own AotiModel.share() binding) and
java-aoti-ffm (one container with a model per caller; JDK 22+, skipped without one). The builds and the AOTInductor
package are the other tests' (cached in build/). Durations are tiny (0.3 s): the tests check what the callers did
(counts add up, every output checked and equal to its slot's, a rate far above capacity ends on time as unissued
queries, the go file holds the callers back), never how fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness import contract
from harness.build import Built, build_runner
from harness.java_build import java_env, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.models import ModelFiles
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests import jobs
from tests.tiny import tiny_with

# runner: (model file, grad mode)
RUNNERS_USED = {"java-torchscript": ("model.ts.pt", "inference"),
                "java-torchscript-reuse": ("model.ts.pt", "inference"),
                "java-aoti": ("model.b1.pt2", "inference"),
                "java-aoti-ffm": ("model.b1.pt2", "no_grad")}
DURATION_S = 0.3


@pytest.fixture(scope="module")
def files() -> ModelFiles:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    return tiny_with(("model.b1.pt2",))[1]


@pytest.fixture(scope="module")
def built(files: ModelFiles) -> dict[str, Built]:
    out = {}
    for rid in RUNNERS_USED:
        b = build_runner(RUNNERS[rid], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)
        if b.status == "skipped" and rid == "java-aoti-ffm":  # no JDK 22+: tests/test_java_ffm.py says so too
            continue
        assert b.status == "ok", f"{rid}: {b.reason}"
        out[rid] = b
    return out


def runner(built: dict[str, Built], rid: str) -> Built:
    if rid not in built:
        pytest.skip(f"{rid} is not built here (it needs a JDK 22 or newer)")
    return built[rid]


def load_job(d: Path, rid: str, files: ModelFiles, load: dict[str, Any]) -> Path:
    x = np.random.default_rng(1).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    model_file, grad_mode = RUNNERS_USED[rid]
    return jobs.make_job(d, rid, files.dir, x, model_file=model_file, layers=(2, 8, 8, 1), calls=64, warmup=4,
                         bare_rounds=1, grad_mode=grad_mode,
                         override={"bare_calls": 0, "load": {"seed": 3, "duration_s": DURATION_S,
                                                            "latencies": str(d / "lat.bin"), **load}})


def command(b: Built, rid: str, job: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, **java_env(threads=1, interop_threads=1, grad_mode=RUNNERS_USED[rid][1])}
    return [*b.argv, str(job)], env


def run(b: Built, rid: str, job: Path) -> subprocess.CompletedProcess[str]:
    argv, env = command(b, rid, job)
    return subprocess.run(argv, env=env, cwd=b.source_dir, capture_output=True, text=True, timeout=120)


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


@pytest.mark.parametrize(("rid", "callers"), [("java-torchscript", 1), ("java-torchscript", 2),
                                              ("java-torchscript-reuse", 2), ("java-aoti", 1), ("java-aoti", 2),
                                              ("java-aoti-ffm", 2)])
def test_closed_callers_count_and_verify_every_call(rid: str, callers: int, built: dict[str, Built],
                                                    files: ModelFiles, tmp_path: Path) -> None:
    job_path = load_job(tmp_path, rid, files, {"mode": "closed", "callers": callers})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run(runner(built, rid), rid, job_path)
    assert p.returncode == 0, p.stderr[-3000:]
    job, result, lat = finished(job_path)
    load = result["load"]
    assert load["mode"] == "closed" and load["callers"] == callers and load["shared_model"] is True
    assert len(load["counts"]) == callers and all(c > 0 for c in load["counts"])
    assert sum(load["counts"]) == lat.size == load["issued"] == load["checked"]
    assert load["mismatches"] == 0 and load["unissued"] == 0 and (lat > 0).all()
    assert load["elapsed_ns"] >= DURATION_S * 1e9
    assert result["bare_ns"] == []  # a load job has no bare pass
    assert load["noop"] is False  # a job without the key calls the model
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(files, job), atol=1e-5)


# java-torchscript holds its fresh outputs and copies them at the check, java-aoti copies each one after its call
NOOP_CASES = [("java-torchscript", True), ("java-aoti", True), ("java-torchscript", False)]


@pytest.mark.parametrize(("rid", "noop"), NOOP_CASES)
@pytest.mark.parametrize("load", [{"mode": "closed", "callers": 2}, {"mode": "poisson", "callers": 2, "rate": 2000.0}])
def test_noop_runs_the_loop_on_the_stand_in_and_checks_every_output(load: dict[str, Any], rid: str, noop: bool,
                                                                    built: dict[str, Built], files: ModelFiles,
                                                                    tmp_path: Path) -> None:
    """With noop each call is the stand-in (the slot's kept floats handed back and copied into the held buffer): the
    counts add up, every output checked equals its slot's; the slots pass still ran and is written. `"noop": false`
    is a real load."""
    job_path = load_job(tmp_path, rid, files, {**load, "noop": noop})
    assert contract.problem("job", json.loads(job_path.read_text())) is None
    p = run(runner(built, rid), rid, job_path)
    assert p.returncode == 0, p.stderr[-3000:]
    job, result, lat = finished(job_path)
    rec = result["load"]
    assert result["status"] == "ok" and rec["noop"] is noop and rec["mode"] == load["mode"]
    assert len(rec["counts"]) == 2 and sum(rec["counts"]) == lat.size == rec["issued"] == rec["checked"] > 0
    assert rec["mismatches"] == 0 and (lat >= 0).all()
    np.testing.assert_allclose(np.fromfile(job["outputs"], dtype="<f4"), reference(files, job), atol=1e-5)


@pytest.mark.parametrize("rid", ["java-torchscript", "java-aoti"])
def test_poisson_far_above_capacity_ends_on_time_with_unissued(rid: str, built: dict[str, Built], files: ModelFiles,
                                                               tmp_path: Path) -> None:
    job_path = load_job(tmp_path, rid, files, {"mode": "poisson", "callers": 2, "rate": 1e7})
    p = run(runner(built, rid), rid, job_path)
    assert p.returncode == 0, p.stderr[-3000:]
    _, result, lat = finished(job_path)
    load = result["load"]
    assert load["unissued"] > 0  # 3 million due in 0.3 s: most never issued, and the run still ended
    assert load["elapsed_ns"] < (DURATION_S + 5) * 1e9  # no query after the deadline, however far behind
    assert sum(load["counts"]) == lat.size == load["issued"] == load["checked"] and load["mismatches"] == 0


def test_poisson_at_a_low_rate_issues_about_rate_times_duration(built: dict[str, Built], files: ModelFiles,
                                                                tmp_path: Path) -> None:
    job_path = load_job(tmp_path, "java-aoti", files, {"mode": "poisson", "callers": 1, "rate": 200.0})
    p = run(runner(built, "java-aoti"), "java-aoti", job_path)
    assert p.returncode == 0, p.stderr[-3000:]
    _, result, lat = finished(job_path)
    load = result["load"]
    assert load["unissued"] == 0 and 10 <= load["issued"] <= 200  # 60 expected; Poisson's spread is ±8
    assert lat.size == load["issued"] == load["checked"] and (lat > 0).all() and load["mismatches"] == 0


def test_callers_wait_for_the_go_file(built: dict[str, Built], files: ModelFiles, tmp_path: Path) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    job_path = load_job(tmp_path, "java-torchscript", files,
                        {"mode": "closed", "callers": 2, "ready": str(ready), "go": str(go)})
    b = runner(built, "java-torchscript")
    argv, env = command(b, "java-torchscript", job_path)
    with subprocess.Popen(argv, env=env, cwd=b.source_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
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
    assert proc.returncode == 0, err[-3000:]
    _, result, lat = finished(job_path)
    assert result["load"]["mismatches"] == 0 and sum(result["load"]["counts"]) == lat.size > 0


@pytest.mark.parametrize(("load", "key"), [({"mode": "poisson", "callers": 2}, "rate"),
                                           ({"mode": "poisson", "callers": 1, "rate": 0.0}, "rate"),
                                           ({"mode": "open", "callers": 1}, "mode"),
                                           ({"mode": "closed", "callers": 0}, "callers"),
                                           ({"mode": "closed", "callers": 1, "burst": 2}, "burst")])
def test_a_bad_load_value_is_refused_on_one_line(load: dict[str, Any], key: str, built: dict[str, Built],
                                                 files: ModelFiles, tmp_path: Path) -> None:
    job_path = load_job(tmp_path, "java-torchscript", files, load)
    p = run(runner(built, "java-torchscript"), "java-torchscript", job_path)
    assert p.returncode == 1 and f"'{key}'" in p.stderr and "job " in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "result.json").exists()
