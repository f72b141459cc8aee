"""All statistics, computed once, centrally: per-call figures over repeats, spread across repeats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPIKE_FACTOR = 10.0  # a call slower than 10x the median is a spike (seed 001)


def per_call_ns(timings_path: Path, block: int) -> np.ndarray:
    """Per-call durations: each block's duration shared equally by its calls."""
    return np.fromfile(timings_path, dtype="<i8").astype(np.float64) / block


def summarize(samples_by_repeat: list[np.ndarray]) -> dict[str, float]:
    """Per-call statistics pooled over repeats, in µs, plus the repeat-to-repeat variation."""
    pooled = np.concatenate(samples_by_repeat) / 1000.0
    q = np.percentile(pooled, [10, 25, 50, 75, 90, 99, 99.9])
    medians = np.array([np.median(s) / 1000.0 for s in samples_by_repeat])
    median = float(q[2])
    return {
        "min_us": float(pooled.min()),
        "median_us": median,
        "mean_us": float(pooled.mean()),
        "p90_us": float(q[4]),
        "p99_us": float(q[5]),
        "p999_us": float(q[6]),
        "max_us": float(pooled.max()),
        "std_us": float(pooled.std(ddof=1)) if pooled.size > 1 else 0.0,
        "iqr_us": float(q[3] - q[1]),
        "mad_us": float(np.median(np.abs(pooled - median))),
        "spikes": int((pooled > SPIKE_FACTOR * median).sum()),
        "cv_repeat_medians": float(medians.std(ddof=1) / medians.mean()) if medians.size > 1 else 0.0,
    }
