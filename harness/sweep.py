"""Batch-size and thread sweeps: per-sample cost against batch size, the fixed cost of a call, threads.

A call of b samples costs t(b) ≈ a + c·b: a is the fixed cost of one call (the overhead every language
pays differently), c the cost of one more sample. Fitted per runner on the per-call medians, weighted
by 1/t so that small and large batches count alike; the overhead share at b is a / t(b).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.rule import Figure, compare, number, ratio_bounds

OVERHEAD_LIMIT = 0.10  # "overhead falls under 10 % of the total"
FLOOR_FACTOR = 3.0  # the goal: a path within 3x of the raw floor per sample
FLOOR_RUNNER = "cpp-raw"
COLUMNS_SUFFIX = "-columns"  # runners computing W·Xᵀ + b (samples as columns), beside their row-major twin


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    out = df[df["status"].eq("ok")].copy()
    out["family"] = out["family"].fillna(out["runner"]) if "family" in out.columns else out["runner"]
    return out


def has_batches(df: pd.DataFrame) -> bool:
    return "batch" in df.columns and df["batch"].nunique() > 1


def has_threads(df: pd.DataFrame) -> bool:
    return "threads" in df.columns and df["threads"].dropna().nunique() > 1


def fit(batches: np.ndarray, per_call_us: np.ndarray) -> tuple[float, float]:
    """(a, c) of t(b) = a + c·b, least squares relative to t; a is kept ≥ 0 (a call cannot cost less than none)."""
    if batches.size < 2:
        return float("nan"), float("nan")
    c, a = np.polyfit(batches, per_call_us, 1, w=1.0 / per_call_us)
    if a < 0:  # no measurable fixed cost: the line through the origin
        a, c = 0.0, float(np.sum(per_call_us * batches / per_call_us**2) / np.sum(batches**2 / per_call_us**2))
    return float(a), float(c)


def batch_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per runner (family): per-sample cost at each batch, fitted overhead, where it falls under 10 %."""
    ok = _ok(df)
    if ok.empty or not has_batches(df):
        return []
    floor = ok.loc[ok["family"].eq(FLOOR_RUNNER), "per_sample_us"].min()
    rows = []
    for family, g in ok.groupby("family", sort=False):
        g = g.sort_values("batch")
        if g["batch"].nunique() < 2:  # one batch size (e.g. a tip measured at batch 64): nothing to sweep
            continue
        b = g["batch"].to_numpy(dtype=float)
        t = g["median_us"].to_numpy(dtype=float)
        a, c = fit(b, t)
        share = a / t if not math.isnan(a) else np.full_like(t, np.nan)
        under = b[share < OVERHEAD_LIMIT]
        best = g.loc[g["per_sample_us"].idxmin()]
        rows.append({
            "runner": family,
            "language": g["language"].iloc[0],
            "per_sample_us": dict(zip(g["batch"].astype(int), g["per_sample_us"], strict=True)),
            "overhead_us": a,
            "sample_us": c,
            "overhead_share_b1": float(share[0]) if b[0] == 1 else float("nan"),
            "batch_under_10pct": int(under.min()) if under.size else None,
            "best_per_sample_us": float(best["per_sample_us"]),
            "best_batch": int(best["batch"]),
            "x_floor": float(best["per_sample_us"] / floor) if not pd.isna(floor) else float("nan"),
        })
    return rows


_f = number


def batch_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    batches = sorted({b for r in rows for b in r["per_sample_us"]})
    out = []
    for r in rows:
        line = {"runner": r["runner"]}
        line.update({f"b={b}": _f(r["per_sample_us"].get(b)) for b in batches})
        line.update({
            "fixed cost per call µs": _f(r["overhead_us"]),
            "per sample µs (fit)": _f(r["sample_us"]),
            "overhead < 10 % from batch": str(r["batch_under_10pct"]) if r["batch_under_10pct"] else "never",
            "best µs/sample (batch)": f"{_f(r['best_per_sample_us'])} ({r['best_batch']})",
            f"× {FLOOR_RUNNER} floor": _f(r["x_floor"]),
        })
        out.append(line)
    return pd.DataFrame(out).to_markdown(index=False, disable_numparse=True)


def language_rows(rows: list[dict[str, Any]], factor: float = FLOOR_FACTOR) -> list[dict[str, Any]]:
    """Per language its best path per sample, every figure of the row from that one runner."""
    if all(math.isnan(r["x_floor"]) for r in rows):  # no floor measured (e.g. a thread sweep): no goal to judge
        return []
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["runner"] == FLOOR_RUNNER:  # the floor is the yardstick, not a candidate
            continue
        cur = best.get(r["language"])
        if cur is None or r["best_per_sample_us"] < cur["best_per_sample_us"]:
            best[r["language"]] = r
    return [{"language": lang, "runner": r["runner"], "best_per_sample_us": r["best_per_sample_us"],
             "best_batch": r["best_batch"], "x_floor": r["x_floor"], "batch_under_10pct": r["batch_under_10pct"],
             "within_goal": bool(r["x_floor"] <= factor)} for lang, r in best.items()]


def language_table(rows: list[dict[str, Any]]) -> str:
    langs = language_rows(rows)
    if not langs:
        return ""
    return pd.DataFrame([{
        "language": r["language"],
        "fastest path per sample": f"{r['runner']} at batch {r['best_batch']}",
        "µs per sample": _f(r["best_per_sample_us"]),
        f"× {FLOOR_RUNNER} floor": _f(r["x_floor"]),
        f"within {FLOOR_FACTOR:g}× of the floor": "yes" if r["within_goal"] else "**no**",
        "its overhead < 10 % from batch": str(r["batch_under_10pct"]) if r["batch_under_10pct"] else "never",
    } for r in langs]).to_markdown(index=False, disable_numparse=True)


_MARKERS = {"Python": "o", "Java": "s", "C++": "^"}


def plot_batches(df: pd.DataFrame, path: Path) -> None:
    """One line per runner, told apart by colour (20 distinct), marker (language) and dashes (columns layout)."""
    ok = _ok(df)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    colours = plt.get_cmap("tab20").colors
    for k, (family, g) in enumerate(ok.groupby("family", sort=False)):
        g = g.sort_values("batch")
        floor = family == FLOOR_RUNNER
        ax.plot(g["batch"], g["per_sample_us"], label=family, color="black" if floor else colours[k % len(colours)],
                marker=_MARKERS.get(str(g["language"].iloc[0]), "o"), linewidth=2.5 if floor else 1.5,
                linestyle="--" if family.endswith(COLUMNS_SUFFIX) else "-")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("samples per call (batch, log scale)")
    ax.set_ylabel("µs per sample (median call / batch, log scale)")
    ax.set_title("Per-sample cost against batch size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _figure(df_row: pd.Series, repeat_medians: Mapping[str, Sequence[float]]) -> Figure:
    name = str(df_row["runner"])
    return Figure(name, float(df_row["median_us"]), float(df_row.get("median_ci_low_us", math.nan)),
                  float(df_row.get("median_ci_high_us", math.nan)), tuple(repeat_medians.get(name, ())))


def thread_rows(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """Per runner and batch: its figure with 1 thread (`one`) and with more (`more`), to compare by the rule."""
    ok = _ok(df)
    if ok.empty or not has_threads(df):
        return []
    ok["base"] = [f.rsplit("-t", 1)[0] if f.endswith(f"-t{int(t)}") else f
                  for f, t in zip(ok["runner"], ok["threads"], strict=True)]
    rows = []
    for base, g in ok.groupby("base", sort=False):
        for batch, gb in g.groupby("batch", sort=False):
            one = gb[gb["threads"].eq(1)]
            if one.empty:
                continue
            for _, r in gb[gb["threads"].gt(1)].iterrows():
                rows.append({"runner": base, "batch": int(batch), "threads": int(r["threads"]),
                             "one": _figure(one.iloc[0], repeat_medians), "more": _figure(r, repeat_medians)})
    return rows


def thread_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = []
    for r in rows:
        one, more = r["one"], r["more"]
        bounds = ratio_bounds(more, one)
        ci = "–" if bounds is None else f"{_f(1 / bounds[1])}–{_f(1 / bounds[0])}"
        how = compare(more, one)
        out.append({"runner": r["runner"], "batch": r["batch"], "µs/call, 1 thread": _f(one.median),
                    f"µs/call, {r['threads']} threads": _f(more.median), "speed-up": f"{one.median / more.median:.2f}×",
                    "95 % interval (paired)": ci,
                    "with more threads": {"unclear": "no clear change", "same": "the same"}.get(how, how)})
    return pd.DataFrame(out).to_markdown(index=False, disable_numparse=True)


def layout_rows(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """Per runner with a samples-as-columns twin: both figures at the largest batch they share."""
    ok = _ok(df)
    if ok.empty or "batch" not in ok.columns:
        return []
    rows = []
    for family, g in ok.groupby("family", sort=False):
        if not family.endswith(COLUMNS_SUFFIX):
            continue
        twin = ok[ok["family"].eq(family.removesuffix(COLUMNS_SUFFIX))]
        shared = sorted(set(g["batch"]) & set(twin["batch"]))
        if not shared:
            continue
        b = shared[-1]
        col = g[g["batch"].eq(b)].iloc[0]
        row = twin[twin["batch"].eq(b)].iloc[0]
        rows.append({"runner": row["family"], "batch": int(b), "rows": _figure(row, repeat_medians),
                     "columns": _figure(col, repeat_medians)})
    return rows
