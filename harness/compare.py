"""Compare two runs runner by runner: change of the median, its interval, and a plain verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.files import write_atomic
from harness.rule import number

ALPHA = 0.05


def verdict(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float, str]:
    """(change, ci_low, ci_high, p, words) for B against A, from the per-repeat medians of each run."""
    change = float(np.median(b) / np.median(a) - 1)
    lo, hi = stats.ratio_ci(b, a, paired=False)
    lo, hi = lo - 1, hi - 1
    p = stats.mann_whitney(a, b)
    half = (hi - lo) / 2 if np.isfinite(lo) else float("nan")
    size = f"{abs(change):.0%}" + (f" ± {half:.0%}" if np.isfinite(half) else "")
    if np.isnan(p):
        return change, lo, hi, p, f"{size} {'slower' if change > 0 else 'faster'} (too few repeats to test)"
    significant = p < ALPHA and not (lo <= 0 <= hi)
    if not significant:
        return change, lo, hi, p, f"no significant change ({change:+.0%}, p = {p:.2f})"
    return change, lo, hi, p, f"{size} {'slower' if change > 0 else 'faster'}, significant (p = {p:.3f})"


def compare_runs(run_a: Path, run_b: Path) -> pd.DataFrame:
    """One row per runner present in both runs; `df.attrs["changes"]` keeps the figures unformatted."""
    ma = json.loads((run_a / "summary.json").read_text())["repeat_medians_us"]
    mb = json.loads((run_b / "summary.json").read_text())["repeat_medians_us"]
    rows, changes = [], []
    for rid in [r for r in ma if r in mb]:
        a, b = np.array(ma[rid]), np.array(mb[rid])
        change, lo, hi, p, words = verdict(a, b)
        changes.append(Change(rid, float(np.median(a)), float(np.median(b)), change, lo, hi, p, words))
        rows.append({
            "runner": rid,
            "A median µs": number(float(np.median(a))),
            "B median µs": number(float(np.median(b))),
            "change": f"{change:+.1%}",
            "95 % CI": f"{lo:+.1%} … {hi:+.1%}" if np.isfinite(lo) else "–",
            "Mann-Whitney p": "–" if np.isnan(p) else f"{p:.3f}",
            "verdict": words,
        })
    only = sorted(set(ma) ^ set(mb))
    df = pd.DataFrame(rows)
    df.attrs["only_in_one"] = only
    df.attrs["changes"] = changes
    return df


@dataclass(frozen=True)
class Change:
    """One runner's comparison, unformatted: what the CI gate and the one-line summary read."""

    runner: str
    a_us: float
    b_us: float
    change: float  # median B / median A − 1
    ci_low: float
    ci_high: float
    p: float
    words: str

    @property
    def significant(self) -> bool:
        return bool(self.p < ALPHA and not (self.ci_low <= 0 <= self.ci_high))

    def slower_than(self, pct: float) -> bool:
        """The gate's rule: slower by more than `pct` per cent, and significantly so (the verdict's rule)."""
        return self.significant and self.change > pct / 100

    def line(self, pct: float | None) -> str:
        """One line for a CI log."""
        ci = f", 95 % CI {self.ci_low:+.1%} … {self.ci_high:+.1%}" if np.isfinite(self.ci_low) else ""
        mark = "FAIL " if pct is not None and self.slower_than(pct) else ""
        return (f"{mark}{self.runner}: {self.a_us:.4g} → {self.b_us:.4g} µs per call "
                f"({self.change:+.1%}{ci}): {self.words}")


def gate(changes: list[Change], pct: float) -> list[str]:
    """The runners that fail `invoke compare --fail-above PCT`."""
    return [c.runner for c in changes if c.slower_than(pct)]


def write_comparison(run_a: Path, run_b: Path, out: Path) -> str:
    """Markdown table of the comparison, written atomically to `out` and returned."""
    df = compare_runs(run_a, run_b)
    table = df.to_markdown(index=False, disable_numparse=True) if len(df) else "(no common runner)"
    text = (f"# {run_b.name} (B) against {run_a.name} (A)\n\n"
            "Per runner: change of the median per-call time, 95 % bootstrap interval over repeats, and a "
            f"Mann-Whitney U test on the per-repeat medians (significant when p < {ALPHA} and the interval "
            f"excludes 0).\n\n{table}\n")
    if df.attrs["only_in_one"]:
        text += f"\nIn one run only: {', '.join(df.attrs['only_in_one'])}\n"
    write_atomic(out, text)
    return text
