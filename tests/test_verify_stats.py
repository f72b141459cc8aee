"""Output checks catch any wrong value; statistics match a hand computation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from harness import stats
from harness.stats import (
    bootstrap_ci,
    calls_to_steady,
    mann_whitney,
    noise_flags,
    per_call_ns,
    ratio_ci,
    summarize,
)
from harness.verify import ATOL, check_outputs


def test_outputs_equal_pass(tmp_path: Path) -> None:
    ref = np.linspace(-20, 20, 300, dtype=np.float32).reshape(100, 3)
    (ref + np.float32(1e-6)).astype("<f4").tofile(tmp_path / "o.bin")
    c = check_outputs(tmp_path / "o.bin", ref)
    assert c.ok and 0 < c.max_abs_err < 3e-6


def _wrong(kind: str, ref: np.ndarray) -> np.ndarray:
    out = ref.copy()
    if kind == "off":
        out[42, 1] += 10 * ATOL + 1e-3
    elif kind == "nan":
        out[7, 0] = np.nan
    elif kind == "short":
        out = out.ravel()[:-3]
    return out


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [("off", r"1 of 300 outputs differ .* sample 42"), ("nan", "NaN"), ("short", "297 output values, expected 300")],
)
def test_wrong_outputs_fail(tmp_path: Path, kind: str, pattern: str) -> None:
    ref = np.linspace(-20, 20, 300, dtype=np.float32).reshape(100, 3)
    _wrong(kind, ref).astype("<f4").tofile(tmp_path / "o.bin")
    c = check_outputs(tmp_path / "o.bin", ref)
    assert not c.ok
    assert re.search(pattern, c.message)


def test_missing_outputs_fail(tmp_path: Path) -> None:
    assert not check_outputs(tmp_path / "none.bin", np.zeros((2, 1), np.float32)).ok


def test_per_call_from_blocks(tmp_path: Path) -> None:
    np.array([1000, 3000], dtype="<i8").tofile(tmp_path / "t.bin")
    assert per_call_ns(tmp_path / "t.bin", 10).tolist() == [100.0, 300.0]


def test_summary_figures() -> None:
    a = np.array([1000.0] * 98 + [30000.0, 50000.0])  # ns: two spikes over 10x the median (1.5 µs)
    b = np.array([2000.0] * 100)
    s = summarize([a, b])
    pooled = np.concatenate([a, b]) / 1000
    assert s["median_us"] == 1.5  # the median of the repeats' medians (1 and 2 µs), not the pooled 2 µs
    assert s["max_us"] == 50.0 and s["min_us"] == 1.0
    assert s["p99_us"] == pytest.approx(np.percentile(pooled, 99))
    assert s["spikes"] == 2
    assert s["cv_repeat_medians"] == pytest.approx(np.std([1.0, 2.0], ddof=1) / 1.5)
    assert s["iqr_us"] == pytest.approx(np.percentile(pooled, 75) - np.percentile(pooled, 25))


def test_calls_to_steady() -> None:
    slow_start = np.array([5000.0, 900.0, 300.0] + [10.0] * 200 + [900.0, 10.0])
    assert calls_to_steady(slow_start, 10.0) == 2
    assert calls_to_steady(np.full(100, 10.0), 10.0) == 0
    assert calls_to_steady(np.full(100, 100.0), 10.0) == 100


def test_confidence_intervals_and_flags() -> None:
    a = np.array([10.0, 10.2, 9.9, 10.1, 10.05])
    lo, hi = bootstrap_ci(a)
    assert 9.9 <= lo <= np.median(a) <= hi <= 10.2
    rlo, rhi = ratio_ci(a, 2 * a, paired=True)
    assert rlo == pytest.approx(0.5) and rhi == pytest.approx(0.5)
    assert np.isnan(bootstrap_ci(a[:2])[0])
    flags = noise_flags({"cv_repeat_medians": 0.08, "iqr_us": 1.0, "median_us": 2.0, "timer_overhead_pct": 3.0})
    assert len(flags) == 3 and "8.0%" in flags[0]
    assert noise_flags({"cv_repeat_medians": 0.01, "iqr_us": 0.1, "median_us": 2.0, "timer_overhead_pct": 0.1}) == []
    assert mann_whitney(a, a + 5) < 0.01
    assert mann_whitney(a, a) > 0.5


def test_harness_overhead_compares_the_runs_side_by_side() -> None:
    """A process that halves its speed half-way: each timed run is 3 % over the bare run beside it."""
    speed = np.repeat([1.0, 2.0], 2)  # 4 rounds, the last two at half speed
    timed = np.concatenate([np.full(5, 1000.0 * 1.03 * f) for f in speed])  # 5 calls per round, ns
    result = {"bare_rounds": 4, "bare_calls": 8, "bare_ns": [2 * 1000.0 * f for f in speed]}
    out = stats.harness_overhead([timed], [result])
    assert out["harness_overhead_pct"] == pytest.approx(3.0)
    assert out["bare_mean_us"] == pytest.approx(1.5)
    # without a bare pass there is nothing to compare
    none = stats.harness_overhead([timed], [{"bare_rounds": 4, "bare_calls": 0, "bare_ns": []}])
    assert np.isnan(none["harness_overhead_pct"])
    flags = stats.noise_flags({"harness_overhead_pct": 6.6})
    assert any("6.6 % more per call than the bare pass" in f for f in flags)
    assert not stats.noise_flags({"harness_overhead_pct": 1.9})


def test_two_speed_modes_are_told_apart_from_spread() -> None:
    from harness.stats import modes_text, speed_modes

    two = np.array([9.6, 17.6, 9.7, 17.4, 9.5])
    assert speed_modes(two) == [(pytest.approx(9.6), 3), (pytest.approx(17.5), 2)]
    assert modes_text(speed_modes(two)) == "two speed modes: 9.6 µs (3 processes) and 17.5 µs (2)"
    assert speed_modes(np.array([10.0, 10.4, 10.9, 11.5, 12.1])) == []  # an even spread is not two modes
    assert speed_modes(np.array([9.6, 9.7, 9.5, 17.6])) == []  # one process alone is not a mode
    assert speed_modes(np.array([9.6, 17.6, 9.7])) == []  # too few processes to say
