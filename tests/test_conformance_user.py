"""The conformance test's second half: every runner that takes a user's model runs one with several inputs of
several dtypes and several outputs (a file of its own, so the tests' two workers run the two halves side by
side)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite_file import parse_suite
from tests.tiny import USER_INPUTS, USER_MODEL

USER_IDS = [rid for rid, r in RUNNERS.items() if "factory" in r.model_kinds]


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every runner that runs a user's model, on a factory taking float32 [1, 4] and int64 [1, 3] ids and
    returning a tuple: several inputs of several dtypes in, every output flattened and verified."""
    data = {
        "name": "conformance-user", "model": USER_MODEL,
        "inputs": USER_INPUTS,
        "run": {"calls": 200, "warmup_calls": 3, "warmup_s": 0, "repeats": 1, "timeout_s": 300, "programs": False},
        "runners": [{"id": rid} for rid in USER_IDS],
    }
    return run_suite(parse_suite(data, "conformance-user.toml"), tmp_path_factory.mktemp("user"), BUILD_DIR,
                     quiet=True)


@pytest.mark.parametrize("rid", USER_IDS)
def test_runner_takes_several_inputs_and_outputs(user_run: Path, rid: str) -> None:
    row = pd.read_csv(user_run / "results.csv").set_index("runner").loc[rid]
    if row["status"] == "SKIPPED":
        assert "cannot export" in str(row["message"]), row["message"]
        pytest.skip(f"{rid}: {row['message']}")
    assert row["status"] == "ok" and bool(row["outputs_ok"]), row["message"]
    rep = user_run / "raw" / rid / "0"
    job = json.loads((rep / "job.json").read_text())
    assert [t["dtype"] for t in job["input_tensors"]] == ["float32", "int64"]
    assert job["output_size"] == 4 + 1  # both outputs, flattened and joined
    assert np.fromfile(rep / "outputs.bin", dtype="<f4").size == job["slots"] * 5
