"""The load run (harness/load.py, harness/load_stats.py): the [load] table's checks, the peak-rate search, the
validity rule, and one tiny run end to end on a Python row (every phase, every output checked, the report).

Durations are a fraction of a second: the tests check what was measured and how it is told, never how fast.
"""

from __future__ import annotations

import json
import math
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import load, load_stats
from harness.errors import UserError
from harness.paths import BUILD_DIR, ROOT
from harness.pipeline import run_suite
from harness.suite import LoadSpec
from harness.suite_file import parse_suite
from tests.conftest import TINY

INVOKE = [str(ROOT / ".venv" / "bin" / "invoke")]


def _tiny(**table: Any) -> dict[str, Any]:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"].update(calls=500, warmup_calls=20, repeats=1, programs=False)
    data["runners"] = [{"id": "python-torchscript"}, {"id": "python-eager"}]
    data["load"] = table
    return data


@pytest.mark.parametrize(("table", "field"), [
    ({"callers": [0]}, "load.callers[0]"),
    ({"bound_ms": 0}, "load.bound_ms"),
    ({"duration_s": "long"}, "load.duration_s"),
    ({"rate": 5}, "load"),
    ({"runners": ["cpp-api"]}, "load.runners[0]"),
])
def test_a_bad_load_value_is_refused_naming_its_field(table: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError) as e:
        parse_suite(_tiny(**table), "bad.toml")
    message = str(e.value)
    assert message.startswith(f"bad.toml: {field}: ") and "\n" not in message, message


def test_the_table_becomes_the_spec_and_callers_default_to_the_cores() -> None:
    suite = parse_suite(_tiny(callers=[1, 3], bound_ms=2.5, runners=["python-eager"]), "t.toml")
    assert suite.load == LoadSpec(callers=(1, 3), bound_ms=2.5, runners=("python-eager",))
    assert load.callers_of(suite.load) == (1, 3)
    assert load.callers_of(LoadSpec()) == tuple(range(1, load.cores() + 1))
    assert parse_suite(_tiny(), "t.toml").load == LoadSpec()


def test_the_command_line_values_are_checked_like_the_table() -> None:
    suite = parse_suite(_tiny(), "t.toml")
    made = load.for_load(suite, None, None, rows="python-eager", callers="1,2", duration_s=3.0, bound_ms=None)
    assert made.load.callers == (1, 2) and made.load.duration_s == 3.0 and made.load.runners == ("python-eager",)
    assert made.run.calls == load.SELECT_CALLS and not made.run.programs and not made.run.decomposition
    for kwargs, needle in [({"callers": "1,two"}, "--callers 1,two: not a comma-separated list"),
                           ({"callers": "0"}, "callers[0]: 0 is less than the minimum of 1"),
                           ({"rows": "cpp-api"}, "--rows cpp-api: not a row of suite"),
                           ({"duration_s": 0.0001}, "duration_s: 0.0001 is less than the minimum")]:
        with pytest.raises(UserError, match=None) as e:
            load.for_load(suite, None, None, **kwargs)
        assert needle in str(e.value), str(e.value)


def test_the_rows_are_each_languages_fastest_verified_then_the_listed_ones() -> None:
    df = pd.DataFrame([{"runner": r, "runner_id": r, "language": lang, "median_us": us, "status": "ok",
                        "outputs_ok": ok, "batch": 1, "method": "m", "median_ci_low_us": us, "median_ci_high_us": us}
                       for r, lang, us, ok in [("cpp-raw", "C++", 0.01, True), ("cpp-aoti", "C++", 1.0, True),
                                               ("cpp-api", "C++", 0.5, False), ("python-eager", "Python", 9.0, True),
                                               ("python-torchscript", "Python", 8.0, True)]])
    assert load.chosen(df, LoadSpec()) == ["python-torchscript", "cpp-aoti"]  # cpp-api's outputs did not match
    assert load.chosen(df, LoadSpec(runners=("python-eager", "cpp-aoti"))) == ["python-torchscript", "cpp-aoti",
                                                                              "python-eager"]


def _fake(capacity: float, bound_us: float = 1000.0) -> tuple[list[tuple[float, float]], Any]:
    """A server whose p99 grows without bound as the rate nears capacity (an M/M/1 queue's shape)."""
    tried: list[tuple[float, float]] = []

    def try_rate(rate: float, seconds: float) -> dict[str, Any]:
        tried.append((rate, seconds))
        util = rate / capacity
        p99 = math.inf if util >= 1 else 4.6 / (capacity * (1 - util)) * 1e6
        return {"ok": True, "rate": rate, "p99_us": p99, "p50_us": p99 / 6, "calls_per_s": min(rate, capacity),
                "issued": int(rate * seconds), "unissued": 0, "elapsed_s": seconds}

    return tried, try_rate


def test_the_search_finds_the_highest_passing_rate_then_holds_it_for_the_full_duration() -> None:
    spec = LoadSpec(search_steps=8, search_s=0.5, duration_s=10.0, bound_ms=1.0, min_queries=1000)
    tried, try_rate = _fake(capacity=100_000)
    out = load.search(try_rate, 100_000, spec)
    # p99 = 1 ms at util 1 - 4.6/(1e5 * 1e-3) = 0.954: the peak found is just under it, within the search's step
    assert 0.90 * 95_400 <= out["peak_per_s"] <= 95_400
    assert [s for _, s in tried[:-1]] == [0.5] * 8 and tried[-1] == (out["peak_per_s"], 10.0)
    assert out["validity"] == "VALID" and out["final"]["passes"] and out["reason"] == ""
    assert all(t["passes"] == (t["p99_us"] <= 1000) for t in out["tries"])


def test_a_rate_that_never_passes_and_a_short_final_run_are_invalid_with_the_reason() -> None:
    _, never = _fake(capacity=100)  # p99 ≥ 46 ms at any rate: the 1 ms bound cannot be met
    out = load.search(never, 100, LoadSpec(search_steps=3))
    assert out["peak_per_s"] is None and out["validity"] == "INVALID" and "no rate tried passes" in out["reason"]
    _, ok = _fake(capacity=100_000)
    few = load.search(ok, 100_000, LoadSpec(search_steps=3, duration_s=0.001 * 5, min_queries=10**7))
    assert few["validity"] == "INVALID" and "too few queries" in few["reason"]


def _stalls_at_full_duration(above: float) -> tuple[list[tuple[float, float]], Any]:
    """A server that passes every short try, and the full duration only at rates up to `above`."""
    tried: list[tuple[float, float]] = []

    def try_rate(rate: float, seconds: float) -> dict[str, Any]:
        tried.append((rate, seconds))
        p99 = 500.0 if seconds < 10 or rate <= above else 5000.0
        return {"ok": True, "rate": rate, "p99_us": p99, "p50_us": 50.0, "calls_per_s": rate,
                "issued": int(rate * seconds), "unissued": 0, "elapsed_s": seconds}

    return tried, try_rate


def test_a_peak_that_fails_its_full_duration_run_twice_is_invalid() -> None:
    tried, try_rate = _stalls_at_full_duration(above=0.0)
    out = load.search(try_rate, 10_000, LoadSpec(search_steps=2))
    peak = 8_500.0  # 5,000 passes, then half-way to 1.2 × 10,000; the full duration fails there and a step below
    assert tried == [(5_000.0, 2.0), (peak, 2.0), (peak, 10.0), (peak * load.STEP_DOWN, 10.0)]
    assert out["failed_final"]["rate"] == peak and not out["final"]["passes"]
    assert out["validity"] == "INVALID" and "over the bound at the full duration" in out["reason"]


def test_a_peak_that_fails_its_full_duration_run_once_is_the_step_below() -> None:
    tried, try_rate = _stalls_at_full_duration(above=7_000.0)
    out = load.search(try_rate, 10_000, LoadSpec(search_steps=2))
    assert tried[-2:] == [(8_500.0, 10.0), (8_500.0 * load.STEP_DOWN, 10.0)]
    assert out["validity"] == "VALID" and out["peak_per_s"] == 8_500.0 * load.STEP_DOWN and out["final"]["passes"]
    assert "8,500/s went over the bound" in out["reason"]


@pytest.fixture(scope="module")
def load_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = {"callers": [1, 2], "closed_s": 0.2, "search_s": 0.2, "search_steps": 1, "duration_s": 0.3,
             "min_queries": 10, "offline_batches": [1, 4]}
    return run_suite(parse_suite(_tiny(**table), "load.toml"), tmp_path_factory.mktemp("load"), BUILD_DIR,
                     quiet=True)


def _fastest_python(run_dir: Path) -> str:
    """The run's own fastest verified Python row: eager and TorchScript are close on the tiny model, so either."""
    names = load.chosen(pd.read_csv(run_dir / "results.csv"), LoadSpec())
    assert len(names) == 1 and names[0] in ("python-torchscript", "python-eager"), names
    return names[0]


def test_a_load_run_measures_every_phase_and_checks_every_output(load_run: Path) -> None:
    record = json.loads((load_run / "load.json").read_text())
    assert record["complete"] and record["cores"] >= 1
    row = _fastest_python(load_run)
    assert [p["row"] for p in record["paths"]] == [row]
    for p in record["paths"]:
        assert [m["callers"] for m in p["threads"]] == [1, 2] and [m["callers"] for m in p["processes"]] == [1, 2]
        for m in [*p["threads"], *p["processes"]]:
            assert m["ok"], m
            assert m["checked"] == m["issued"] > 0 and m["calls_per_s"] > 0 and m["p99_us"] >= m["p50_us"] > 0
        s = p["server"]
        assert len(s["tries"]) == 1 and all(t["ok"] and t["issued"] > 0 for t in s["tries"])
        assert s["validity"] in ("VALID", "INVALID") and (s["peak_per_s"] is None) is ("final" not in s)
        if s["peak_per_s"] is None:
            assert "scheduler" not in p
        else:  # the same arrivals with the no-op stand-in: its own counts and checks, at the peak's rate
            noop = p["scheduler"]
            assert noop["ok"] and noop["rate"] == s["peak_per_s"] and noop["checked"] == noop["issued"] > 0
            job = json.loads((load_run / "load" / row / "scheduler" / "job.json").read_text())
            assert job["load"]["noop"] is True and job["load"]["rate"] == s["peak_per_s"]
        # offline: batch 1 is the row itself, from the run's own results; batch 4 in its own sub-run, verified there
        o = p["offline"]
        assert [b["batch"] for b in o["batches"]] == [1, 4] and all(b["ok"] for b in o["batches"]), o
        assert [(b["row"], b["own"]) for b in o["batches"]] == [(row, True), (f"{row}-b4", False)]
        assert o["best_samples_per_s"] == max(b["samples_per_s"] for b in o["batches"])
        sub = pd.read_csv(load_run / "load" / "offline" / "results.csv").set_index("runner")
        main = pd.read_csv(load_run / "results.csv").set_index("runner")
        assert list(sub.index) == [f"{row}-b4"]  # batch 1 is not run twice
        for b in o["batches"]:
            found = main if b["own"] else sub
            assert found.loc[b["row"], "batch"] == b["batch"] and str(found.loc[b["row"], "outputs_ok"]) == "True"
            assert b["samples_per_s"] == pytest.approx(b["batch"] * 1e6 / found.loc[b["row"], "median_us"])
        # every measurement says its own wall time, and the path its whole
        assert all(m["wall_s"] > 0 for m in [*p["threads"], *s["tries"]]) and p["wall_s"] > 0
    assert record["offline"]["wall_s"] > 0
    # the two processes each wrote their own latencies, one per counted call
    two = load_run / "load" / row / "processes-2"
    for k in (0, 1):
        rec = json.loads((two / f"p{k}" / "result.json").read_text())["load"]
        assert np.fromfile(two / f"p{k}" / "latencies.bin", dtype="<i8").size == sum(rec["counts"])


def test_the_report_shows_the_peak_the_scaling_and_the_plot(load_run: Path) -> None:
    report = (load_run / "report.md").read_text()
    assert "## Many callers at once" in report and "### Peak rate at the bound" in report
    assert "### Scaling with callers" in report
    assert f"- **Python** ({_fastest_python(load_run)}): 2 threads: " in report
    record = load_stats.read(load_run)
    rows = load_stats.scaling(record["paths"][0], "threads")
    assert rows[0]["speedup"] == 1.0 and rows[1]["efficiency"] == pytest.approx(rows[1]["speedup"] / 2)
    assert ("![throughput against latency](load.png)" in report) is (load_run / "load.png").exists()
    assert "### Offline: samples per second with any batch" in report and "at batch " in report
    assert ("### The scheduler's own share" in report) is ("scheduler" in record["paths"][0])


def test_the_scheduler_share_is_the_no_op_latency_over_the_path_latency_at_the_peak() -> None:
    noop = {"ok": True, "rate": 5000.0, "p50_us": 0.5, "p99_us": 4.0}
    tries = [{"ok": True, "rate": 9000.0, "passes": False, "p50_us": 900.0, "p99_us": 5000.0},
             {"ok": True, "rate": 5000.0, "passes": True, "p50_us": 20.0, "p99_us": 100.0}]  # the peak's own try
    entry = {"scheduler": noop, "server": {"tries": tries, "final": {"ok": True, "p50_us": 1.0, "p99_us": 1.0}}}
    got = load_stats.scheduler(entry)
    assert got is not None and got["share_p50"] == pytest.approx(0.025) and got["share_p99"] == pytest.approx(0.04)
    assert got["within"] is False  # 2.5 % > the 2 % limit
    entry["scheduler"] = noop | {"p50_us": 0.2}
    assert load_stats.scheduler(entry)["within"] is True
    assert load_stats.scheduler({"server": {"final": None}}) is None
    no_try = load_stats.scheduler({"scheduler": noop, "server": {"final": {"ok": True, "p50_us": 5.0, "p99_us": 8.0}}})
    assert no_try is not None and no_try["share_p50"] == pytest.approx(0.1)  # no try at that rate: the final run
    broken = load_stats.scheduler({"scheduler": {"ok": False, "problem": "crashed"}, "server": entry["server"]})
    assert broken == {"ok": False, "problem": "crashed"}


def test_offline_rows_are_the_paths_at_each_batch_and_a_failed_batch_says_why() -> None:
    suite = parse_suite(_tiny(offline_batches=[1, 8]), "t.toml")
    sub = load.offline_suite(suite, ["python-eager"])
    assert sub is not None  # batch 1 is the row the run measured itself: only batch 8 runs again
    assert [(c.name, c.batch) for c in sub.runners] == [("python-eager-b8", 8)]
    assert sub.load is None and not sub.run.programs and sub.inputs.count >= 8 * (suite.run.calls // 8)
    assert load.offline_suite(parse_suite(_tiny(offline_batches=[1]), "t.toml"), ["python-eager"]) is None
    main = pd.DataFrame([{"runner": "python-eager", "status": "ok", "outputs_ok": True, "median_us": 10.0}])
    df = pd.DataFrame([{"runner": "python-eager-b8", "status": "CRASHED", "outputs_ok": False, "median_us": None,
                        "message": "signal 11"}])
    got = load.offline_of(df, suite, "python-eager", main, ["python-eager"])
    assert got["best_batch"] == 1 and got["best_samples_per_s"] == pytest.approx(100_000)
    assert got["batches"][0]["row"] == "python-eager" and got["batches"][0]["own"] is True
    assert got["batches"][1] == {"batch": 8, "row": "python-eager-b8", "ok": False, "own": False,
                                 "problem": "CRASHED: signal 11"}


def test_a_row_at_another_batch_or_thread_count_is_not_taken_for_the_offline_row() -> None:
    data = _tiny(offline_batches=[1, 8])
    data["runners"] = [{"id": "python-eager", "threads": 2}, {"id": "python-torchscript", "batch": 8}]
    suite = parse_suite(data, "t.toml")
    sub = load.offline_suite(suite, ["python-eager", "python-torchscript"])
    assert sub is not None and [(c.name, c.batch, c.threads) for c in sub.runners] == [
        ("python-eager-b8", 8, 2), ("python-torchscript-b1", 1, 1)]  # each row's own batch not run again


def test_the_percentiles_are_numpys_higher_with_unissued_queries_as_infinite() -> None:
    rng = np.random.default_rng(0)
    for n, unissued in [(0, 0), (0, 3), (1, 0), (2, 1), (1000, 0), (1001, 10), (999, 5000), (12345, 7)]:
        lat = rng.integers(1, 10**6, size=n).astype("<i8")
        full = np.concatenate([lat.astype(np.float64), np.full(unissued, np.inf)])
        want = [float(np.percentile(full, q, method="higher")) / 1000 if full.size else math.inf for q in (50, 99)]
        assert load.percentiles_us(lat, unissued, (50, 99)) == want, (n, unissued)


def test_the_phases_count_each_fresh_start_and_the_set_seconds() -> None:
    runs, fixed = load.phases(LoadSpec(callers=(1, 2), closed_s=2.0, search_s=2.0, search_steps=6, duration_s=10.0))
    assert runs == 3 + 6 + 2 and fixed == 3 * 2.0 + 7 * 2.0 + 10.0  # threads 1, 2, processes 2; 6 rates; final; no-op


def test_invoke_load_refuses_a_bad_value_in_one_line_before_any_run(tmp_path: Path) -> None:
    p = subprocess.run([*INVOKE, "load", "--callers", "0", "--results", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
    assert "callers[0]: 0 is less than the minimum of 1" in p.stderr
    assert not any(tmp_path.iterdir())
