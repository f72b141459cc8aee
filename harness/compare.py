"""Compare two runs runner by runner: change of the median, its interval, and a plain verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.files import write_atomic
from harness.instructions import EXACT_SPREAD
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


def instructions(run: Path, runner: str) -> list[float]:
    """The runner's instructions per call, one per valgrind repeat; [] where they were not counted."""
    path = run / "raw" / runner / "instructions.json"
    return list(json.loads(path.read_text()).get("per_call") or []) if path.exists() else []


def exact(values: list[float]) -> bool:
    """Counts to rely on: three or more repeats that agree within EXACT_SPREAD (C++ and Python, not a JIT)."""
    return len(values) >= 3 and (max(values) - min(values)) <= EXACT_SPREAD * float(np.median(values))


def compare_runs(run_a: Path, run_b: Path) -> pd.DataFrame:
    """One row per runner present in both runs; `df.attrs["changes"]` keeps the figures unformatted."""
    ma = json.loads((run_a / "summary.json").read_text())["repeat_medians_us"]
    mb = json.loads((run_b / "summary.json").read_text())["repeat_medians_us"]
    rows, changes = [], []
    for rid in [r for r in ma if r in mb]:
        a, b = np.array(ma[rid]), np.array(mb[rid])
        change, lo, hi, p, words = verdict(a, b)
        ia, ib = instructions(run_a, rid), instructions(run_b, rid)
        counted = (ia, ib) if exact(ia) and exact(ib) else ([], [])
        c = Change(rid, float(np.median(a)), float(np.median(b)), change, lo, hi, p, words, *counted)
        changes.append(c)
        rows.append({
            "runner": rid,
            "A median µs": number(float(np.median(a))),
            "B median µs": number(float(np.median(b))),
            "change": f"{change:+.1%}",
            "95 % CI": f"{lo:+.1%} … {hi:+.1%}" if np.isfinite(lo) else "–",
            "Mann-Whitney p": "–" if np.isnan(p) else f"{p:.3f}",
            "verdict": words,
            "instructions / call A → B": c.instructions_text() or "–",
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
    a_instructions: list[float] = field(default_factory=list)  # per valgrind repeat; both or neither exact
    b_instructions: list[float] = field(default_factory=list)

    @property
    def significant(self) -> bool:
        return bool(self.p < ALPHA and not (self.ci_low <= 0 <= self.ci_high))

    @property
    def counted(self) -> bool:
        """Both runs counted this runner's instructions exactly: the gate then judges the count, not the clock."""
        return bool(self.a_instructions and self.b_instructions)

    @property
    def instructions_change(self) -> float:
        return float(np.median(self.b_instructions) / np.median(self.a_instructions) - 1)

    @property
    def instructions_apart(self) -> bool:
        """The two runs' counts do not overlap: a real change, however small (1 % is far beyond 0.1 %)."""
        a, b = self.a_instructions, self.b_instructions
        return min(b) > max(a) or max(b) < min(a)

    def slower_than(self, pct: float) -> bool:
        """The gate's rule: slower by more than `pct` per cent, and significantly so. Where both runs counted
        instructions exactly, the count decides (its repeats apart, its change over `pct`); else the clock."""
        if self.counted:
            return self.instructions_apart and self.instructions_change > pct / 100
        return self.significant and self.change > pct / 100

    def instructions_text(self) -> str:
        if not self.counted:
            return ""
        how = "repeats apart" if self.instructions_apart else "repeats overlap"
        return (f"{number(float(np.median(self.a_instructions)))} → {number(float(np.median(self.b_instructions)))} "
                f"({self.instructions_change:+.2%}, {how})")

    def line(self, pct: float | None) -> str:
        """One line for a CI log."""
        ci = f", 95 % CI {self.ci_low:+.1%} … {self.ci_high:+.1%}" if np.isfinite(self.ci_low) else ""
        mark = "FAIL " if pct is not None and self.slower_than(pct) else ""
        counted = f"; instructions per call {self.instructions_text()}, which the gate judges" if self.counted else ""
        return (f"{mark}{self.runner}: {self.a_us:.4g} → {self.b_us:.4g} µs per call "
                f"({self.change:+.1%}{ci}): {self.words}{counted}")


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
            f"excludes 0). Where both runs counted a runner's instructions per call exactly (repeats within "
            f"{EXACT_SPREAD:.1%}), the CI gate judges that count instead: a change counts when the two runs' "
            f"repeats do not overlap.\n\n{table}\n")
    if df.attrs["only_in_one"]:
        text += f"\nIn one run only: {', '.join(df.attrs['only_in_one'])}\n"
    write_atomic(out, text)
    return text
