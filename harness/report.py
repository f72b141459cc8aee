"""Write report.md and its plots from a run folder's results.csv, summary.json and raw timings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import pandas as pd

from harness import decomposition, fastest, judged_with, load_stats, plots, programs, recipes, stats, sweep
from harness.files import write_atomic
from harness.instructions import EXACT_SPREAD
from harness.render import environment
from harness.rule import number, with_interval
from harness.runtimes import runtime_table
from harness.toolchains import NOT_BUILDABLE

_fmt = number  # the one formatter of every figure (harness/rule.py)


def _outputs_cell(r: pd.Series) -> str:
    if r["status"] in ("SKIPPED",) or pd.isna(r["max_abs_err"]):
        return "–"
    return f"{'✓' if r['outputs_ok'] else '✗'} {r['max_abs_err']:.1e}"


def headline_table(df: pd.DataFrame) -> str:
    rows = []
    for _, r in df.iterrows():
        rows.append({
            "runner": r["runner"],
            "language": r["language"],
            **({"batch": str(int(r["batch"]))} if sweep.has_batches(df) else {}),
            "µs/call median [95 % CI]": with_interval(r["median_us"], r["median_ci_low_us"], r["median_ci_high_us"]),
            "p99": _fmt(r["p99_us"]),
            "max": _fmt(r["max_us"]),
            "× py-eager [95 % CI]": with_interval(
                r["ratio_to_python_eager"], r["ratio_to_python_eager_ci_low"], r["ratio_to_python_eager_ci_high"]
            ),
            "seed ×": _fmt(r["seed_ratio_to_python"]),
            "× cpp-raw": _fmt(r["ratio_to_cpp_raw"]),
            "load ms": _fmt(r["load_ms"]),
            "first call µs": _fmt(r["first_call_us"]),
            "outputs": _outputs_cell(r),
            "status": r["status"],
        })
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def details_table(df: pd.DataFrame) -> str:
    cols = ["runner", "method", "grad_mode", "block", "min_us", "mean_us", "p90_us", "p999_us", "std_us", "iqr_us",
            "mad_us", "spikes", "bare_mean_us", "peak_rss_mb", "peak_rss_source", "repeats_ok"]
    out = df[cols].copy()
    for c in cols[4:]:
        out[c] = out[c].map(_fmt)
    return out.to_markdown(index=False, disable_numparse=True)


def _yes(v: Any) -> str:
    return "–" if pd.isna(v) else ("yes" if bool(v) else "**NO**")




def _instructions_cell(r: pd.Series) -> str:
    v = r.get("instructions_per_call")
    if v is None or pd.isna(v):
        note = r.get("instructions_note")
        return "not measured" if isinstance(note, str) and note else "–"
    spread = r.get("instructions_spread")
    return f"{v:,.0f}" + (" (not exact)" if not pd.isna(spread) and spread > EXACT_SPREAD else "")


def _spread_cell(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.3%}"


def instructions_wall_s(run_dir: Path) -> float | None:
    """Seconds the valgrind measurements took in all, or None when the run did not ask for them."""
    files = sorted((run_dir / "raw").glob("*/instructions.json"))
    return sum(json.loads(f.read_text()).get("wall_s", 0.0) for f in files) if files else None


def quality_table(df: pd.DataFrame) -> str:
    """What a skeptical reader checks first: spread, clock cost, warm-up, parity of threads and libtorch."""
    measured = "instructions_note" in df and bool(
        (df["instructions_note"].notna() | df["instructions_per_call"].notna()).any())
    rows = []
    for _, r in df.iterrows():
        rows.append({
            "runner": r["runner"],
            "CV of repeat medians": "–" if pd.isna(r["cv_repeat_medians"]) else f"{r['cv_repeat_medians']:.1%}",
            "IQR / median": "–" if pd.isna(r["iqr_us"]) else f"{r['iqr_us'] / r['median_us']:.0%}",
            "clock cost % of block": _fmt(r["timer_overhead_pct"]),
            "harness overhead %": _fmt(r["harness_overhead_pct"]),
            "calls to steady": _fmt(r["calls_to_steady"]),
            "threads read back (intra/inter)": "–" if pd.isna(r["threads"])
            else f"{int(r['threads'])}/{int(r['interop_threads'])}",
            "threads as set": _yes(r["threads_ok"]),
            "same libtorch": _yes(r["libtorch_same"]),
            "noise flags": r["noisy"] if isinstance(r["noisy"], str) and r["noisy"] else "none",
            **({"instructions / call": _instructions_cell(r), "instr. spread": _spread_cell(r["instructions_spread"])}
               if measured else {}),
        })
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def verdict_rows(run_dir: Path, df: pd.DataFrame) -> list[dict[str, str]]:
    """Every claim of the run's suite, judged on its rows with the registry entries it recorded."""
    suite = json.loads((run_dir / "suite.json").read_text())
    medians = json.loads((run_dir / "summary.json").read_text()).get("repeat_medians_us")
    record = judged_with.read(run_dir, [c["id"] for c in suite["runners"]])
    uses_torch = {rid: r["uses_torch"] for rid, r in record["runners"].items()}
    return recipes.verdicts(df, medians, suite.get("claims", []), uses_torch)


def recipes_table(run_dir: Path, df: pd.DataFrame) -> str:
    """The suite's claims with our figures and a verdict ("" if it has none)."""
    rows = verdict_rows(run_dir, df)
    if not rows:
        return ""
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


IR_EXCERPT_LINES = 60


def graphs(run_dir: Path, df: pd.DataFrame) -> list[dict[str, Any]]:
    """The optimized TorchScript graphs runners left behind: copied to ir/, with node counts and an excerpt."""
    found = []
    for _, r in df[df["status"].eq("ok")].iterrows():
        reps = sorted((run_dir / "raw" / r["runner"]).glob("*/artifacts/graph.txt"))
        if not reps:
            continue
        text = reps[0].read_text(errors="replace")
        out = run_dir / "ir" / f"{r['runner']}.txt"
        write_atomic(out, text)
        result = json.loads((reps[0].parent.parent / "result.json").read_text())
        counts = result.get("extra", {}).get("graph_nodes") or {}
        lines = text.splitlines()
        excerpt = "\n".join(lines[:IR_EXCERPT_LINES]) + (
            f"\n… ({len(lines) - IR_EXCERPT_LINES} more lines in ir/{r['runner']}.txt)" if len(lines) > IR_EXCERPT_LINES
            else "")
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
        found.append({"runner": r["runner"], "file": f"ir/{r['runner']}.txt", "lines": len(lines),
                      "counts": ", ".join(f"{k} × {v}" for k, v in top), "excerpt": excerpt})
    return found


def torchscript_rows(run_dir: Path, df: pd.DataFrame) -> list[str]:
    """The rows that load TorchScript, which torch 2.13 deprecates (as the run's registry record says)."""
    suite = json.loads((run_dir / "suite.json").read_text())
    entries = judged_with.read(run_dir, [c["id"] for c in suite["runners"]])["runners"]
    return [str(r["runner"]) for r in df.to_dict("records") if entries.get(r["runner_id"], {}).get("torchscript")]


def exports_table(run_dir: Path) -> str:
    """The torch.export / AOTInductor files the run loaded: how long their export and compile took."""
    path = run_dir / "exports.json"
    made = json.loads(path.read_text()) if path.exists() else {}
    rows = [{"file": name, "export s": _fmt((f.get("seconds") or {}).get("export")),
             "AOTInductor compile s": _fmt((f.get("seconds") or {}).get("compile")),
             "MB": _fmt((f.get("bytes") or 0) / 1e6), "made": str(f.get("made") or "–")}
            for name, f in made.items() if name.endswith(".pt2")]
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) if rows else ""


def write_report(run_dir: Path) -> Path:
    """Render report.md (and the PNGs) for a collected run; marks incomplete runs as such."""
    df = pd.read_csv(run_dir / "results.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    suite = json.loads((run_dir / "suite.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    status = json.loads((run_dir / "status.json").read_text())
    plots.plot_latency(df, run_dir / "latency.png")
    plots.plot_distribution(run_dir, df, run_dir / "distribution.png")
    plots.plot_warmup(run_dir, df, run_dir / "warmup.png")
    fastest_rows = fastest.rows(df)
    made = {r["row"]: r for r in programs.read(run_dir)}
    paths_plot = fastest.plot(df, run_dir / "paths.png")
    split = decomposition.read(run_dir)
    kind = suite["model"].get("kind", "mlp")
    batch_rows = sweep.batch_rows(df)
    if batch_rows:
        sweep.plot_batches(df, run_dir / "batch.png")
    medians = summary.get("repeat_medians_us") or {}
    if status["status"] == "complete":
        status_line = f"Run `{run_dir.name}`, complete ({status.get('finished', '')})."
    else:
        status_line = (f"**This run is {status['status'].upper()}**: {status.get('message', '')}. "
                       "Figures below cover only what finished.")
    problems = [r for r in df.to_dict("records") if r["status"] != "ok"]
    env_rows = [(k, str(v).replace("\n", " ").replace("\t", " ").replace("|", "\\|")) for k, v in env.items()]
    text = environment().get_template("harness/templates/report.md.j2").render(
        title=f"Inference cost per call: {suite['name']}",
        status_line=status_line,
        suite=suite,
        env=env,
        env_rows=env_rows,
        fastest=fastest.table(fastest_rows, made),
        fastest_programs=[(r["runner"], made[r["runner"]]) for r in fastest_rows if r["runner"] in made],
        fidelity=programs.fidelity_table(list(made.values())),
        agree_pct=f"{programs.AGREE_PCT:g}",
        paths_plot=paths_plot,
        decomposition=split,
        decomposition_table=decomposition.table(split) if split and "rows" in split else "",
        decomposition_notes=decomposition.notes(split) if split and "rows" in split else [],
        decomposition_plot=bool(split and "rows" in split and (run_dir / "decomposition.png").exists()),
        not_buildable=NOT_BUILDABLE,
        torchscript_rows=torchscript_rows(run_dir, df),
        exports=exports_table(run_dir),
        headline=headline_table(df),
        details=details_table(df),
        quality=quality_table(df),
        recipes=recipes_table(run_dir, df),
        batch_table=sweep.batch_table(batch_rows),
        language_table=sweep.language_table(batch_rows),
        thread_table=sweep.thread_table(sweep.thread_rows(df, medians)),
        overhead_limit=sweep.OVERHEAD_LIMIT,
        graphs=graphs(run_dir, df),
        kind=kind,
        batches=sorted({int(c.get("batch", 1)) for c in suite["runners"]}),
        recipes_rule=recipes.RULE,
        runtimes=runtime_table(run_dir),
        torch_lib=env.get("torch_lib"),
        harness_limit_pct=f"{100 * stats.HARNESS_LIMIT:g}",
        problems=problems,
        tolerance=summary["tolerance"],
        instructions_wall_s=instructions_wall_s(run_dir),
        exact_spread_pct=f"{100 * EXACT_SPREAD:g}",
        load_section=load_stats.section(run_dir),
    )
    out = run_dir / "report.md"
    write_atomic(out, text)
    return out


def write_collection_report(run_dir: Path) -> Path:
    """report.md of a collection run: its parts, and every verdict of every part in one table."""
    coll = json.loads((run_dir / "collection.json").read_text())
    status = json.loads((run_dir / "status.json").read_text())
    parts, claims = [], []
    for name in coll["parts"]:
        d = run_dir / name
        st = json.loads((d / "status.json").read_text()) if (d / "status.json").exists() else {"status": "not run"}
        row = {"part": f"[{name}]({name}/report.md)" if (d / "report.md").exists() else name,
               "status": st["status"], "runners ok": "–", "what": ""}
        if (d / "suite.json").exists():
            row["what"] = json.loads((d / "suite.json").read_text()).get("description", "")
        if (d / "results.csv").exists():
            df = pd.read_csv(d / "results.csv")
            row["runners ok"] = f"{int(df['status'].eq('ok').sum())} / {len(df)}"
            for v in verdict_rows(d, df):
                claims.append({"part": name, **v})
        parts.append(row)
    if status["status"] == "complete":
        status_line = f"Run `{run_dir.name}`, complete ({status.get('finished', '')})."
    else:
        status_line = (f"**This run is {status['status'].upper()}**: {status.get('message', '')}. "
                       "Figures below cover only what finished.")
    counts = pd.Series([c["verdict"] for c in claims]).value_counts().to_dict() if claims else {}
    lines = [
        f"# Inference cost per call: {coll['name']}", "", status_line, "",
        f"Collection **{coll['name']}**: {coll['description']}. Each part ran as its own suite into its own "
        "folder, with its own report (linked); this page gathers their verdicts.", "",
        "## What the sources claim, and whether it holds here", "",
        "Verdicts: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none") + ".", "",
        pd.DataFrame(claims).to_markdown(index=False, disable_numparse=True) if claims else "No verdicts.", "",
        f"- *verdict*: {recipes.RULE}.",
        "- Figures are µs per call, median [95 % CI] over the part's repeats; each part's report has the full "
        "tables, plots and the environment.", "",
        "## Parts", "",
        pd.DataFrame(parts).to_markdown(index=False, disable_numparse=True), "",
    ]
    out = run_dir / "report.md"
    write_atomic(out, "\n".join(lines))
    return out
