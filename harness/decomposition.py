"""Where each fastest path's time goes: the language's crossing, the framework, the model's operators, the arithmetic.

For the fastest verified row of each language (and, for Java, the fastest row of its other crossing, JNI or
FFM), four parts that add up to the row's median per call, all measured in this run:
- crossing: the language's empty native call (harness/probes.py);
- framework: the same runner on a one-op model (y = x + 1 on the same input shape), less the crossing: what
  the runtime costs around any operator (argument conversion, dispatch, the output tensor);
- model's operators: the row less the one-op row and the arithmetic: what this model's operators cost above
  the multiply-adds themselves (one kernel call each, their temporaries);
- arithmetic: cpp-raw, the same model as plain loops (the floor).
A part that comes out below zero (the noise of two medians) is shown as 0 and flagged; a part that could not be
measured says why. The one-op rows are a run of their own, in <run>/decomposition/, with their own report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from harness import fastest, probes
from harness.files import write_json
from harness.paths import ROOT
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import parse_suite

ONE_OP = ROOT / "harness" / "one_op_model.py"
FOLDER = "decomposition"
CROSSING = {"Python": "python-extension", "C++": "cpp-call", "Java": "java-jni"}
FFM_RUNNERS = ("java-aoti-ffm", "java-aoti-minimal-ffm")  # Java rows that cross by FFM downcalls rather than JNI
PARTS = ("crossing", "framework", "operators", "arithmetic")
LABELS = {"crossing": "crossing (empty native call)", "framework": "framework (one-op model − crossing)",
          "operators": "model's operators (row − one-op − arithmetic)", "arithmetic": "arithmetic (cpp-raw)"}
COLOURS = {"crossing": "#4c72b0", "framework": "#dd8452", "operators": "#8172b3", "arithmetic": "#55a868"}


def crossing_of(runner_id: str) -> str:
    """The probe whose crossing this runner's call makes."""
    if runner_id in FFM_RUNNERS:
        return "java-ffm"
    return CROSSING[RUNNERS[runner_id].language]


def chosen(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The fastest verified row per language, and for Java the fastest row of its other crossing too."""
    ok = fastest.verified(df)
    ok = ok[~ok["runner_id"].eq(fastest.FLOOR)]
    picked = [r["runner"] for r in fastest.rows(df)]
    java = ok[ok["language"].eq("Java")]
    if not java.empty:
        crossings = java["runner_id"].map(crossing_of)
        first = crossings[java["median_us"].idxmin()]
        other = java[crossings.ne(first)]
        if not other.empty:
            picked.append(str(other.loc[other["median_us"].idxmin(), "runner"]))
    rows = ok.set_index("runner")
    return [{"row": name, "runner_id": str(rows.loc[name, "runner_id"]), "language": str(rows.loc[name, "language"]),
             "median_us": float(rows.loc[name, "median_us"])} for name in picked]


def one_op_suite(main: Suite, runner_ids: list[str]) -> Suite:
    """The one-op model as a user's factory model, on the main model's first input shape, the same run settings."""
    shape = (main.model.tensors[0].shape if main.model.is_user else main.model.input_shape(1))
    data = {
        "name": "one-op", "description": "y = x + 1 on the main model's input: the framework part of the decomposition",
        "model": {"name": "one-op", "kind": "factory", "path": f"{ONE_OP}:build"},
        "inputs": {"tensors": [{"shape": list(shape), "dtype": "float32", "distribution": "uniform",
                                "low": 0.0, "high": 1.0}]},
        "run": {"calls": main.run.calls, "warmup_calls": main.run.warmup_calls,
                "warmup_s": main.run.warmup_s, "repeats": main.run.repeats,
                "threads": main.run.threads, "interop_threads": main.run.interop_threads, "programs": False,
                "decomposition": False},
        "runners": [{"id": rid} for rid in dict.fromkeys(runner_ids)],
    }
    return parse_suite(data, "the decomposition's one-op suite")


def parts(total: float, crossing: float | None, one_op: float | None, floor: float | None) -> dict[str, Any]:
    """The four parts in µs (None: not measured) and the ones clipped at zero."""
    framework = one_op - crossing if one_op is not None and crossing is not None else None
    operators = total - one_op - floor if one_op is not None and floor is not None else None
    values = {"crossing": crossing, "framework": framework, "operators": operators, "arithmetic": floor}
    clipped = [k for k, v in values.items() if v is not None and v < 0]
    return {"parts_us": {k: (max(v, 0.0) if v is not None else None) for k, v in values.items()},
            "clipped": clipped}


def make(run_dir: Path, df: pd.DataFrame, suite: Suite, build_root: Path,
         run_one_op: Callable[[Suite, Path], None], say: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Measure the one-op rows and the empty calls, write decomposition.json and .png; None if nothing to split."""
    rows = chosen(df)
    if not rows:
        return None
    floor = fastest.floor_us(fastest.verified(df))
    model = one_op_suite(suite, [r["runner_id"] for r in rows]).model
    refused = {r["runner_id"]: RUNNERS[r["runner_id"]].cannot_run(model) for r in rows}
    usable = [rid for rid, why in refused.items() if why is None]
    one_op: dict[str, float] = {}
    failed: dict[str, str] = {}
    if usable:
        say(f"decomposition: the one-op model on {', '.join(dict.fromkeys(usable))} …")
        sub = run_dir / FOLDER
        sub.mkdir()
        run_one_op(one_op_suite(suite, usable), sub)
        sub_df = pd.read_csv(sub / "results.csv")
        for rec in sub_df.to_dict("records"):
            if rec["status"] == "ok" and str(rec["outputs_ok"]) == "True" and not pd.isna(rec["median_us"]):
                one_op[str(rec["runner_id"])] = float(rec["median_us"])
            else:
                why = rec.get("message") if isinstance(rec.get("message"), str) else ""
                failed[str(rec["runner_id"])] = f"its one-op row is {rec['status']}: {why or 'outputs differ'}"
    measured = probes.measure(build_root, suite.run.repeats, say)
    out_rows = []
    for r in rows:
        probe = measured[crossing_of(r["runner_id"])]
        crossing = probe.median_ns / 1000 if probe.median_ns is not None else None
        rec = {**r, "crossing_probe": probe.name, "one_op_us": one_op.get(r["runner_id"]),
               **parts(r["median_us"], crossing, one_op.get(r["runner_id"]), floor)}
        why = {"crossing": probe.reason, "framework": failed.get(r["runner_id"], ""), "arithmetic": ""}
        if refused[r["runner_id"]]:
            why["framework"] = str(refused[r["runner_id"]])
        if floor is None:
            why["arithmetic"] = "cpp-raw did not run or did not verify in this run"
        rec["not_measured"] = {k: v for k, v in why.items() if v}
        out_rows.append(rec)
    record = {"rows": out_rows, "floor_us": floor,
              "probes": {n: {"what": probes.NAMES[n], "ns": p.ns, "median_ns": p.median_ns, "reason": p.reason}
                         for n, p in measured.items()}}
    write_json(run_dir / "decomposition.json", record)
    plot(record, run_dir / "decomposition.png")
    return record


def read(run_dir: Path) -> dict[str, Any] | None:
    """The run's decomposition.json, if it has one."""
    import json

    path = run_dir / "decomposition.json"
    return json.loads(path.read_text()) if path.exists() else None


def _us(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def table(record: dict[str, Any]) -> str:
    """Markdown: per decomposed row, the four parts, their sum and the row; what was clipped or not measured."""
    head = "| row | language | crossing | framework | model's operators | arithmetic | sum | row µs/call |"
    lines = [head, "|:--|:--|--:|--:|--:|--:|--:|--:|"]
    for r in record["rows"]:
        p = r["parts_us"]
        known = [v for v in p.values() if v is not None]
        total = sum(known) if len(known) == len(p) else None
        cells = [_us(p[k]) + ("\\*" if k in r["clipped"] else "") for k in PARTS]
        lines.append(f"| {r['row']} | {r['language']} | " + " | ".join(cells)
                     + f" | {_us(total)} | {_us(r['median_us'])} |")
    return "\n".join(lines)


def notes(record: dict[str, Any]) -> list[str]:
    """One line per part that is clipped or not measured, naming the row and why."""
    out = []
    for r in record["rows"]:
        for k in r["clipped"]:
            out.append(f"{r['row']}: the {LABELS[k]} part came out below zero (two medians' noise) and is shown as 0")
        for k, why in r["not_measured"].items():
            out.append(f"{r['row']}: {LABELS[k]} not measured: {why}")
    return out


def plot(record: dict[str, Any], path: Path) -> bool:
    """Horizontal stacked bars, one per decomposed row (µs per call); False if no row has every part."""
    rows = [r for r in record["rows"] if all(v is not None for v in r["parts_us"].values())]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 2.2))
    names = [f"{r['row']} ({r['language']})" for r in rows]
    left = [0.0] * len(rows)
    for k in PARTS:
        widths = [r["parts_us"][k] for r in rows]
        ax.barh(names, widths, left=left, color=COLOURS[k], label=LABELS[k])
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("µs per call (median)")
    ax.set_title("Where one call's time goes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
