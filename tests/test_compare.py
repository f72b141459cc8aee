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
