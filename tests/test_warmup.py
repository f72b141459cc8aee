"""The warm-up's minimum time, `[run] warmup_s`: validated in the suite, passed in the job, honoured by every runtime
(python/runner_common.py, cpp/runner_common.hpp, java/runner/BenchRuntime.java) and checked by the harness
(harness/contract.py) the same way for each.

The runtimes run on cheap runners (python-torchscript, cpp-raw, java-torchscript) and a seeded MyNN made here.
The checks on time are lower bounds only: a fast machine passes them as well as a slow one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness import contract
from harness.build import Built, build_runner, toolchain_problem
from harness.errors import UserError
from harness.java_build import java_env, java_toolchain_problem
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from harness.suite_file import parse_suite
from tests.jobs import make_job, minimal_result
from tests.seed_model import MyNN

SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))
WARMUP_CALLS = 3
TIMEOUT_S = 120


@pytest.mark.parametrize(("value", "needle"), [(-0.5, "minimum 0"), ("1", "type number"), (True, "type number"),
                                               (4000, "maximum 3600")])
def test_the_suite_refuses_a_bad_warmup_s_naming_it(suite_dict: dict[str, Any], value: Any, needle: str) -> None:
    suite_dict["run"]["warmup_s"] = value
    with pytest.raises(UserError) as info:
        parse_suite(suite_dict, "my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: run.warmup_s: ") and needle in message and "\n" not in message, message


def test_the_default_is_the_runspecs_and_a_suite_may_set_its_own(suite_dict: dict[str, Any]) -> None:
    from harness.suite import WARMUP_S

    assert parse_suite(suite_dict, "x.toml").run.warmup_s == WARMUP_S > 0
    suite_dict["run"]["warmup_s"] = 0.01
    assert parse_suite(suite_dict, "x.toml").run.warmup_s == 0.01


def _result(**changes: Any) -> dict[str, Any]:
    return minimal_result("r", **{"warmup_calls": 5, "warmup_s": 0.2, "warmup_calls_made": 9,
                                  "warmup_ns": 200_000_000, **changes})


JOB = {"warmup_calls": 5, "warmup_s": 0.2}


@pytest.mark.parametrize(("changes", "needle"), [
    ({}, None),
    ({"warmup_calls_made": 5}, None),  # the count took the whole time already
    ({"warmup_calls_made": 4}, "'warmup_calls_made' is 4, fewer than the job's warmup_calls 5"),
    ({"warmup_ns": 199_999_999}, "'warmup_ns' is 199999999: the warm-up ended before the job's warmup_s (0.2 s)"),
    ({"warmup_s": 0.0}, "'warmup_s' is 0.0, the job's is 0.2"),
])
def test_the_harness_checks_the_warmup_against_the_job(changes: dict[str, Any], needle: str | None) -> None:
    found = contract.warmup_problem(JOB, _result(**changes))
    assert found == needle if needle is None else found is not None and found.startswith(needle), found


def test_a_result_without_the_warmup_record_is_refused_and_an_old_job_is_not_checked() -> None:
    result = {k: v for k, v in _result().items() if k != "warmup_ns"}
    assert contract.problem("result", result) is None  # the schema allows it: results from before warmup_s
    assert "'warmup_ns' is missing" in (contract.warmup_problem(JOB, result) or "")
    assert contract.warmup_problem({"warmup_calls": 5}, result) is None


# ---- each runtime honours it ----

@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded MyNN as model.ts.pt (Python, Java) and weights.bin (cpp-raw)."""
    d = tmp_path_factory.mktemp("warmup-models")
    torch.manual_seed(0)
    net = MyNN().eval()
    with torch.no_grad():
        torch.jit.trace(net, torch.zeros(2)).save(str(d / "model.ts.pt"))
        np.concatenate([p.numpy().ravel() for m in (net.l1, net.l2, net.l3) for p in (m.weight, m.bias)]).astype(
            "<f4").tofile(d / "weights.bin")
    return d


def _built(rid: str) -> Built:
    problem = java_toolchain_problem() if RUNNERS[rid].toolchain == "java" else toolchain_problem(RUNNERS[rid])
    if problem:
        pytest.skip(f"{rid}: {problem}")
    b = build_runner(RUNNERS[rid], SPEC, BUILD_DIR)
    assert b.status == "ok", f"{rid}: {b.reason}"
    return b


# runner: (model file, grad mode, block)
CHEAP = {"python-torchscript": ("model.ts.pt", "default", 1), "cpp-raw": ("weights.bin", "n/a", 10),
         "java-torchscript": ("model.ts.pt", "inference", 1)}


@pytest.mark.parametrize("warmup_s", [0.0, 0.2])
@pytest.mark.parametrize("rid", list(CHEAP))
def test_each_runtime_warms_up_for_warmup_s_after_its_calls(models: Path, tmp_path: Path, rid: str,
                                                             warmup_s: float) -> None:
    """warmup_s = 0: exactly warmup_calls calls; 0.2: at least 0.2 s and at least those calls. Either way the
    warm-up timings are the first warmup_calls calls' and the first of them is the first call."""
    built = _built(rid)
    model_file, grad_mode, block = CHEAP[rid]
    x = np.random.default_rng(0).uniform(-10, 10, size=(40, 2)).astype("<f4")
    path = make_job(tmp_path, rid, models, x, model_file=model_file, layers=SPEC.layers, calls=40, block=block,
                    warmup=WARMUP_CALLS, warmup_s=warmup_s, grad_mode=grad_mode)
    java = RUNNERS[rid].toolchain == "java"  # the bridge's threads and grad mode, as the harness sets them
    env = {**os.environ, **java_env(threads=1, interop_threads=1, grad_mode=grad_mode)} if java else None
    p = subprocess.run([*built.argv, str(path)], cwd=built.source_dir, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT_S, check=False)
    assert p.returncode == 0, p.stderr
    job = json.loads(path.read_text())
    result = json.loads(Path(job["result"]).read_text())
    assert contract.problem("result", result) is None and contract.warmup_problem(job, result) is None
    assert result["warmup_s"] == warmup_s and result["warmup_ns"] >= warmup_s * 1e9
    if warmup_s == 0:
        assert result["warmup_calls_made"] == WARMUP_CALLS
    else:
        assert result["warmup_calls_made"] >= WARMUP_CALLS
    warm = np.fromfile(job["warmup_timings"], dtype="<i8")
    assert warm.size == WARMUP_CALLS and result["first_call_ns"] == warm[0]
    assert warm.sum() <= result["warmup_ns"]  # each timed warm-up call lies within the warm-up
