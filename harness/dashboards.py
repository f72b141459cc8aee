"""A run's results in the JSON formats CI dashboards read: Google Benchmark, Bencher (BMF), github-action-benchmark.

Derived only from what `collect` wrote (results.csv as a DataFrame, summary.json, environment.json, suite.json),
so any run folder can be converted again. Only runners whose status is "ok" appear, each named
`<suite>/<runner>` so that runs of different suites never collide on one dashboard. JSON has no NaN: a figure
that is missing is left out, and every file is written with allow_nan=False so one never slips through.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.files import write_atomic
from harness.rule import number

GOOGLE_BENCHMARK = "google-benchmark.json"
BENCHER = "bencher.json"
ACTION_BENCHMARK = "github-action-benchmark.json"
FILES = (GOOGLE_BENCHMARK, BENCHER, ACTION_BENCHMARK)

_RUN_STAMP = re.compile(r"^(\d{8}-\d{6})")  # results/<UTC timestamp>-<host>, see pipeline.new_run_dir


def _number(x: Any) -> float | None:
    """A finite float, or None for NaN, infinity, None and anything that is not a number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _ok_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows a dashboard may show: status ok and a finite median (a failed or skipped runner has no figure)."""
    rows = df[df["status"].eq("ok")].to_dict(orient="records")
    return [r for r in rows if _number(r.get("median_us")) is not None]


def benchmark_name(suite: str, runner: str) -> str:
    """`<suite>/<runner>`: a runner's name alone would collide across suites on one dashboard."""
    return f"{suite}/{runner}"


def _run_date(run_dir: Path) -> str:
    """When the run started, ISO 8601 with offset: the folder's UTC stamp (a collection part's is its parent's)."""
    for name in (run_dir.name, run_dir.parent.name):
        m = _RUN_STAMP.match(name)
        if m:
            return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC).isoformat()
    # else suite.json's time (the first file a run writes), and now for a folder that is not on disk
    stamp = next((p for p in (run_dir / "suite.json", run_dir) if p.exists()), None)
    when = datetime.fromtimestamp(stamp.stat().st_mtime, UTC) if stamp else datetime.now(UTC)
    return when.replace(microsecond=0).isoformat()


def _scaling_enabled(governor: Any) -> bool:
    """Google Benchmark's rule: frequency scaling is on unless the governor is `performance`; unknown counts as off."""
    return isinstance(governor, str) and governor not in ("performance", "not exposed", "")


def _label(row: dict[str, Any]) -> str:
    parts = [str(row.get(k)) for k in ("language", "method") if isinstance(row.get(k), str) and row.get(k)]
    threads = _number(row.get("threads"))
    if threads is not None:
        parts.append(f"intra-op threads {int(threads)}")
    batch = _number(row.get("batch"))
    if batch is not None and batch != 1:
        parts.append(f"batch {int(batch)}")
    return "; ".join(parts)


def google_benchmark(df: pd.DataFrame, summary: dict[str, Any], env: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The run as Google Benchmark's `--benchmark_out_format=json` would write it, for tools that read that format.

    Each repeat (one fresh process) is a repetition whose time is that process's median per-call time, and
    `iterations` is its number of calls. The aggregates are Google Benchmark's own over the repetitions:
    mean, median, sample standard deviation and cv (stddev / mean, a fraction; `aggregate_unit` "percentage"
    tells readers to show it as a percentage), each with `iterations` = number of repetitions, and only when
    there are at least two, as Google Benchmark does.
    """
    suite = str(summary.get("suite") or "")
    medians_by_runner: dict[str, list[Any]] = summary.get("repeat_medians_us") or {}
    benchmarks: list[dict[str, Any]] = []
    families: dict[str, int] = {}
    instances: dict[str, int] = {}
    for row in _ok_rows(df):
        runner = str(row["runner"])
        medians = [v for v in (_number(x) for x in medians_by_runner.get(runner, [])) if v is not None]
        if not medians:
            continue
        family = row.get("family") if isinstance(row.get("family"), str) and row.get("family") else runner
        family_index = families.setdefault(family, len(families))
        instance = instances.get(family, 0)
        instances[family] = instance + 1
        name = benchmark_name(suite, runner)
        label = _label(row)
        calls = int(_number(row.get("calls")) or 0)
        common = {"family_index": family_index, "per_family_instance_index": instance, "run_name": name}
        for k, us in enumerate(medians):
            entry = {
                "name": name, **common, "run_type": "iteration", "repetitions": len(medians),
                # one thread calls the model; torch's intra-op thread count is in the label
                "repetition_index": k, "threads": 1, "iterations": calls,
                # CPU time is not measured per call (the runners read a wall clock only), so cpu_time = real_time
                "real_time": us, "cpu_time": us, "time_unit": "us",
            }
            benchmarks.append(entry | ({"label": label} if label else {}))
        if len(medians) < 2:
            continue
        a = np.asarray(medians)
        mean, std = float(a.mean()), float(a.std(ddof=1))
        stats = {"mean": mean, "median": float(np.median(a)), "stddev": std, "cv": std / mean if mean else 0.0}
        for agg, value in stats.items():
            entry = {
                "name": f"{name}_{agg}", **common, "run_type": "aggregate", "repetitions": len(medians),
                "threads": 1, "aggregate_name": agg, "aggregate_unit": "percentage" if agg == "cv" else "time",
                "iterations": len(medians), "real_time": value, "cpu_time": value, "time_unit": "us",
            }
            benchmarks.append(entry | ({"label": label} if label else {}))
    load = [v for v in (_number(x) for x in env.get("load_average") or []) if v is not None]
    context: dict[str, Any] = {
        "date": _run_date(run_dir),
        "host_name": str(env.get("host") or ""),
        "executable": f"invoke all --suite {suite}" if suite else "invoke all",
        "num_cpus": int(_number(env.get("cores_logical")) or 0),
        "mhz_per_cpu": 0,  # environment.json records no clock rate; Google Benchmark writes 0 when unknown too
        "cpu_scaling_enabled": _scaling_enabled(env.get("governor")),
        "caches": [],
        "load_avg": load,
        "library_build_type": "release",
        "json_schema_version": 1,
    }
    # Google Benchmark allows extra context (--benchmark_context / AddCustomContext): string key and value.
    extra = {"suite": suite, "cpu_model": env.get("cpu_model"), "torch": env.get("torch"),
             "os": env.get("os"), "git_commit": env.get("git_commit")}
    context |= {f"torch_call_cost.{k}": str(v) for k, v in extra.items() if v}
    return {"context": context, "benchmarks": benchmarks}


def bencher(df: pd.DataFrame, suite: str) -> dict[str, Any]:
    """Bencher Metric Format: the built-in `latency` measure (nanoseconds) per runner, median with its 95 % CI.

    For `bencher run --adapter json --file bencher.json`; the bounds are left out when the run had too few
    repeats for an interval.
    """
    out: dict[str, Any] = {}
    for row in _ok_rows(df):
        metric: dict[str, float] = {"value": float(row["median_us"]) * 1000.0}
        low, high = _number(row.get("median_ci_low_us")), _number(row.get("median_ci_high_us"))
        if low is not None and high is not None:
            metric |= {"lower_value": low * 1000.0, "upper_value": high * 1000.0}
        out[benchmark_name(suite, str(row["runner"]))] = {"latency": metric}
    return out


def action_benchmark(df: pd.DataFrame, suite: str) -> list[dict[str, Any]]:
    """github-action-benchmark's `customSmallerIsBetter` input: median µs per call, ± half the 95 % CI.

    `range` and `extra` are free text the action shows in its chart tooltip; the exact interval and the
    run's size go into `extra`.
    """
    out: list[dict[str, Any]] = []
    for row in _ok_rows(df):
        median = float(row["median_us"])
        entry: dict[str, Any] = {"name": benchmark_name(suite, str(row["runner"])), "unit": "us", "value": median}
        low, high = _number(row.get("median_ci_low_us")), _number(row.get("median_ci_high_us"))
        lines = []
        if low is not None and high is not None:
            entry["range"] = f"±{number((high - low) / 2)}"
            lines.append(f"95% CI {number(low)}–{number(high)} us")
        calls, repeats = _number(row.get("calls")), _number(row.get("repeats_ok"))
        if calls is not None and repeats is not None:
            lines.append(f"{int(calls):,} calls × {int(repeats)} processes")
        p99 = _number(row.get("p99_us"))
        if p99 is not None:
            lines.append(f"p99 {number(p99)} us")
        if isinstance(row.get("language"), str) and row.get("language"):
            lines.append(f"language {row['language']}")
        if lines:
            entry["extra"] = "\n".join(lines)
        out.append(entry)
    return out


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_all(run_dir: Path, df: pd.DataFrame) -> list[Path]:
    """Write the three dashboard files beside results.csv (atomically); returns their paths."""
    summary = json.loads((run_dir / "summary.json").read_text())
    env_path = run_dir / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    suite = str(summary.get("suite") or json.loads((run_dir / "suite.json").read_text())["name"])
    summary = summary | {"suite": suite}
    docs = {
        GOOGLE_BENCHMARK: google_benchmark(df, summary, env, run_dir),
        BENCHER: bencher(df, suite),
        ACTION_BENCHMARK: action_benchmark(df, suite),
    }
    paths = []
    for name, doc in docs.items():
        write_atomic(run_dir / name, _dump(doc))
        paths.append(run_dir / name)
    return paths
