"""The comparison says 'no significant change' for noise and names a real change with its size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.compare import verdict, write_comparison


def test_verdicts() -> None:
    a = np.array([10.0, 10.1, 9.9, 10.05, 9.95])
    assert verdict(a, a * 1.001 + np.array([0.05, -0.05, 0.02, -0.02, 0]))[4].startswith("no significant change")
    change, lo, hi, p, words = verdict(a, a * 0.88)
    assert change < -0.11 and p < 0.05 and lo < hi < 0
    assert words.startswith("12% ± ") and words.endswith("faster, significant (p = 0.008)")
    assert "slower, significant" in verdict(a, a * 1.5)[4]
    assert "too few repeats" in verdict(a[:1], a[:1] * 2)[4]


def _run(root: Path, name: str, medians: dict[str, list[float]]) -> Path:
    d = root / name
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({"repeat_medians_us": medians}))
    return d


def test_write_comparison(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", {"cpp-api": [15.0, 15.2, 14.9, 15.1, 15.0], "cpp-raw": [0.04] * 5})
    b = _run(tmp_path, "b", {"cpp-api": [20.0, 20.3, 19.9, 20.1, 20.2], "java": [30.0] * 5})
    text = write_comparison(a, b, b / "cmp.md")
    assert "| cpp-api " in text and "slower, significant" in text
    assert "In one run only: cpp-raw, java" in text
    assert (b / "cmp.md").read_text() == text


def test_gate_fails_only_on_a_significant_slowdown_beyond_the_threshold(tmp_path: Path) -> None:
    from harness.compare import compare_runs, gate

    steady = [15.0, 15.2, 14.9, 15.1, 15.0]
    a = _run(tmp_path, "a", {"cpp-api": steady, "cpp-raw": [0.04, 0.041, 0.039, 0.04, 0.04]})
    b = _run(tmp_path, "b", {"cpp-api": [x * 1.2 for x in steady], "cpp-raw": [0.0401, 0.0409, 0.039, 0.0402, 0.04]})
    changes = compare_runs(a, b).attrs["changes"]
    assert gate(changes, 5) == ["cpp-api"]  # +20 %, significant
    assert gate(changes, 25) == []  # under the threshold
    lines = [c.line(5) for c in changes]
    assert lines[0].startswith("FAIL cpp-api: 15 → 18 µs per call (+20.0%") and "significant" in lines[0]
    assert lines[1].startswith("cpp-raw: ") and "no significant change" in lines[1]


def test_compare_task_exits_non_zero_naming_the_slower_runner(tmp_path: Path) -> None:
    import subprocess
    import sys

    steady = [15.0, 15.2, 14.9, 15.1, 15.0]
    from harness.paths import ROOT

    runs = [_run(tmp_path, name, {"cpp-api": [x * k for x in steady], "cpp-raw": [0.04] * 5})
            for name, k in (("a", 1.0), ("b", 1.0), ("c", 1.3))]
    for run in runs:
        (run / "status.json").write_text(json.dumps({"status": "complete"}))
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "compare"]
    ok = subprocess.run([*invoke, str(runs[0]), str(runs[1]), "--fail-above", "5"], capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert "cpp-api: 15 → 15 µs per call" in ok.stdout
    bad = subprocess.run([*invoke, str(runs[0]), str(runs[2]), "--fail-above", "5"], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 1
    assert "FAIL cpp-api" in bad.stdout and "cpp-api significantly slower by more than 5 %" in bad.stderr
    wrong = subprocess.run([*invoke, str(runs[0]), str(runs[2]), "--fail-above", "lots"], capture_output=True,
                           text=True, check=False)
    assert wrong.returncode == 2 and "is not a number" in wrong.stderr


def _counted(run: Path, runner: str, per_call: list[float]) -> None:
    d = run / "raw" / runner
    d.mkdir(parents=True)
    (d / "instructions.json").write_text(json.dumps({"per_call": per_call, "n": 1000, "wall_s": 1.0, "reason": None}))


def test_gate_judges_exact_instruction_counts_where_both_runs_have_them(tmp_path: Path) -> None:
    """A 20 % slower clock with the same instructions passes; 2 % more instructions with a steady clock fails."""
    from harness.compare import compare_runs, gate

    steady = [15.0, 15.2, 14.9, 15.1, 15.0]
    a = _run(tmp_path, "a", {"cpp-api": steady, "cpp-raw": steady, "java": steady})
    slower = [x * 1.2 for x in steady]
    b = _run(tmp_path, "b", {"cpp-api": slower, "cpp-raw": steady, "java": slower})
    _counted(a, "cpp-api", [62386.0, 62387.0, 62386.5])
    _counted(b, "cpp-api", [62386.2, 62386.9, 62386.1])  # the same work: the slower clock was the machine
    _counted(a, "cpp-raw", [97.07, 97.07, 97.08])
    _counted(b, "cpp-raw", [99.0, 99.01, 99.0])  # +2 %, repeats far apart
    _counted(a, "java", [1e6, 1.1e6, 0.9e6])  # a JIT's counts are not exact: the clock decides
    _counted(b, "java", [1e6, 1.1e6, 0.9e6])
    changes = {c.runner: c for c in compare_runs(a, b).attrs["changes"]}
    assert changes["cpp-api"].counted and not changes["cpp-api"].instructions_apart
    assert not changes["java"].counted
    assert gate(list(changes.values()), 1) == ["cpp-raw", "java"]
    assert gate(list(changes.values()), 5) == ["java"]
    line = changes["cpp-raw"].line(1)
    assert line.startswith("FAIL cpp-raw: ") and "instructions per call 97.1 → 99.0 (+1.99%, repeats apart)" in line
