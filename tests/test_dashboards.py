"""The dashboard files (Google Benchmark JSON, Bencher BMF, github-action-benchmark) against their documented shapes.

The schemas below are written from each format's documentation: Google Benchmark's JSON reporter and its
output tests (context keys; per-repetition entries with `repetition_index`; aggregates with `aggregate_name`
and `aggregate_unit`, without `repetition_index`), Bencher's BMF reference (benchmark → measure → value with
optional lower_value / upper_value) and github-action-benchmark's custom tools (a list of name, unit, value,
optional range and extra strings).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from harness import dashboards
from harness.collect import CSV_COLUMNS
from harness.paths import ROOT

COMMITTED = ROOT / "results" / "20261122-023957-vm"

_INT = {"type": "integer", "minimum": 0}
_COMMON = {
    "name": {"type": "string", "minLength": 1},
    "family_index": _INT,
    "per_family_instance_index": _INT,
    "run_name": {"type": "string", "minLength": 1},
    "repetitions": {"type": "integer", "minimum": 1},
    "threads": {"type": "integer", "minimum": 1},
    "iterations": _INT,
    "real_time": {"type": "number"},
    "cpu_time": {"type": "number"},
    "time_unit": {"enum": ["ns", "us", "ms", "s"]},
    "label": {"type": "string"},
}
_REQUIRED = ["name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions", "threads",
             "iterations", "real_time", "cpu_time", "time_unit"]
GOOGLE_BENCHMARK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["context", "benchmarks"],
    "properties": {
        "context": {
            "type": "object",
            "required": ["date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled",
                         "caches", "load_avg", "library_build_type"],
            "properties": {
                "date": {"type": "string"},
                "host_name": {"type": "string"},
                "executable": {"type": "string"},
                "num_cpus": _INT,
                "mhz_per_cpu": _INT,
                "cpu_scaling_enabled": {"type": "boolean"},
                "caches": {"type": "array", "items": {
                    "type": "object", "required": ["type", "level", "size", "num_sharing"],
                    "properties": {"type": {"type": "string"}, "level": _INT, "size": _INT, "num_sharing": _INT},
                }},
                "load_avg": {"type": "array", "items": {"type": "number"}},
                "library_build_type": {"enum": ["release", "debug"]},
                "json_schema_version": {"type": "integer"},
            },
            "additionalProperties": {"type": "string"},  # custom context (--benchmark_context) is key=value text
        },
        "benchmarks": {"type": "array", "items": {"oneOf": [
            {
                "type": "object",
                "required": [*_REQUIRED, "repetition_index"],
                "properties": _COMMON | {"run_type": {"const": "iteration"}, "repetition_index": _INT},
                "not": {"anyOf": [{"required": ["aggregate_name"]}, {"required": ["aggregate_unit"]}]},
            },
            {
                "type": "object",
                "required": [*_REQUIRED, "aggregate_name", "aggregate_unit"],
                "properties": _COMMON | {
                    "run_type": {"const": "aggregate"},
                    "aggregate_name": {"enum": ["mean", "median", "stddev", "cv"]},
                    "aggregate_unit": {"enum": ["time", "percentage"]},
                },
                "not": {"required": ["repetition_index"]},
            },
        ]}},
    },
}
BMF_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {".+": {
        "type": "object",
        "minProperties": 1,
        "patternProperties": {".+": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                           "upper_value": {"type": "number"}},
            "required": ["value"],
            "additionalProperties": False,
        }},
    }},
}
ACTION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "unit", "value"],
        "properties": {"name": {"type": "string", "minLength": 1}, "unit": {"type": "string"},
                       "value": {"type": "number"}, "range": {"type": "string"}, "extra": {"type": "string"}},
        "additionalProperties": False,
    },
}

EAGER = [112.0, 106.0, 100.0, 73.0, 94.0]
RAW = [0.0140, 0.0133]


def _no_nan(text: str) -> Any:
    """json.loads that fails on NaN / Infinity, which Python's json would otherwise accept."""
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in a dashboard file")
    return json.loads(text, parse_constant=refuse)


def _row(**values: Any) -> dict[str, Any]:
    return {c: values.get(c, np.nan) for c in CSV_COLUMNS}


def _tiny_run(root: Path, name: str = "20260101-120000-host") -> Path:
    """A run folder as collect leaves it: python-eager ok, cpp-raw ok without a CI, java-torchscript SKIPPED."""
    run = root / name
    run.mkdir(parents=True)
    rows = [
        _row(runner="python-eager", runner_id="python-eager", family="python-eager", language="Python",
             method="eager", status="ok", batch=1, calls=1000, repeats=5, repeats_ok=5, median_us=101.5,
             median_ci_low_us=73.0, median_ci_high_us=112.0, p99_us=240.0, threads=1, message=""),
        _row(runner="cpp-raw", runner_id="cpp-raw", family="cpp-raw", language="C++", method="loops", status="ok",
             batch=1, calls=2000, repeats=2, repeats_ok=2, median_us=0.0137, threads=1, message=""),
        _row(runner="java-torchscript", runner_id="java-torchscript", family="java-torchscript", language="Java",
             status="SKIPPED", calls=1000, repeats=5, repeats_ok=0, message="no java"),
    ]
    pd.DataFrame(rows).to_csv(run / "results.csv", index=False, float_format="%.6g")
    (run / "summary.json").write_text(json.dumps({
        "suite": "tiny", "repeat_medians_us": {"python-eager": EAGER, "cpp-raw": RAW}, "runners": [],
    }))
    (run / "environment.json").write_text(json.dumps({
        "host": "host", "cpu_model": "Test CPU", "cores_logical": 2, "governor": "schedutil",
        "load_average": [0.5, 0.25, 0.125], "torch": "2.13.0+cpu", "git_commit": "abc",
    }))
    (run / "suite.json").write_text(json.dumps({"name": "tiny"}))
    (run / "status.json").write_text(json.dumps({"status": "running"}))
    return run


def _written(run: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    df = pd.read_csv(run / "results.csv")
    paths = dashboards.write_all(run, df)
    assert [p.name for p in paths] == list(dashboards.FILES)
    gb, bmf, action = (_no_nan((run / f).read_text()) for f in dashboards.FILES)
    jsonschema.Draft202012Validator(GOOGLE_BENCHMARK_SCHEMA).validate(gb)
    jsonschema.Draft7Validator(BMF_SCHEMA).validate(bmf)
    jsonschema.Draft202012Validator(ACTION_SCHEMA).validate(action)
    return gb, bmf, action


@pytest.mark.parametrize("schema", [GOOGLE_BENCHMARK_SCHEMA, BMF_SCHEMA, ACTION_SCHEMA])
def test_schemas_are_valid(schema: dict[str, Any]) -> None:
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_write_all_writes_three_valid_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    run = _tiny_run(tmp_path)
    _written(run)
    _written(run)  # rewriting replaces the files
    assert not list(run.glob(".*.tmp"))
    assert {p.name for p in run.iterdir()} >= set(dashboards.FILES)


def test_skipped_runner_is_left_out_everywhere(tmp_path: Path) -> None:
    gb, bmf, action = _written(_tiny_run(tmp_path))
    names = {"tiny/python-eager", "tiny/cpp-raw"}
    assert {b["run_name"] for b in gb["benchmarks"]} == names
    assert set(bmf) == names
    assert {e["name"] for e in action} == names


def test_google_benchmark_repetitions_and_aggregates(tmp_path: Path) -> None:
    gb, _, _ = _written(_tiny_run(tmp_path))
    eager = [b for b in gb["benchmarks"] if b["run_name"] == "tiny/python-eager"]
    reps = [b for b in eager if b["run_type"] == "iteration"]
    aggs = {b["aggregate_name"]: b for b in eager if b["run_type"] == "aggregate"}
    assert eager[:5] == reps, "Google Benchmark writes a benchmark's repetitions before its aggregates"
    assert [b["real_time"] for b in reps] == EAGER
    assert [b["repetition_index"] for b in reps] == list(range(5))
    assert all(b["repetitions"] == 5 and b["time_unit"] == "us" for b in eager)
    assert all(b["iterations"] == 1000 for b in reps), "a repetition's iterations are its calls"
    assert all(b["cpu_time"] == b["real_time"] for b in eager)
    assert all(b["name"] == "tiny/python-eager" for b in reps)
    assert list(aggs) == ["mean", "median", "stddev", "cv"]
    assert all(b["name"] == f"tiny/python-eager_{k}" and b["iterations"] == 5 for k, b in aggs.items())
    assert aggs["median"]["real_time"] == pytest.approx(float(np.median(EAGER)))
    assert aggs["mean"]["real_time"] == pytest.approx(float(np.mean(EAGER)))
    assert aggs["stddev"]["real_time"] == pytest.approx(float(np.std(EAGER, ddof=1)))
    assert aggs["cv"]["real_time"] == pytest.approx(float(np.std(EAGER, ddof=1) / np.mean(EAGER)))
    assert aggs["cv"]["aggregate_unit"] == "percentage"
    assert {aggs[k]["aggregate_unit"] for k in ("mean", "median", "stddev")} == {"time"}
    assert len({(b["family_index"], b["per_family_instance_index"]) for b in eager}) == 1


def test_google_benchmark_context(tmp_path: Path) -> None:
    gb, _, _ = _written(_tiny_run(tmp_path))
    ctx = gb["context"]
    assert datetime.fromisoformat(ctx["date"]) == datetime.fromisoformat("2026-01-01T12:00:00+00:00")
    assert (ctx["host_name"], ctx["num_cpus"], ctx["mhz_per_cpu"]) == ("host", 2, 0)
    assert ctx["cpu_scaling_enabled"] is True  # schedutil scales; only "performance" (or unknown) does not
    assert ctx["load_avg"] == [0.5, 0.25, 0.125]
    assert ctx["library_build_type"] == "release"
    assert ctx["torch_call_cost.suite"] == "tiny"


def test_collection_part_takes_its_date_from_the_collection_folder(tmp_path: Path) -> None:
    part = _tiny_run(tmp_path / "20260102-030405-host", "tiny")
    gb, _, _ = _written(part)
    assert gb["context"]["date"] == "2026-01-02T03:04:05+00:00"


def test_date_without_a_stamped_folder_is_still_iso_8601(tmp_path: Path) -> None:
    gb, _, _ = _written(_tiny_run(tmp_path, "elsewhere"))
    assert datetime.fromisoformat(gb["context"]["date"]).tzinfo is not None


def test_single_repeat_gets_no_aggregates_as_in_google_benchmark() -> None:
    df = pd.DataFrame([_row(runner="a", status="ok", calls=10, median_us=1.0)])
    gb = dashboards.google_benchmark(df, {"suite": "s", "repeat_medians_us": {"a": [1.0]}}, {}, Path("x"))
    assert [b["run_type"] for b in gb["benchmarks"]] == ["iteration"]


def test_sweep_rows_are_instances_of_one_family() -> None:
    df = pd.DataFrame([
        _row(runner="cpp-api-b1", family="cpp-api", status="ok", calls=10, median_us=2.0),
        _row(runner="cpp-api-b64", family="cpp-api", status="ok", calls=10, median_us=9.0, batch=64),
        _row(runner="cpp-raw", family="cpp-raw", status="ok", calls=10, median_us=0.1),
    ])
    medians = {"cpp-api-b1": [2.0, 2.1], "cpp-api-b64": [9.0, 9.2], "cpp-raw": [0.1, 0.1]}
    gb = dashboards.google_benchmark(df, {"suite": "s", "repeat_medians_us": medians}, {}, Path("x"))
    index = {b["run_name"]: (b["family_index"], b["per_family_instance_index"]) for b in gb["benchmarks"]}
    assert index == {"s/cpp-api-b1": (0, 0), "s/cpp-api-b64": (0, 1), "s/cpp-raw": (1, 0)}
    assert "batch 64" in next(b["label"] for b in gb["benchmarks"] if b["run_name"] == "s/cpp-api-b64")


def test_bencher_latency_in_nanoseconds_with_bounds_only_when_known(tmp_path: Path) -> None:
    _, bmf, _ = _written(_tiny_run(tmp_path))
    eager = bmf["tiny/python-eager"]["latency"]
    assert eager["value"] == pytest.approx(101.5 * 1000)
    assert (eager["lower_value"], eager["upper_value"]) == (pytest.approx(73_000), pytest.approx(112_000))
    assert bmf["tiny/cpp-raw"] == {"latency": {"value": pytest.approx(13.7)}}


def test_action_benchmark_values_range_and_extra(tmp_path: Path) -> None:
    _, _, action = _written(_tiny_run(tmp_path))
    eager, raw = action
    assert (eager["name"], eager["unit"], eager["value"]) == ("tiny/python-eager", "us", 101.5)
    assert eager["range"] == "±19.5"
    assert "95% CI 73.0–112 us" in eager["extra"] and "1,000 calls × 5 processes" in eager["extra"]
    assert raw["value"] == pytest.approx(0.0137)
    assert "range" not in raw


def test_nan_is_never_written(tmp_path: Path) -> None:
    """A NaN in any column (or in summary.json) must not reach the files: JSON has no NaN."""
    run = _tiny_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["repeat_medians_us"]["cpp-raw"] = [0.0140, float("nan")]
    (run / "summary.json").write_text(json.dumps(summary))
    gb, _, _ = _written(run)  # _written parses with NaN refused
    raw = [b for b in gb["benchmarks"] if b["run_name"] == "tiny/cpp-raw"]
    assert [b["real_time"] for b in raw] == [0.0140]


def test_ok_row_without_a_median_is_left_out(tmp_path: Path) -> None:
    df = pd.DataFrame([_row(runner="a", status="ok", calls=10), _row(runner="b", status="ok", median_us=2.0)])
    assert dashboards.bencher(df, "s") == {"s/b": {"latency": {"value": 2000.0}}}
    assert [e["name"] for e in dashboards.action_benchmark(df, "s")] == ["s/b"]


def test_json_dump_refuses_nan() -> None:
    with pytest.raises(ValueError):
        dashboards._dump({"x": float("nan")})


@pytest.mark.skipif(not (COMMITTED / "results.csv").exists(), reason="committed run not present")
def test_committed_run(tmp_path: Path) -> None:
    run = tmp_path / COMMITTED.name
    run.mkdir()
    for f in ("results.csv", "summary.json", "environment.json", "suite.json", "status.json"):
        shutil.copy(COMMITTED / f, run / f)
    gb, bmf, action = _written(run)
    df = pd.read_csv(run / "results.csv")
    medians = json.loads((run / "summary.json").read_text())["repeat_medians_us"]
    ok = df[df["status"].eq("ok")]
    assert set(bmf) == {f"default/{r}" for r in ok["runner"]}
    assert len(gb["benchmarks"]) == sum(len(medians[r]) + 4 for r in ok["runner"])
    for _, r in ok.iterrows():
        name = f"default/{r['runner']}"
        assert bmf[name]["latency"]["value"] == pytest.approx(r["median_us"] * 1000)
        assert bmf[name]["latency"]["lower_value"] == pytest.approx(r["median_ci_low_us"] * 1000)
        median = next(b for b in gb["benchmarks"] if b["name"] == f"{name}_median")
        assert median["real_time"] == pytest.approx(float(np.median(medians[r["runner"]])))
        cv = next(b for b in gb["benchmarks"] if b["name"] == f"{name}_cv")
        assert cv["real_time"] == pytest.approx(r["cv_repeat_medians"], rel=1e-5)
    assert [e["value"] for e in action] == pytest.approx(ok["median_us"].tolist())
    assert gb["context"]["date"] == "2026-11-22T02:39:57+00:00"
