"""One conformance test over every runner of the registry: each runs a tiny job of a model kind it
supports, and what it wrote is checked against the contract (docs/runner-contract.md): the result against
the result schema, the outputs' size, the timings' count, the bare pass, the threads read back, and the
outputs against the Python reference. A runner may be SKIPPED only with its export's own reason."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import contract
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite_file import parse_suite
from tests.conftest import TESTS, TINY

MODELS = {"mlp": TINY, "conv_bn_relu": TESTS / "suites" / "tiny-mobile.toml"}  # their model tables, cached


def _kind(rid: str) -> str:
    kinds = RUNNERS[rid].model_kinds
    return "mlp" if "mlp" in kinds else kinds[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run per model kind, of every registered runner that runs it."""
    out = {}
    for kind, source in MODELS.items():
        ids = [rid for rid in RUNNERS if _kind(rid) == kind]
        data = tomllib.loads(source.read_text())
        data.pop("claims", None)
        data["run"] = {"calls": 2000 if kind == "mlp" else 20, "warmup_calls": 3, "warmup_s": 0, "repeats": 1,
                       "threads": 1, "interop_threads": 1, "timeout_s": 300, "programs": False}
        data["runners"] = [{"id": rid} for rid in ids]
        suite = parse_suite(data, f"conformance-{kind}.toml")
        out[kind] = run_suite(suite, tmp_path_factory.mktemp(kind), BUILD_DIR, quiet=True)
    return out


def _rows(runs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    rows = {}
    for run in runs.values():
        for r in pd.read_csv(run / "results.csv").to_dict("records"):
            rows[r["runner"]] = {**r, "_run": run}
    return rows


def test_every_registered_runner_takes_part(runs: dict[str, Path]) -> None:
    assert set(_rows(runs)) == set(RUNNERS), "every registry entry runs in the conformance test"


@pytest.mark.parametrize("rid", list(RUNNERS))
def test_runner_obeys_the_contract(runs: dict[str, Path], rid: str) -> None:
    row = _rows(runs)[rid]
    if row["status"] == "SKIPPED":
        assert "cannot export" in str(row["message"]) or "not found" in str(row["message"]), row["message"]
        pytest.skip(f"{rid}: {row['message']}")
    assert row["status"] == "ok" and row["outputs_ok"], row["message"]
    rep = row["_run"] / "raw" / rid / "0"
    job = json.loads((rep / "job.json").read_text())
    result = json.loads((rep / "result.json").read_text())
    assert contract.problem("job", job) is None and contract.problem("result", result) is None
    assert result["runner"] == rid and result["calls"] == job["calls"] and result["batch"] == job["batch"]
    outputs = np.fromfile(rep / "outputs.bin", dtype="<f4")
    assert outputs.size == job["slots"] * job["batch"] * job["output_size"]
    timings = np.fromfile(rep / "timings.bin", dtype="<i8")
    assert timings.size == job["calls"] // job["block"] and (timings > 0).all()
    assert np.fromfile(rep / "warmup_timings.bin", dtype="<i8").size == job["warmup_calls"]
    assert len(result["bare_ns"]) == job["bare_rounds"] and all(ns > 0 for ns in result["bare_ns"])
    assert result["peak_rss_kb"] and result["peak_rss_kb"] > 1000
    if RUNNERS[rid].uses_torch:
        assert (result["threads"], result["interop_threads"]) == (job["threads"], job["interop_threads"])
        assert str(result["libtorch_path"]).endswith("libtorch_cpu.so")
