"""The same bad jobs fed to the three runtimes: each refuses every one, in one line naming the key at fault.

The rules are docs/schemas/job.schema.json plus the cross-field rules of docs/runner-contract.md ("Job
rules"); Python, C++ and Java each check them before loading anything, so no result file may appear.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.build import Built, build_runner
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.runners import RUNNERS
from tests.jobs import DROP, make_job

SPEC = ModelSpec("MyNN", layers=(2, 8, 8, 1))  # the default suite's, so the cached builds are shared
RUNTIMES = {"python": "python-torchscript", "cpp": "cpp-raw", "java": "java-torchscript"}

# (case, the keys to override, the key the one-line message must name)
BAD_JOBS: list[tuple[str, dict[str, Any], str]] = [
    ("missing key", {"calls": DROP}, "calls"),
    ("unknown key", {"cals": 8}, "cals"),
    ("string for an integer", {"batch": "1"}, "batch"),
    ("boolean for an integer", {"threads": True}, "threads"),
    ("float for an integer", {"input_count": 8.0}, "input_count"),
    ("below its minimum", {"warmup_calls": 0}, "warmup_calls"),
    ("a negative warm-up time", {"warmup_s": -0.5}, "warmup_s"),
    ("a string for a number", {"warmup_s": "0.5"}, "warmup_s"),
    ("grad mode outside its enum", {"grad_mode": "eval"}, "grad_mode"),
    ("model kind outside its enum", {"model_kind": "rnn"}, "model_kind"),
    ("a zero in a shape", {"sample_shape": [0]}, "sample_shape"),
    ("a shape that is not a list", {"output_shape": 1}, "output_shape"),
    ("empty path", {"inputs": ""}, "inputs"),
    ("options not an object", {"options": []}, "options"),
    ("option the contract does not know", {"options": {"turbo": True}}, "turbo"),
    ("option of the wrong type", {"options": {"channels_last": "yes"}}, "channels_last"),
    ("rule 1: sample_size is not the product of sample_shape", {"sample_size": 3, "input_shape": [3]}, "sample_size"),
    ("rule 2: output_size is not the product of output_shape", {"output_size": 2}, "output_size"),
    ("rule 3: layers do not match the sample", {"layers": [3, 8, 1]}, "layers"),
    ("rule 3: an MLP without layers", {"layers": []}, "layers"),
    ("rule 4: input_shape does not hold one batch", {"input_shape": [1, 3]}, "input_shape"),
    ("rule 5: fewer inputs than one batch", {"batch": 16, "input_shape": [16, 2], "slots": 1}, "input_count"),
    ("rule 6: slots not min(calls, input_count // batch)", {"slots": 3}, "slots"),
    ("rule 7: calls not a multiple of block", {"block": 3}, "block"),
    ("rule 8: bare_rounds does not divide the blocks", {"bare_rounds": 3}, "bare_rounds"),
    ("rule 9: an option this runner does not support", {"options": {"layout": "columns"}}, "layout"),
]


@pytest.fixture(scope="module")
def built() -> dict[str, Built]:
    out = {}
    for runtime, rid in RUNTIMES.items():
        b = build_runner(RUNNERS[rid], SPEC, BUILD_DIR)
        if b.status == "skipped":
            pytest.skip(f"{rid}: {b.reason}")
        assert b.status == "ok", f"{rid}: {b.reason}"
        out[runtime] = b
    return out


def _refuses(b: Built, job: Path) -> str:
    """Runs a job that must be refused: non-zero exit, no result, the runner's own last line returned."""
    env = None
    if b.env_for is not None:
        import os

        from harness.java_build import java_env

        env = {**os.environ, **java_env(1, 1, "default")}
    p = subprocess.run([*b.argv, str(job)], capture_output=True, text=True, timeout=120, env=env,
                       cwd=b.source_dir, check=False)
    assert p.returncode != 0, p.stdout + p.stderr
    try:
        result = Path(json.loads(job.read_text()).get("result", job.parent / "result.json"))
    except json.JSONDecodeError:
        result = job.parent / "result.json"
    assert not result.exists()
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines, "no message on stderr"
    return lines[-1]


@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize(("case", "change", "key"), BAD_JOBS, ids=[c for c, _, _ in BAD_JOBS])
def test_bad_job_is_refused_naming_the_key(built: dict[str, Built], tmp_path: Path, runtime: str, case: str,
                                           change: dict[str, Any], key: str) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, size=(8, 2)).astype("<f4")
    job = make_job(tmp_path, RUNTIMES[runtime], tmp_path, x, layers=SPEC.layers, calls=8, bare_rounds=2,
                   grad_mode="n/a" if runtime == "cpp" else "default", override=change)
    line = _refuses(built[runtime], job)
    assert f"'{key}'" in line, f"{case}: the message does not name '{key}': {line}"
    assert "job" in line, line


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_file_that_is_not_json_is_refused(built: dict[str, Built], tmp_path: Path, runtime: str) -> None:
    job = tmp_path / "job.json"
    job.write_text("{not json")
    line = _refuses(built[runtime], job)
    assert "JSON" in line and str(job) in line, line
