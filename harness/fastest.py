"""The report's opening answer: per language, the fastest path whose outputs matched, and how far from the floor.

Only rows that ran and passed the output check are candidates; cpp-raw (plain loops, no libtorch) is the
floor the others are measured against, never a candidate. With a batch sweep the rows of the smallest batch
are compared, since the question is the cost of one call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from harness.rule import number, with_interval

LANGUAGES = ("Python", "Java", "C++")
FLOOR = "cpp-raw"


def verified(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows with matching outputs at the smallest batch, the floor included."""
    ok = df[df["status"].eq("ok") & df["outputs_ok"].astype(str).eq("True") & df["median_us"].notna()]
    if "batch" in ok.columns and not ok.empty:
        ok = ok[ok["batch"].eq(ok["batch"].min())]
    return ok


def floor_us(ok: pd.DataFrame) -> float | None:
    floor = ok[ok["runner_id"].eq(FLOOR)]
    return float(floor["median_us"].min()) if not floor.empty else None


def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per language that has a verified path: its fastest, with the interval and × floor."""
    ok = verified(df)
    floor = floor_us(ok)
    out = []
    for language in LANGUAGES:
        paths = ok[ok["language"].eq(language) & ~ok["runner_id"].eq(FLOOR)]
        if paths.empty:
            continue
        best = paths.loc[paths["median_us"].idxmin()]
        out.append({
            "language": language, "runner": best["runner"], "method": best["method"],
            "median_us": float(best["median_us"]), "low": float(best["median_ci_low_us"]),
            "high": float(best["median_ci_high_us"]), "batch": int(best["batch"]) if "batch" in best else 1,
            "floor_us": floor, "x_floor": float(best["median_us"]) / floor if floor else None, "paths": len(paths),
        })
    return out


def table(found: list[dict[str, Any]], made: dict[str, dict[str, Any]] | None = None) -> str:
    """`made`: the run's standalone programs by row (harness/programs.py), linked from their rows."""
    made = made or {}
    if not found:
        return ""
    floor = found[0]["floor_us"]
    lines = [{
        "language": r["language"],
        "fastest verified path": r["runner"],
        "µs/call median [95 % CI]": with_interval(r["median_us"], r["low"], r["high"]),
        f"× floor ({FLOOR} {number(floor)} µs)" if floor else "× floor": number(r["x_floor"]),
        "paths measured": str(r["paths"]),
        "how it calls the model": r["method"],
        "program": (f"[{made[r['runner']]['folder']}/]({made[r['runner']]['folder']}/)" if r["runner"] in made
                    else "—"),
    } for r in found]
    return pd.DataFrame(lines).to_markdown(index=False, disable_numparse=True)


def plot(df: pd.DataFrame, path: Path) -> bool:
    """Every verified path, grouped by language, on a log axis with the floor drawn across; False if none."""
    ok = verified(df)
    floor = floor_us(ok)
    groups = [(lang, ok[ok["language"].eq(lang) & ~ok["runner_id"].eq(FLOOR)].sort_values("median_us"))
              for lang in LANGUAGES]
    groups = [(lang, g) for lang, g in groups if not g.empty]
    if not groups:
        return False
    n = sum(len(g) for _, g in groups)
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.42 * (n + len(groups))))
    colours = {"Python": "#4c72b0", "Java": "#dd8452", "C++": "#55a868"}
    y, ticks, labels = 0, [], []
    for lang, g in groups:
        for _, r in g.iterrows():
            ax.barh(y, r["median_us"], color=colours[lang])
            ax.annotate(number(float(r["median_us"])), (r["median_us"], y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8)
            ticks.append(y)
            labels.append(r["runner"])
            y += 1
        y += 1
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[lang]) for lang, _ in groups]
    names = [lang for lang, _ in groups]
    if floor:
        line = ax.axvline(floor, color="black", linestyle="--", linewidth=1)
        handles.append(line)
        names.append(f"floor: {FLOOR} {number(floor)} µs")
    ax.set_yticks(ticks, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per call, median (log scale)")
    ax.set_title("Every verified path per language")
    ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(names), fontsize=8,
              frameon=False)  # below the axis: never over a bar
    low = float(ok["median_us"].min())
    ax.set_xlim(left=min(low, floor or low) / 3, right=float(ok["median_us"].max()) * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
