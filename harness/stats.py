"""All statistics, computed once, centrally: per-call figures over repeats, spread across repeats.

The unit of independence is the process (a repeat): confidence intervals resample repeats, not calls,
because calls within one process share its warm caches, JIT state and memory layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats as sps

SPIKE_FACTOR = 10.0  # a call slower than 10x the median is a spike (seed 001)
NOISY_CV = 0.05  # repeat-to-repeat coefficient of variation above this: flagged
NOISY_IQR = 0.10  # IQR over median above this: flagged
TIMER_LIMIT = 0.01  # clock reads costing over 1 % of a block: flagged
HARNESS_LIMIT = 0.02  # timed loop over 2 % slower per call than the bare pass: flagged
BOOTSTRAP_RESAMPLES = 5000


def per_call_ns(timings_path: Path, block: int) -> np.ndarray:
    """Per-call durations: each block's duration shared equally by its calls."""
    return np.fromfile(timings_path, dtype="<i8").astype(np.float64) / block


def summarize(samples_by_repeat: list[np.ndarray]) -> dict[str, float]:
    """The headline and the tails of one runner, in µs, and the repeat-to-repeat variation.

    The headline figure is the median of the per-repeat medians, with a percentile bootstrap over repeats
    as its 95 % interval: the process is the unit of independence, so figure and interval are of the same
    thing, and every comparison (harness/rule.py, invoke compare) uses these same per-repeat medians. The
    tail figures (percentiles, max, spikes, spread) are pooled over all calls of all repeats, and say so.
    """
    pooled = np.concatenate(samples_by_repeat) / 1000.0
    q = np.percentile(pooled, [10, 25, 50, 75, 90, 99, 99.9])
    medians = repeat_medians(samples_by_repeat)
    median = float(np.median(medians))
    lo, hi = bootstrap_ci(medians)
    return {
        "min_us": float(pooled.min()),
        "median_us": median,
        "median_ci_low_us": lo,
        "median_ci_high_us": hi,
        "mean_us": float(pooled.mean()),
        "p90_us": float(q[4]),
        "p99_us": float(q[5]),
        "p999_us": float(q[6]),
        "max_us": float(pooled.max()),
        "std_us": float(pooled.std(ddof=1)) if pooled.size > 1 else 0.0,
        "iqr_us": float(q[3] - q[1]),
        "mad_us": float(np.median(np.abs(pooled - median))),
        "spikes": int((pooled > SPIKE_FACTOR * median).sum()),
        "cv_repeat_medians": float(medians.std(ddof=1) / medians.mean()) if medians.size > 1 else float("nan"),
    }


def repeat_medians(samples_by_repeat: list[np.ndarray]) -> np.ndarray:
    """The median per-call time of each process, in µs."""
    return np.array([np.median(s) / 1000.0 for s in samples_by_repeat])


def bootstrap_ci(medians: np.ndarray) -> tuple[float, float]:
    """95 % percentile-bootstrap interval for the median over repeats (NaN with fewer than 3)."""
    if medians.size < 3 or np.ptp(medians) == 0:
        m = float(np.median(medians)) if medians.size else float("nan")
        return (m, m) if medians.size >= 3 else (float("nan"), float("nan"))
    res = sps.bootstrap((medians,), np.median, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
                        random_state=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def ratio_ci(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float]:
    """95 % bootstrap interval of median(a) / median(b); paired when repeat k of both ran side by side."""
    if min(a.size, b.size) < 3 or (paired and a.size != b.size):
        return float("nan"), float("nan")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        r = float(np.median(a) / np.median(b))
        return r, r
    res = sps.bootstrap((a, b), lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
                        paired=paired, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
                        random_state=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def calls_to_steady(warmup_us: np.ndarray, steady_us: float, window: int = 3) -> int:
    """Calls in a fresh process before the first run of `window` calls whose median is within 1.5x steady.

    A median of three ignores a lone interrupt but not the systematic slowness of a cold start
    (TorchScript's profiling runs, a JIT compiling); 0 means steady from the first call, and the
    warm-up length means it never got there.
    """
    if warmup_us.size < window:
        return int(warmup_us.size)
    windows = np.lib.stride_tricks.sliding_window_view(warmup_us, window)
    ok = np.nonzero(np.median(windows, axis=1) <= 1.5 * steady_us)[0]
    return int(ok[0]) if ok.size else int(warmup_us.size)


def harness_overhead(samples_by_repeat: list[np.ndarray], results: list[dict]) -> dict[str, float]:
    """Timed mean ÷ bare-pass mean − 1, round by round within each process, median over rounds and repeats.

    Each process alternates runs of timed calls with runs of the bare pass (`bare_rounds` of each), and a
    round compares the two runs that ran side by side, so a change of the machine's speed during the
    process cancels out; what is left is what the timed loop's clock reads and bookkeeping add to a call.
    NaN without a bare pass.
    """
    bare_ns, bare_calls, ratios = 0.0, 0, []
    for s, r in zip(samples_by_repeat, results, strict=True):
        rounds, bare = r.get("bare_rounds"), r.get("bare_ns")
        if not bare or not rounds or len(bare) != rounds or s.size % rounds:
            continue
        bare_round = np.asarray(bare, dtype=np.float64) / (r["bare_calls"] // rounds)
        timed_round = s.reshape(rounds, -1).mean(axis=1)
        ratios.append(float(np.median(timed_round / bare_round)) - 1)
        bare_ns += float(np.sum(bare))
        bare_calls += r["bare_calls"]
    if not ratios:
        return {"bare_mean_us": float("nan"), "harness_overhead_pct": float("nan")}
    # pooled over the processes like mean_us, so the two columns compare directly
    return {"bare_mean_us": bare_ns / bare_calls / 1000, "harness_overhead_pct": 100 * float(np.median(ratios))}


MODE_GAP = 1.2  # two clusters of process medians at least 20 % apart ...
MODE_TIGHT = 1.0  # ... with the gap at least as wide (in log) as either cluster's own range


def mode_cut(values: np.ndarray) -> float | None:
    """Where per-process figures split into two speed modes, or None: halfway (in log) across the widest gap
    between the sorted figures, when there are four or more and that gap is at least MODE_GAP."""
    x = np.sort(np.log(values[values > 0]))
    if x.size < 4:
        return None
    k = int(np.argmax(np.diff(x)))
    return float(np.exp((x[k] + x[k + 1]) / 2)) if x[k + 1] - x[k] >= np.log(MODE_GAP) else None


def speed_modes(medians: np.ndarray) -> list[tuple[float, int]]:
    """Two speed modes in the per-process medians, as [(median, processes), (median, processes)], or [].

    Some VMs put each process in one of two speeds (e.g. 9.6 or 17.6 µs for the same binary): one wide
    interval would hide that. Split at mode_cut; two modes when each side has two processes or more and the
    gap is at least MODE_TIGHT times either side's range.
    """
    cut = mode_cut(medians)
    if cut is None:
        return []
    x = np.log(medians[medians > 0])
    low, high = np.sort(x[x < np.log(cut)]), np.sort(x[x >= np.log(cut)])
    if min(low.size, high.size) < 2 or high[0] - low[-1] < MODE_TIGHT * max(np.ptp(low), np.ptp(high)):
        return []
    return [(float(np.median(np.exp(low))), int(low.size)), (float(np.median(np.exp(high))), int(high.size))]


def modes_text(modes: list[tuple[float, int]]) -> str:
    """"two speed modes: 9.6 µs (3 processes) and 17.6 µs (2)", or "" without modes."""
    if not modes:
        return ""
    (a, na), (b, nb) = modes
    return f"two speed modes: {a:.3g} µs ({na} processes) and {b:.3g} µs ({nb})"


def noise_flags(row: dict[str, float]) -> list[str]:
    """Why a runner's figures deserve less trust, in words for the report."""
    flags = [str(row["speed_modes"])] if row.get("speed_modes") else []
    cv, iqr, med = row.get("cv_repeat_medians"), row.get("iqr_us"), row.get("median_us")
    if cv is not None and cv > NOISY_CV:
        flags.append(f"repeat medians vary by {cv:.1%} (CV > {NOISY_CV:.0%})")
    if iqr is not None and med and iqr / med > NOISY_IQR:
        flags.append(f"IQR is {iqr / med:.0%} of the median (> {NOISY_IQR:.0%})")
    over = row.get("timer_overhead_pct")
    if over is not None and over > 100 * TIMER_LIMIT:
        flags.append(f"clock reads cost {over:.1f} % of the timed work: raise `block`")
    harness = row.get("harness_overhead_pct")
    if harness is not None and harness > 100 * HARNESS_LIMIT:
        flags.append(f"the timed loop costs {harness:.1f} % more per call than the bare pass "
                     f"(> {HARNESS_LIMIT:.0%}): its bookkeeping inflates the figure")
    return flags


def mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value that two sets of repeat medians come from the same distribution."""
    if min(a.size, b.size) < 2:
        return float("nan")
    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
