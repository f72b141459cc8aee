"""Turn a run folder's raw files into results.csv and summary.json: verify outputs, compute statistics.

Reads only what earlier stages wrote (suite.json, builds.json, raw/), so it can be rerun alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import dashboards, judged_with, stats, verify
from harness.files import write_atomic, write_json

FUSION_NODES = ("prim::TensorExprGroup", "prim::FusionGroup", "prim::CudaFusionGroup", "prim::oneDNNFusionGroup")

CSV_COLUMNS = [
    "runner", "runner_id", "family", "language", "method", "status", "grad_mode", "batch", "calls", "repeats",
    "repeats_ok", "block", "per_sample_us", "median_us", "median_ci_low_us", "median_ci_high_us", "mean_us",
    "min_us", "p90_us", "p99_us", "p999_us",
    "max_us", "std_us", "iqr_us", "mad_us", "spikes", "cv_repeat_medians", "speed_modes", "noisy",
    "ratio_to_python_eager", "ratio_to_python_eager_ci_low", "ratio_to_python_eager_ci_high",
    "seed_ratio_to_python", "ratio_to_cpp_raw", "ratio_to_cpp_raw_ci_low", "ratio_to_cpp_raw_ci_high",
    "load_ms", "first_call_us", "calls_to_steady", "timer_overhead_ns", "timer_overhead_pct",
    "threads", "interop_threads", "threads_ok", "libtorch_version", "libtorch_path", "libtorch_same",
    "bare_mean_us", "harness_overhead_pct", "peak_rss_mb", "peak_rss_source",
    "outputs_ok", "max_abs_err", "fusion_groups", "graph_nodes", "runtime", "jdk",
    "instructions_per_call", "instructions_spread", "instructions_note", "message",
]


def _runner_row(run_dir: Path, choice: dict[str, Any], build: dict[str, Any], suite: dict[str, Any],
                reference: np.ndarray, record: dict[str, Any], torch_lib: Path | None) -> dict[str, Any]:
    reg = record["runners"].get(choice["id"])
    rid = choice["name"]
    row: dict[str, Any] = {
        "runner": rid,
        "runner_id": choice["id"],
        "language": reg["language"] if reg else "?",
        "method": reg["method"] if reg else "?",
        "family": choice.get("family") or rid,
        "grad_mode": choice["grad_mode"],
        "batch": choice.get("batch", 1),
        "calls": choice.get("calls", suite["run"]["calls"]),
        "repeats": suite["run"]["repeats"],
        "block": choice["block"],
        "repeats_ok": 0,
    }
    if build["status"] != "ok":
        row.update(status=build["status"].upper(), message=build["reason"], outputs_ok=False)
        return row
    samples, warmups, results, checks, problems = [], [], [], [], []
    rss: list[tuple[float, str]] = []  # (MB, where the figure came from), per repeat
    atol, rtol = tolerance_of(choice["id"], record)
    compared = choice.get("slots", suite["run"]["calls"]) * choice.get("batch", 1)
    reference = reference[:compared]
    repeat_dirs = [p for p in (run_dir / "raw" / rid).glob("*") if p.is_dir() and p.name.isdigit()]
    for rep_dir in sorted(repeat_dirs, key=lambda p: int(p.name)):
        outcome_path = rep_dir / "outcome.json"
        if not outcome_path.exists():
            problems.append(f"repeat {rep_dir.name}: interrupted")
            continue
        outcome = json.loads(outcome_path.read_text())
        result = json.loads((rep_dir / "result.json").read_text()) if outcome["status"] == "ok" else None
        figure = peak_rss(result, outcome)
        if figure:
            rss.append(figure)
        if result is None:
            problems.append(f"repeat {rep_dir.name}: {outcome['status'].upper()}: {outcome['message']}")
            row.setdefault("_worst", outcome["status"].upper())
            continue
        check = verify.check_outputs(rep_dir / "outputs.bin", reference, atol, rtol)
        checks.append(check)
        if not check.ok:
            problems.append(f"repeat {rep_dir.name}: outputs wrong: {check.message}")
        results.append(result)
        samples.append(stats.per_call_ns(rep_dir / "timings.bin", result["block"]))
        warmups.append(stats.per_call_ns(rep_dir / "warmup_timings.bin", 1) / 1000.0)
    worst = row.pop("_worst", None)
    row["repeats_ok"] = len(results)
    row["outputs_ok"] = bool(checks) and all(c.ok for c in checks)
    row["max_abs_err"] = max((c.max_abs_err for c in checks), default=float("nan"))
    row["peak_rss_mb"] = max((mb for mb, _ in rss), default=float("nan"))
    row["peak_rss_source"] = " + ".join(sorted({src for _, src in rss}))
    if results:
        row.update(stats.summarize(samples))
        row["per_sample_us"] = row["median_us"] / row["batch"]
        row["load_ms"] = float(np.median([r["load_ns"] for r in results])) / 1e6
        row["first_call_us"] = float(np.median([r["first_call_ns"] for r in results])) / 1e3
        row["timer_overhead_ns"] = float(np.median([r["timer_overhead_ns"] for r in results]))
        row["timer_overhead_pct"] = 100 * row["timer_overhead_ns"] / (row["median_us"] * 1000 * choice["block"])
        row.update(stats.harness_overhead(samples, results))
        # With block > 1 a lone call is dominated by the clock, so its steady level is the warm-up's own tail.
        steady = [stats.calls_to_steady(w, row["median_us"] if choice["block"] == 1
                                        else float(np.median(w[-max(1, w.size // 10):]))) for w in warmups]
        row["calls_to_steady"] = int(np.median(steady))
        first = results[0]
        row.update(threads=first["threads"], interop_threads=first["interop_threads"],
                   libtorch_version=first.get("libtorch_version"), runtime=first.get("runtime"),
                   libtorch_path=first.get("libtorch_path"), jdk=jdk_of(results))
        row["grad_mode"] = first["grad_mode"]
        if "no LLVM" in str(first.get("extra", {}).get("cpu_fuser", "")):
            problems.append("CPU fuser " + first["extra"]["cpu_fuser"])
        nodes = first.get("extra", {}).get("graph_nodes")
        if isinstance(nodes, dict):
            row["graph_nodes"] = sum(nodes.values())
            row["fusion_groups"] = sum(v for k, v in nodes.items() if k in FUSION_NODES)
        row["threads_ok"] = all(
            r["threads"] == choice.get("threads", suite["run"]["threads"])
            and r["interop_threads"] == suite["run"]["interop_threads"]
            for r in results
        ) if (reg is None or reg["uses_torch"]) else True
        paths = {r.get("libtorch_path") for r in results}
        row["libtorch_same"] = (paths <= {None, ""} and not (reg and reg["uses_torch"])) or all(
            p and torch_lib and Path(p).resolve().parent == torch_lib for p in paths
        )
        if not row["threads_ok"]:
            problems.append("thread counts read back differ from the ones asked")
        if not row["libtorch_same"]:
            problems.append(f"loaded another libtorch: {', '.join(sorted(map(str, paths)))}")
        row["_repeat_medians"] = stats.repeat_medians(samples)
        row["speed_modes"] = stats.modes_text(stats.speed_modes(row["_repeat_medians"]))
        row["noisy"] = "; ".join(stats.noise_flags(row))
    if not row["outputs_ok"] and checks:
        row["status"] = "FAILED"
    elif worst or len(results) < suite["run"]["repeats"]:
        row["status"] = worst or "INCOMPLETE"
    else:
        row["status"] = "ok"
    if [atol, rtol] != record["default_tolerance"]:
        problems.append(f"outputs checked with this runner's looser tolerance atol {atol:g} + rtol {rtol:g}")
    row["message"] = "; ".join(merge_repeats(problems, suite["run"]["repeats"]))
    row.update(instructions_of(run_dir / "raw" / rid / "instructions.json"))
    return row


def jdk_of(results: list[dict[str, Any]]) -> str | None:
    """The JDK a Java row ran on, as its processes reported it (version and home), or None for other rows."""
    seen = {f"{r['extra']['java_runtime_version']} at {r['extra']['java_home']}" for r in results
            if "java_home" in r.get("extra", {})}
    return " / ".join(sorted(seen)) or None


def merge_repeats(problems: list[str], repeats: int) -> list[str]:
    """`repeat N: X` problems said once per distinct X (`every repeat: X`, `repeats 0, 2: X`): a row whose
    every process failed alike (a JDK not found, a crash at load) gets one readable line, not one per repeat."""
    groups: dict[str, list[str]] = {}
    for problem in problems:
        match = re.fullmatch(r"repeat (\d+): (.*)", problem, re.S)
        if match:
            groups.setdefault(match[2], []).append(match[1])
        else:
            groups.setdefault(problem, [])
    merged = []
    for text, which in groups.items():
        if not which:
            merged.append(text)
        elif len(which) == 1:
            merged.append(f"repeat {which[0]}: {text}")
        else:
            merged.append(f"every repeat: {text}" if len(which) == repeats else f"repeats {', '.join(which)}: {text}")
    return merged


def instructions_of(path: Path) -> dict[str, Any]:
    """Median instructions per call over the valgrind repeats, their spread, or why none were counted."""
    if not path.exists():
        return {}
    d = json.loads(path.read_text())
    values = d.get("per_call") or []
    if not values:
        return {"instructions_note": d.get("reason") or "not measured"}
    median = float(np.median(values))
    # relative to the median's size: a JIT's counts can straddle zero, and that must read as far from exact
    width = max(values) - min(values)
    spread = width / abs(median) if median else (0.0 if width == 0 else float("inf"))
    return {"instructions_per_call": median, "instructions_spread": spread, "instructions_note": d.get("reason")}


def peak_rss(result: dict[str, Any] | None, outcome: dict[str, Any]) -> tuple[float, str] | None:
    """(MB, source) of one process's peak memory: its own VmHWM (from its result), else the harness's sampling.

    The sampling (every 20 ms) misses a short process entirely, so it stands in only for a runner that
    died before writing its result.
    """
    own = result.get("peak_rss_kb") if result else None
    if own is not None:
        return own / 1024, "runner"
    if outcome.get("peak_rss_mb") is not None:
        return float(outcome["peak_rss_mb"]), "polled"
    return None


def tolerance_of(runner_id: str, record: dict[str, Any]) -> tuple[float, float]:
    """(atol, rtol) for a runner's outputs, as the run recorded them (harness/judged_with.py)."""
    reg = record["runners"].get(runner_id)
    atol, rtol = reg["tolerance"] if reg else record["default_tolerance"]
    return atol, rtol


def collect(run_dir: Path) -> pd.DataFrame:
    """Verify and summarise every runner of a run folder; write results.csv and summary.json."""
    suite = json.loads((run_dir / "suite.json").read_text())
    builds = json.loads((run_dir / "builds.json").read_text())
    output_size = int(np.prod(suite["model"].get("output_shape") or suite["model"]["layers"][-1:]))
    reference = np.fromfile(run_dir / "raw" / "reference.bin", dtype="<f4").reshape(-1, output_size)
    record = judged_with.read(run_dir, [c["id"] for c in suite["runners"]])
    env_path = run_dir / "environment.json"
    lib = json.loads(env_path.read_text()).get("torch_lib") if env_path.exists() else None
    torch_lib = Path(lib).resolve() if lib else None
    rows = [_runner_row(run_dir, c, builds[c["name"]], suite, reference, record, torch_lib) for c in suite["runners"]]
    medians = {r["runner"]: r.pop("_repeat_medians") for r in rows if "_repeat_medians" in r}
    for base, col in (("python-eager", "ratio_to_python_eager"), ("cpp-raw", "ratio_to_cpp_raw")):
        base_row = next((r for r in rows if r["runner"] == base and r["status"] == "ok"), None)
        for r in rows:
            if base_row is None or r["runner"] not in medians:
                continue
            r[col] = r["median_us"] / base_row["median_us"]
            a, b = medians[r["runner"]], medians[base]
            r[f"{col}_ci_low"], r[f"{col}_ci_high"] = stats.ratio_ci(a, b, paired=a.size == b.size)
    df = pd.DataFrame(rows).reindex(columns=CSV_COLUMNS)
    seed = {rid: r["seed_seconds"] for rid, r in record["runners"].items() if r["seed_seconds"]}
    # the seed's ratio belongs to the seed's setting only, i.e. the runner under its default grad mode
    seed_rows = df["runner"].eq(df["runner_id"]) & df["runner_id"].isin(list(seed))
    df["seed_ratio_to_python"] = np.where(
        seed_rows, df["runner_id"].map(lambda r: seed.get(r, np.nan) / record["seed_python_seconds"]), np.nan
    )
    write_atomic(run_dir / "results.csv", df.to_csv(index=False, float_format="%.6g"))
    write_json(run_dir / "summary.json", {
        "suite": suite["name"],
        "repeat_medians_us": {k: v.tolist() for k, v in medians.items()},
        "runners": json.loads(df.to_json(orient="records")),
        "tolerance": {"atol": record["default_tolerance"][0], "rtol": record["default_tolerance"][1], "per_runner": {
            c["name"]: dict(zip(("atol", "rtol"), tolerance_of(c["id"], record), strict=True))
            for c in suite["runners"] if list(tolerance_of(c["id"], record)) != record["default_tolerance"]
        }},
    })
    dashboards.write_all(run_dir, df)
    return df
