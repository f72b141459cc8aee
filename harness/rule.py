"""The one rule every verdict follows, stated once: when is a faster, slower or the same as b.

A difference counts only when it is larger than a margin (5 %, 10 % for "about as fast") *and* it survives
the noise: given the per-repeat medians, the 95 % bootstrap interval of the paired ratio (repeat k of every
runner ran side by side, so a drift of the machine's speed hits both) must exclude 1; without them, the two
medians' 95 % intervals must not overlap; with one repeat, the margin alone decides. "The same" likewise
needs the interval within the margin; anything in between is "unclear", which a claim reports as "mixed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats import ratio_ci

MARGIN = 0.05  # a smaller relative difference is no difference
SAME_MARGIN = 0.10  # "about as fast": BRIEF.md's lite 72 µs vs traced 67 µs (7 %) counts as the same

HOLDS, NOT, MIXED, UNTESTABLE = "holds", "does not hold", "mixed", "not testable here"
RULE = (f"a difference counts when it exceeds {MARGIN * 100:.0f} % ({SAME_MARGIN * 100:.0f} % for \"about as fast\") "
        "and the 95 % interval of the ratio over the repeats run side by side (paired bootstrap) excludes 1; "
        "\"the same\" needs that interval within the margin; *mixed*: part of the claim holds, or the medians "
        "differ but not clearly beyond the noise; *not testable here*: a row the claim needs did not run or "
        "failed (its reason is given)")


def number(x: Any, digits: int = 3) -> str:
    """Every figure in every report: `digits` significant digits, thousands separated, "–" for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)):
        return str(x)
    x = float(x)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    return f"{x:.{max(0, digits - 1 - mag)}f}" if mag < digits else f"{x:,.0f}"


def with_interval(value: Any, low: Any, high: Any) -> str:
    """A figure and its 95 % interval, "67.0 [61.2–108]"; the figure alone when the interval is missing."""
    missing = [x is None or x != x for x in (low, high)]  # x != x: NaN of any float type
    return number(value) if any(missing) else f"{number(value)} [{number(low)}–{number(high)}]"


@dataclass(frozen=True)
class Figure:
    """One figure of one row (µs per call unless said): its value, 95 % interval, per-repeat values."""

    name: str
    median: float
    low: float = math.nan
    high: float = math.nan
    repeats: tuple[float, ...] = ()  # in run order, for paired comparisons
    unit: str = "µs"

    def text(self) -> str:
        ci = "" if math.isnan(self.low) or math.isnan(self.high) else f" [{number(self.low)}–{number(self.high)}]"
        return f"{self.name} {number(self.median)}{ci} {self.unit}"


def ratio_bounds(a: Figure, b: Figure) -> tuple[float, float, str] | None:
    """Where a/b may lie given the noise: the paired interval, else the two medians' intervals, else None."""
    if len(a.repeats) == len(b.repeats) >= 3:
        lo, hi = ratio_ci(np.array(a.repeats), np.array(b.repeats), paired=True)
        if not (math.isnan(lo) or math.isnan(hi)):
            return lo, hi, "paired 95 % interval"
    if any(math.isnan(x) or x <= 0 for x in (a.low, a.high, b.low, b.high)):
        return None
    return a.low / b.high, a.high / b.low, "95 % interval"


def compare(a: Figure, b: Figure, margin: float = MARGIN) -> str:
    """a against b: "faster" / "slower" beyond the margin and the noise, "same" within both, else "unclear"."""
    r = a.median / b.median
    bounds = ratio_bounds(a, b)
    if bounds is None:  # one repeat, or a figure without an interval: the margin alone decides
        return "same" if abs(r - 1) < margin else ("faster" if r < 1 else "slower")
    lo, hi, _ = bounds
    if r < 1 - margin and hi < 1:
        return "faster"
    if r > 1 + margin and lo > 1:
        return "slower"
    if abs(r - 1) < margin and 1 - margin <= lo and hi <= 1 + margin:
        return "same"
    return "unclear"


# what each comparison means for a claim that a is faster / slower / about the same as b
EXPECT = {
    "faster": {"faster": HOLDS, "slower": NOT, "same": NOT, "unclear": MIXED},
    "slower": {"slower": HOLDS, "faster": NOT, "same": NOT, "unclear": MIXED},
    "same": {"same": HOLDS, "unclear": MIXED, "faster": NOT, "slower": NOT},
}


def verdict(expect: str, a: Figure, b: Figure) -> str:
    return EXPECT[expect][compare(a, b, SAME_MARGIN if expect == "same" else MARGIN)]


def combine(parts: list[str]) -> str:
    """Several comparisons of one claim: it holds when all hold, does not when none does, else mixed."""
    if parts and all(p == HOLDS for p in parts):
        return HOLDS
    if parts and all(p == NOT for p in parts):
        return NOT
    return MIXED


def _times(a: Figure, b: Figure) -> str:
    r = a.median / b.median
    x, word = (1 / r, "faster") if r < 1 else (r, "slower")
    return f"{x:.2g}× {word}" if x < 100 else f"{number(x)}× {word}"


def phrase(a: Figure, b: Figure, margin: float = MARGIN) -> str:
    """How a compares with b, in words: "2.1× faster than b", "within 5 % of b", …"""
    how = compare(a, b, margin)
    if how == "same":
        return f"within {margin * 100:.0f} % of {b.name}"
    if how != "unclear":
        return f"{_times(a, b)} than {b.name}"
    lo, hi, kind = ratio_bounds(a, b) or (math.nan, math.nan, "")
    if abs(a.median / b.median - 1) < margin:
        return f"within {margin * 100:.0f} % of {b.name} in median, but the ratio's {kind} {lo:.2f}–{hi:.2f} is wider"
    return f"{_times(a, b)} than {b.name} in median, but the ratio's {kind} {lo:.2f}–{hi:.2f} includes 1"
