"""The report's plots (PNG): latency per runner, the latency distribution, the warm-up of a fresh process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness import stats
from harness.rule import number


def _samples(run_dir: Path, runner: str, name: str, block: int = 1) -> list[np.ndarray]:
    found = []
    for rep in sorted((run_dir / "raw" / runner).glob("*")):
        path = rep / name
        if path.exists() and (rep / "result.json").exists():
            found.append(stats.per_call_ns(path, block) / 1000.0)
    return found


def _save(fig: Any, ax: Any, path: Path) -> None:
    """Grid, legend, tight layout, PNG: how every line plot of the report ends."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _empty_plot(path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 2))
    ax.text(0.5, 0.5, "no runner completed", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(df: pd.DataFrame, path: Path) -> None:
    ok = df[df["status"].eq("ok")]
    if ok.empty:
        _empty_plot(path, "Per-call latency by runner")
        return
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * max(len(ok), 1)))
    y = np.arange(len(ok))
    ax.barh(y, ok["median_us"], color="#4c72b0", label="median")
    lo = (ok["median_us"] - ok["median_ci_low_us"]).fillna(0).clip(lower=0)
    hi = (ok["median_ci_high_us"] - ok["median_us"]).fillna(0).clip(lower=0)
    ax.errorbar(ok["median_us"], y, xerr=[lo, hi], fmt="none", ecolor="black", capsize=4, label="95 % CI")
    ax.errorbar(ok["p99_us"], y, fmt="|", color="#c44e52", markersize=14, label="p99", linestyle="none")
    ax.set_yticks(y, ok["runner"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per call (log scale)")
    ax.set_title("Per-call latency by runner")
    ax.legend(loc="lower right")
    right = np.fmax(ok["p99_us"].to_numpy(), ok["median_ci_high_us"].fillna(0).to_numpy())
    for yi, v, x in zip(y, ok["median_us"], right, strict=True):
        ax.annotate(number(float(v)), (x, yi), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlim(right=float(right.max()) * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MAX_LINES = 16  # lines per plot before it stops being readable


def _plot_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The ok rows to draw as lines, and a note for the title when a sweep had to be thinned out."""
    ok = df[df["status"].eq("ok")]
    if len(ok) > MAX_LINES and "batch" in ok.columns and ok["batch"].nunique() > 1:
        return ok[ok["batch"].eq(ok["batch"].min())].head(MAX_LINES), f" (batch {int(ok['batch'].min())} rows)"
    return ok.head(MAX_LINES), (f" (first {MAX_LINES} runners)" if len(ok) > MAX_LINES else "")


def plot_distribution(run_dir: Path, df: pd.DataFrame, path: Path) -> None:
    if not df["status"].eq("ok").any():
        _empty_plot(path, "Latency distribution")
        return
    rows, note = _plot_rows(df)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for _, r in rows.iterrows():
        s = _samples(run_dir, r["runner"], "timings.bin", int(r["block"]))
        if not s:
            continue
        x = np.sort(np.concatenate(s))
        idx = np.unique(np.linspace(0, x.size - 1, min(x.size, 4000)).astype(int))
        ax.plot(x[idx], (idx + 1) / x.size, label=r["runner"])
    ax.set_xscale("log")
    ax.set_xlabel("µs per call (log scale)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_title(f"Latency distribution (CDF, all repeats pooled){note}")
    _save(fig, ax, path)


def plot_warmup(run_dir: Path, df: pd.DataFrame, path: Path, first_n: int = 100) -> None:
    if not df["status"].eq("ok").any():
        _empty_plot(path, "Warm-up")
        return
    rows, note = _plot_rows(df)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for _, r in rows.iterrows():
        s = _samples(run_dir, r["runner"], "warmup_timings.bin")
        if not s:
            continue
        n = min(first_n, min(len(a) for a in s))
        curve = np.median(np.stack([a[:n] for a in s]), axis=0)
        ax.plot(np.arange(1, n + 1), curve, label=r["runner"])
    ax.set_yscale("log")
    ax.set_xlabel("call number in a fresh process")
    ax.set_ylabel("µs (median over repeats, log scale)")
    ax.set_title(f"Warm-up: the first {first_n} calls, each timed alone{note}")
    _save(fig, ax, path)
