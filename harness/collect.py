"""Turn a run folder's raw files into results.csv and summary.json: verify outputs, compute statistics.

Reads only what earlier stages wrote (suite.json, builds.json, raw/), so it can be rerun alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import stats, verify
from harness.files import write_atomic, write_json
from harness.runners import RUNNERS

CSV_COLUMNS = [
    "runner", "language", "method", "status", "grad_mode", "calls", "repeats", "repeats_ok", "block",
    "median_us", "mean_us", "min_us", "p90_us", "p99_us", "p999_us", "max_us", "std_us", "iqr_us", "mad_us",
    "spikes", "cv_repeat_medians", "ratio_to_python_eager", "seed_ratio_to_python", "ratio_to_cpp_raw",
    "load_ms", "first_call_us", "timer_overhead_ns", "threads", "interop_threads", "peak_rss_mb",
    "outputs_ok", "max_abs_err", "libtorch_version", "runtime", "message",
]


def _runner_row(run_dir: Path, rid: str, build: dict[str, Any], suite: dict[str, Any],
                reference: np.ndarray) -> dict[str, Any]:
    reg = RUNNERS.get(rid)
    choice = next(c for c in suite["runners"] if c["id"] == rid)
    row: dict[str, Any] = {
        "runner": rid,
        "language": reg.language if reg else "?",
        "method": reg.method if reg else "?",
        "grad_mode": choice["grad_mode"],
        "calls": suite["run"]["calls"],
        "repeats": suite["run"]["repeats"],
        "block": choice["block"],
        "repeats_ok": 0,
    }
    if build["status"] != "ok":
        row.update(status=build["status"].upper(), message=build["reason"], outputs_ok=False)
        return row
    samples, results, checks, problems, rss = [], [], [], [], []
    for rep_dir in sorted((run_dir / "raw" / rid).glob("*"), key=lambda p: int(p.name)):
        outcome_path = rep_dir / "outcome.json"
        if not outcome_path.exists():
            problems.append(f"repeat {rep_dir.name}: interrupted")
            continue
        outcome = json.loads(outcome_path.read_text())
        if outcome.get("peak_rss_mb") is not None:
            rss.append(outcome["peak_rss_mb"])
        if outcome["status"] != "ok":
            problems.append(f"repeat {rep_dir.name}: {outcome['status'].upper()}: {outcome['message']}")
            row.setdefault("_worst", outcome["status"].upper())
            continue
        result = json.loads((rep_dir / "result.json").read_text())
        check = verify.check_outputs(rep_dir / "outputs.bin", reference)
        checks.append(check)
        if not check.ok:
            problems.append(f"repeat {rep_dir.name}: outputs wrong: {check.message}")
        results.append(result)
        samples.append(stats.per_call_ns(rep_dir / "timings.bin", result["block"]))
    worst = row.pop("_worst", None)
    row["repeats_ok"] = len(results)
    row["outputs_ok"] = bool(checks) and all(c.ok for c in checks)
    row["max_abs_err"] = max((c.max_abs_err for c in checks), default=float("nan"))
    row["peak_rss_mb"] = max(rss, default=float("nan"))
    if results:
        row.update(stats.summarize(samples))
        row["load_ms"] = float(np.median([r["load_ns"] for r in results])) / 1e6
        row["first_call_us"] = float(np.median([r["first_call_ns"] for r in results])) / 1e3
        row["timer_overhead_ns"] = float(np.median([r["timer_overhead_ns"] for r in results]))
        first = results[0]
        row.update(threads=first["threads"], interop_threads=first["interop_threads"],
                   libtorch_version=first.get("libtorch_version"), runtime=first.get("runtime"))
        row["grad_mode"] = first["grad_mode"]
    if not row["outputs_ok"] and checks:
        row["status"] = "FAILED"
    elif worst or len(results) < suite["run"]["repeats"]:
        row["status"] = worst or "INCOMPLETE"
    else:
        row["status"] = "ok"
    row["message"] = "; ".join(problems)
    return row


def collect(run_dir: Path) -> pd.DataFrame:
    """Verify and summarise every runner of a run folder; write results.csv and summary.json."""
    suite = json.loads((run_dir / "suite.json").read_text())
    builds = json.loads((run_dir / "builds.json").read_text())
    reference = np.fromfile(run_dir / "raw" / "reference.bin", dtype="<f4").reshape(
        suite["run"]["calls"], suite["model"]["layers"][-1]
    )
    rows = [_runner_row(run_dir, c["id"], builds[c["id"]], suite, reference) for c in suite["runners"]]
    df = pd.DataFrame(rows).reindex(columns=CSV_COLUMNS)
    ok = df["status"].eq("ok")
    for base, col in (("python-eager", "ratio_to_python_eager"), ("cpp-raw", "ratio_to_cpp_raw")):
        ref = df.loc[ok & df["runner"].eq(base), "median_us"]
        df[col] = df["median_us"] / ref.iloc[0] if len(ref) else np.nan
    seed = {rid: r.seed_seconds for rid, r in RUNNERS.items() if r.seed_seconds}
    df["seed_ratio_to_python"] = df["runner"].map(lambda r: seed[r] / seed["python-eager"] if r in seed else np.nan)
    write_atomic(run_dir / "results.csv", df.to_csv(index=False, float_format="%.6g"))
    write_json(run_dir / "summary.json", {
        "suite": suite["name"],
        "runners": json.loads(df.to_json(orient="records")),
        "tolerance": {"atol": verify.ATOL, "rtol": verify.RTOL},
    })
    return df
