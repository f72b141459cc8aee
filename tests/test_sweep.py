"""Batch and thread sweeps: the overhead fit, the batch where overhead falls under 10 %, the floor goal."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import recipes, sweep
from harness.suite_file import load_suite

BATCHES = [1, 4, 16, 64, 256, 1024, 4096]


def sweep_frame(costs: dict[str, tuple[str, float, float]]) -> pd.DataFrame:
    """Rows as collect writes them for t(b) = a + c·b exactly: name → (language, a µs, c µs)."""
    rows = []
    for family, (language, a, c) in costs.items():
        for b in BATCHES:
            t = a + c * b
            rows.append({"runner": f"{family}-b{b}", "family": family, "language": language, "status": "ok",
                         "batch": b, "threads": 1, "median_us": t, "per_sample_us": t / b})
    return pd.DataFrame(rows)


COSTS = {
    "python-eager": ("Python", 100.0, 0.05),  # overhead < 10 % once c·b > 9a: b > 18000: never in the sweep
    "cpp-api": ("C++", 10.0, 0.01),  # c·b > 9a at b > 9000: never either
    "cpp-torchscript": ("C++", 20.0, 0.2),  # b > 900: 1024
    "cpp-raw": ("C++", 0.0, 0.01),  # no fixed cost: under 10 % from batch 1
}


def judge(df: pd.DataFrame, suite: str, medians: dict[str, list[float]] | None = None) -> list[dict[str, str]]:
    """The bundled sweep suite's own claims on a synthetic table."""
    return recipes.verdicts(df, medians, load_suite(suite).claims, {})


def test_fit_recovers_overhead_and_per_sample_cost() -> None:
    b = np.array(BATCHES, dtype=float)
    a, c = sweep.fit(b, 12.0 + 0.3 * b)
    assert math.isclose(a, 12.0, rel_tol=1e-6) and math.isclose(c, 0.3, rel_tol=1e-6)
    a0, c0 = sweep.fit(b, 0.013 * b * (1 + 0.01 * np.sin(b)))  # noise around a line through 0
    assert 0 <= a0 < 0.1 * 0.013 and math.isclose(c0, 0.013, rel_tol=0.02)


def test_batch_rows_find_where_overhead_drops_under_ten_percent() -> None:
    rows = {r["runner"]: r for r in sweep.batch_rows(sweep_frame(COSTS))}
    assert rows["cpp-torchscript"]["batch_under_10pct"] == 1024
    assert rows["python-eager"]["batch_under_10pct"] is None
    assert rows["cpp-raw"]["batch_under_10pct"] == 1
    assert math.isclose(rows["cpp-torchscript"]["overhead_share_b1"], 20 / 20.2, rel_tol=1e-6)
    assert rows["cpp-api"]["best_batch"] == 4096
    # the floor is cpp-raw's best per-sample cost: 0.01 µs
    assert math.isclose(rows["cpp-api"]["x_floor"], (10 / 4096 + 0.01) / 0.01, rel_tol=1e-9)


def test_language_goal_within_three_times_the_floor() -> None:
    langs = {r["language"]: r for r in sweep.language_rows(sweep.batch_rows(sweep_frame(COSTS)))}
    assert langs["C++"]["runner"] == "cpp-api" and langs["C++"]["within_goal"]  # the floor itself is no candidate
    assert not langs["Python"]["within_goal"]  # 100/4096 + 0.05 µs = 7.4x the floor
    (verdict,) = [v for v in judge(sweep_frame(COSTS), "batch-sweep") if "Batching" in v["claim"]]
    assert verdict["verdict"] == "does not hold" and "Python" in verdict["why"]
    fast = dict(COSTS, **{"python-eager": ("Python", 100.0, 0.005)})  # 100/4096 + 0.005 = 0.029: 2.9x
    (verdict,) = [v for v in judge(sweep_frame(fast), "batch-sweep") if "Batching" in v["claim"]]
    assert verdict["verdict"] == "holds"


def test_no_floor_no_batching_goal() -> None:
    """A sweep without cpp-raw (the thread sweep) has no floor to judge the goal against: no goal row, no table."""
    no_floor = {k: v for k, v in COSTS.items() if k != "cpp-raw"}
    rows = sweep.batch_rows(sweep_frame(no_floor))
    assert rows and all(math.isnan(r["x_floor"]) for r in rows)
    assert sweep.language_rows(rows) == [] and sweep.language_table(rows) == ""
    (verdict,) = [v for v in judge(sweep_frame(no_floor), "batch-sweep") if "Batching" in v["claim"]]
    assert verdict["verdict"] == "not testable here" and "cpp-raw" in verdict["ours"]


def test_tables_and_plot(tmp_path: Path) -> None:
    df = sweep_frame(COSTS)
    rows = sweep.batch_rows(df)
    table = sweep.batch_table(rows)
    assert "b=4096" in table and "never" in table and "1024" in table
    assert "within 3× of the floor" in sweep.language_table(rows)
    sweep.plot_batches(df, tmp_path / "batch.png")
    assert (tmp_path / "batch.png").stat().st_size > 10_000


@pytest.mark.parametrize(("t2_factor", "expected"), [(0.6, "does not hold"), (1.0, "holds"), (1.3, "holds")])
def test_threads_verdict_for_tiny_calls(t2_factor: float, expected: str) -> None:
    rows, medians = [], {}
    for family, base in (("cpp-api", 10.0), ("python-eager", 100.0)):
        for th, f in ((1, 1.0), (2, t2_factor)):
            name = f"{family}-b1-t{th}"
            rows.append({"runner": name, "family": family, "language": "C++", "status": "ok", "batch": 1,
                         "threads": th, "median_us": base * f, "per_sample_us": base * f})
            medians[name] = [base * f * (1 + 0.01 * k) for k in range(3)]
    df = pd.DataFrame(rows)
    th = sweep.thread_rows(df, medians)
    assert {r["runner"] for r in th} == {"cpp-api-b1", "python-eager-b1"}
    assert math.isclose(th[0]["one"].median / th[0]["more"].median, 1 / t2_factor)
    (verdict,) = judge(df, "threads", medians)
    assert verdict["verdict"] == expected
    assert "speed-up" in sweep.thread_table(th)


@pytest.mark.parametrize(("c_columns", "expected"), [(0.002, "holds"), (0.01, "does not hold")])
def test_columns_layout_against_its_row_major_twin(c_columns: float, expected: str) -> None:
    costs = dict(COSTS, **{"cpp-api-columns": ("C++", 10.0, c_columns)})
    df = sweep_frame(costs)
    medians = {r: [t * (1 + 0.01 * k) for k in range(3)] for r, t in zip(df["runner"], df["median_us"], strict=True)}
    (row,) = sweep.layout_rows(df, medians)
    assert (row["runner"], row["batch"]) == ("cpp-api", 4096)
    assert math.isclose(row["rows"].median / row["columns"].median, (10 + 0.01 * 4096) / (10 + c_columns * 4096))
    (verdict,) = [v for v in judge(df, "batch-sweep", medians) if "columns" in v["claim"]]
    assert verdict["verdict"] == expected and "cpp-api b=4096" in verdict["ours"]
    assert not sweep.layout_rows(sweep_frame(COSTS), {})  # no twin, no row
