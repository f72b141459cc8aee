"""Merging runs from two machines: real figures from the committed runs, and a one-line refusal for any mismatch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import stats
from harness.errors import UserError
from harness.merge import default_output, merge_table, write_merge
from harness.paths import RESULTS_DIR

RUN_A, RUN_B = "20261122-023957-vm", "20261201-075828-vm"
FILES = ("results.csv", "summary.json", "environment.json", "suite.json", "status.json", "model.json",
         "inputs.manifest.json")


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """The two committed runs of the default suite, B made to look like a second machine."""
    out = []
    for name in (RUN_A, RUN_B):
        (tmp_path / name).mkdir()
        for f in FILES:
            shutil.copy(RESULTS_DIR / name / f, tmp_path / name / f)
        out.append(tmp_path / name)
    _edit(out[1] / "environment.json", lambda e: e.update(host="box2", cpu_model="Intel Xeon Gold 6338"))
    return out


def _rows(text: str) -> dict[str, dict[str, str]]:
    """The per-runner table of the report, as runner → column → cell."""
    table = [ln for ln in text.split("## Per runner")[1].splitlines() if ln.startswith("|")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:]]
    return {c[0]: dict(zip(head, c, strict=True)) for c in cells}


def _nums(cell: str) -> tuple[float, ...]:
    """'1,234 [1.00–2.00]' → (1234.0, 1.0, 2.0)."""
    return tuple(float(x) for x in cell.replace(",", "").strip("]").replace(" [", " ").replace("–", " ").split())


def _sig3(x: float) -> float:
    return float(f"{x:.3g}")


def test_report_of_two_machines(runs: list[Path]) -> None:
    text = write_merge(runs)
    assert default_output(runs) == runs[0] / f"merge-{RUN_B}.md" and default_output(runs).read_text() == text
    assert "across machines: vm, box2" in text and "Intel Xeon Gold 6338" in text and "AMD EPYC" in text
    rows = _rows(text)
    a, b = (pd.read_csv(r / "results.csv").set_index("runner") for r in runs)
    reps_a, reps_b = (json.loads((r / "summary.json").read_text())["repeat_medians_us"] for r in runs)
    assert list(rows) == list(a.index) and len(rows) == 7
    assert rows["python-eager"]["A µs/call [95 % CI]"] == "105 [72.9–112]"
    for name, row in rows.items():
        for label, df in (("A", a), ("B", b)):
            assert _nums(row[f"{label} µs/call [95 % CI]"]) == tuple(_sig3(df.loc[name, c]) for c in
                                          ("median_us", "median_ci_low_us", "median_ci_high_us"))
            assert row[f"{label} check"].startswith("ok ✓ ")
        ratio, lo, hi = _nums(row["B ÷ A [95 % CI]"])
        assert ratio == _sig3(b.loc[name, "median_us"] / a.loc[name, "median_us"])
        want_lo, want_hi = stats.ratio_ci(np.array(reps_b[name]), np.array(reps_a[name]), paired=False)
        assert (lo, hi) == (_sig3(want_lo), _sig3(want_hi))
    assert rows["python-eager"]["B ÷ A [95 % CI]"].startswith("0.548 ")  # 57.7 (B) / 105.277 (A)
    assert "In only some runs" not in text


def test_runner_in_one_run_only(runs: list[Path]) -> None:
    csv = runs[1] / "results.csv"
    df = pd.read_csv(csv)
    df[df["runner"] != "cpp-raw"].to_csv(csv, index=False)
    table = merge_table(runs)
    row = table[table["runner"] == "cpp-raw"].iloc[0]
    assert row["B µs/call [95 % CI]"] == "–" and row["B ÷ A [95 % CI]"] == "–" and row["B check"] == "–"
    assert row["A µs/call [95 % CI]"].startswith("0.0133 ")
    assert "In only some runs: cpp-raw (A)" in write_merge(runs, runs[0] / "m.md")


def _layers(d: dict[str, Any]) -> None:
    d["model"]["layers"] = [2, 16, 16, 1]


REFUSALS: dict[str, tuple[Callable[[list[Path]], list[Path]], str]] = {
    "single run": (lambda r: r[:1], r"got 1 run, need at least 2"),
    "suites": (lambda r: (_edit(r[1] / "suite.json", lambda s: s.update(name="java-vs-cpp")), r)[1],
               rf"{RUN_A} and {RUN_B} are of different suites \(default, java-vs-cpp\): merge runs of one suite"),
    "layers": (lambda r: (_edit(r[1] / "suite.json", _layers),
                          _edit(r[1] / "model.json", lambda m: m["spec"].update(layers=[2, 16, 16, 1])), r)[2],
               rf"{RUN_A} and {RUN_B} have different models \(model.layers: \[2, 8, 8, 1\] vs \[2, 16, 16, 1\]"),
    "weights": (lambda r: (_edit(r[1] / "model.json", lambda m: m["sha256"].update({"weights.bin": "0" * 64})), r)[1],
                rf"{RUN_A} and {RUN_B} have different models \(model.json sha256 of weights.bin"),
    "kind": (lambda r: (_edit(r[1] / "suite.json", lambda s: s["model"].update(kind="mlp_branch")), r)[1],
             rf"{RUN_A} and {RUN_B} have different models \(model.kind: mlp vs mlp_branch\)"),
    "inputs": (lambda r: (_edit(r[1] / "inputs.manifest.json", lambda m: m.update(seed=2)), r)[1],
               rf"{RUN_A} and {RUN_B} have different inputs \(inputs seed: 1 vs 2\)"),
    "collection": (lambda r: ((r[0] / "collection.json").write_text("{}"), r)[1],
                   rf"{RUN_A} holds several suites \(a collection\): merge one of its parts"),
    "incomplete": (lambda r: (_edit(r[1] / "status.json", lambda s: s.update(status="interrupted")), r)[1],
                   rf"{RUN_B} is not complete \(status interrupted\): merge complete runs only"),
    "no summary": (lambda r: ((r[1] / "summary.json").unlink(), r)[1], rf"{RUN_B} has no summary.json"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals(runs: list[Path], case: str) -> None:
    break_runs, message = REFUSALS[case]
    chosen = break_runs(runs)
    with pytest.raises(UserError, match=r"^merge: " + message) as exc:
        write_merge(chosen, runs[0] / "m.md")
    assert "\n" not in str(exc.value)
    assert not (runs[0] / "m.md").exists()
