"""Compare two runs runner by runner: change of the median, its interval, and a plain verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.files import write_atomic

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
    """One row per runner present in both runs."""
    ma = json.loads((run_a / "summary.json").read_text())["repeat_medians_us"]
    mb = json.loads((run_b / "summary.json").read_text())["repeat_medians_us"]
    rows = []
    for rid in [r for r in ma if r in mb]:
        a, b = np.array(ma[rid]), np.array(mb[rid])
        change, lo, hi, p, words = verdict(a, b)
        rows.append({
            "runner": rid,
            "A median µs": round(float(np.median(a)), 4),
            "B median µs": round(float(np.median(b)), 4),
            "change": f"{change:+.1%}",
            "95 % CI": f"{lo:+.1%} … {hi:+.1%}" if np.isfinite(lo) else "–",
            "Mann-Whitney p": "–" if np.isnan(p) else f"{p:.3f}",
            "verdict": words,
        })
    only = sorted(set(ma) ^ set(mb))
    df = pd.DataFrame(rows)
    df.attrs["only_in_one"] = only
    return df


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
