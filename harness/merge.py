"""One report for one suite run on several machines: each host's figures, the ratios between hosts, and why.

`invoke compare` asks "did this change?" of two runs on one machine; a merge asks "how do these machines differ?",
so it refuses runs that did not measure the same thing (other suite, model or inputs) instead of comparing them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from string import ascii_uppercase
from typing import Any

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import UserError
from harness.files import write_atomic
from harness.model_spec import ModelSpec
from harness.report import _outputs_cell
from harness.rule import number as _fmt
from harness.rule import with_interval

# Older runs recorded only the model keys their suite set; fill in the defaults so they still match newer runs.
_MODEL_DEFAULTS: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(ModelSpec(name=""))))
# model.ts.pt is left out: its bytes change with the export code (same weights, four hashes among the committed
# runs), while the weights fix what is computed and each run's outputs check covers the rest.
_WEIGHT_FILES = ("model.state.pt", "weights.bin")
_INPUT_KEYS = ("sha256", "seed", "count")


def _json(run: Path, name: str) -> dict[str, Any]:
    path = run / name
    return json.loads(path.read_text()) if path.exists() else {}


def _model_facts(run: Path) -> dict[str, Any]:
    """What fixes the model and its inputs, flattened to 'where.key' → value for a readable difference."""
    facts = {f"model.{k}": v for k, v in (_MODEL_DEFAULTS | _json(run, "suite.json").get("model", {})).items()}
    meta = _json(run, "model.json")
    facts |= {f"model.json spec.{k}": v for k, v in (_MODEL_DEFAULTS | meta["spec"]).items()} if "spec" in meta else {}
    facts |= {f"model.json sha256 of {f}": h for f, h in meta.get("sha256", {}).items() if f in _WEIGHT_FILES}
    manifest = _json(run, "inputs.manifest.json")
    return facts | {f"inputs {k}": manifest[k] for k in _INPUT_KEYS if k in manifest}


def check_mergeable(runs: list[Path]) -> None:
    """Refuse, in one line with the fix, anything but two or more complete runs of one suite, model and inputs."""
    if len(runs) < 2:
        raise UserError(f"merge: got {len(runs)} run, need at least 2: give one run of the suite from each machine")
    for run in runs:
        if (run / "collection.json").exists():
            raise UserError(f"merge: {run.name} holds several suites (a collection): merge one of its parts, "
                            f"e.g. {run.name}/<part>")
        if not (run / "summary.json").exists() or not (run / "results.csv").exists():
            raise UserError(f"merge: {run.name} has no summary.json or results.csv (the run did not get that far): "
                            "pick a completed run")
        status = _json(run, "status.json").get("status", "missing")
        if status != "complete":
            raise UserError(f"merge: {run.name} is not complete (status {status}): merge complete runs only")
    first = runs[0]
    suite, facts = _json(first, "suite.json").get("name"), _model_facts(first)
    for run in runs[1:]:
        other = _json(run, "suite.json").get("name")
        if other != suite:
            raise UserError(f"merge: {first.name} and {run.name} are of different suites ({suite}, {other}): "
                            "merge runs of one suite")
        theirs = _model_facts(run)
        diff = [k for k in facts if k in theirs and facts[k] != theirs[k]]
        if diff:
            k = diff[0]
            what = "inputs" if k.startswith("inputs") else "models"
            raise UserError(f"merge: {first.name} and {run.name} have different {what} ({k}: {facts[k]} vs "
                            f"{theirs[k]}): merge runs of one suite with the same model and inputs")


def _labels(runs: list[Path]) -> list[str]:
    return [ascii_uppercase[i] if i < 26 else f"R{i + 1}" for i in range(len(runs))]


def environment_table(runs: list[Path]) -> pd.DataFrame:
    """Each run's machine and toolchain, one column per run, so a ratio can be read against what differs."""
    cols = {}
    for label, run in zip(_labels(runs), runs, strict=True):
        e = _json(run, "environment.json")
        cores = f"{e.get('cores_logical', '–')} ({e.get('cores_physical', '–')} physical)"
        values = {"run": run.name, "host": e.get("host"), "cpu_model": e.get("cpu_model"), "cores": cores,
                  "memory": f"{_fmt(e['memory_gib'])} GiB" if "memory_gib" in e else None,
                  **{k: e.get(k) for k in ("kernel", "os", "python", "torch", "cxx", "java", "git_commit")}}
        cols[label] = {k: "–" if v is None else str(v).replace("\n", " ").replace("|", "\\|")
                       for k, v in values.items()}
    return pd.DataFrame(cols).rename_axis("").reset_index()


def merge_table(runs: list[Path]) -> pd.DataFrame:
    """A row per runner in any run: each run's median [95 % CI], its ratio to run A [95 % CI], each run's check.

    attrs["partial"] maps a runner missing from some runs to the labels of the runs that have it.
    """
    check_mergeable(runs)
    labels = _labels(runs)
    tables = [pd.read_csv(r / "results.csv").set_index("runner") for r in runs]
    reps = [_json(r, "summary.json").get("repeat_medians_us", {}) for r in runs]
    names = list(dict.fromkeys(n for t in tables for n in t.index))
    rows = []
    for name in names:
        row: dict[str, str] = {"runner": name}
        got = [t.loc[name] if name in t.index else None for t in tables]
        for label, r in zip(labels, got, strict=True):
            row[f"{label} µs/call [95 % CI]"] = "–" if r is None else with_interval(
                r["median_us"], r["median_ci_low_us"], r["median_ci_high_us"])
        for i in range(1, len(runs)):
            cell = "–"
            if got[0] is not None and got[i] is not None:
                ratio = got[i]["median_us"] / got[0]["median_us"]
                lo, hi = stats.ratio_ci(np.array(reps[i].get(name, [])), np.array(reps[0].get(name, [])),
                                        paired=False)
                cell = with_interval(ratio, lo, hi)
            row[f"{labels[i]} ÷ A [95 % CI]"] = cell
        for label, r in zip(labels, got, strict=True):
            row[f"{label} check"] = "–" if r is None else f"{r['status']} {_outputs_cell(r)}"
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["partial"] = {n: [lab for lab, t in zip(labels, tables, strict=True) if n in t.index]
                           for n in names if not all(n in t.index for t in tables)}
    return df


def default_output(runs: list[Path]) -> Path:
    """Where `invoke merge` writes: the first run's folder, merge-<name2>-<name3>….md."""
    return runs[0] / f"merge-{'-'.join(r.name for r in runs[1:])}.md"


def write_merge(runs: list[Path], out: Path | None = None) -> str:
    """Write the merged markdown report atomically to `out` (default: default_output(runs)) and return it."""
    df = merge_table(runs)
    suite = _json(runs[0], "suite.json")["name"]
    hosts = ", ".join(dict.fromkeys(str(_json(r, "environment.json").get("host", "?")) for r in runs))
    lines = [
        f"# Suite `{suite}` across machines: {hosts}", "",
        f"Runs {', '.join(f'{lab} = `{r.name}`' for lab, r in zip(_labels(runs), runs, strict=True))}: "
        "per runner, each run's median µs per call (the median of its repeats' medians) with its 95 % "
        "bootstrap interval over repeats, and each run's median divided by run A's with a 95 % bootstrap interval "
        "over the two runs' per-repeat medians (unpaired: the runs ran apart); *check* is the runner's status and "
        "its outputs against the Python reference (max abs error).", "",
        "## Machines", "",
        environment_table(runs).to_markdown(index=False, disable_numparse=True), "",
        "## Per runner", "",
        df.to_markdown(index=False, disable_numparse=True), "",
    ]
    partial = df.attrs["partial"]
    if partial:
        lines += ["In only some runs: " + "; ".join(f"{n} ({', '.join(labs)})" for n, labs in partial.items()), ""]
    text = "\n".join(lines)
    write_atomic(out or default_output(runs), text)
    return text
